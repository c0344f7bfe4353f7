"""The training driver: DESIGN.md's time-to-accuracy rules for any workload.

init (timed, outside TTA) -> run_start -> train, evaluating every
``eval_every`` samples -> run_stop at the target (success) or when the sample
or time budget runs out, or the loss diverges (aborted). TTA includes
evaluation time; throughput excludes it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness import contention, memory
from harness.compliance import RulesetSpec
from harness.mllog_writer import RunLog
from harness.progress import Progress
from harness.results import file_sha256
from harness.workload import Phase, PhaseData, Recipe, Workload


class EnergyWindowSource(Protocol):
    """What the driver needs of an energy monitor (see ``harness.meters``)."""

    def begin_window(self, name: str) -> None: ...

    def end_window(self, name: str) -> Any: ...


def benchmark_name(workload: Workload, phase: Phase) -> str:
    """MLLOG ``submission_benchmark`` of a phase."""
    return workload.name if len(workload.phases()) == 1 else f"{workload.name}_{phase.name}"


def ruleset_spec(workload: Workload, phase: Phase, recipe: Recipe,
                 reference: Recipe) -> RulesetSpec:
    return RulesetSpec(
        benchmark=benchmark_name(workload, phase),
        target=recipe.target,
        reference_batch_size=int(reference.batch_size),
        reference_learning_rate=float(reference.learning_rate),
        lr_scaling=reference.lr_scaling,
        fixed=dict(reference.hyperparameters),
    )


@dataclass
class RunContext:
    """Everything one phase-run needs besides the phase itself."""

    workload: Workload
    scale: str
    division: str
    device: str
    submitter: str
    platform: str
    submission_status: str
    progress: Progress
    run_index: int
    run_count: int
    energy: EnergyWindowSource | None = None
    contention_threshold: float = contention.DEFAULT_THRESHOLD
    extra_log_keys: dict[str, Any] = field(default_factory=dict)


@dataclass
class PhaseOutcome:
    record: dict[str, Any]
    model: Any


def _log_header(log: RunLog, ctx: RunContext, phase: Phase, recipe: Recipe, data: PhaseData,
                seed: int) -> None:
    log.event("submission_benchmark", benchmark_name(ctx.workload, phase))
    log.event("submission_org", ctx.submitter)
    log.event("submission_division", ctx.division)
    log.event("submission_status", ctx.submission_status)
    log.event("submission_platform", ctx.platform)
    log.event("cache_clear", True)
    log.start("init_start")
    log.event("seed", seed)
    log.event("quality_target", recipe.target)
    log.event("global_batch_size", recipe.batch_size)
    log.event("micro_batch_size", recipe.batch_size)
    log.event("gradient_accumulation_steps", 1)
    log.event("opt_base_learning_rate", recipe.learning_rate)
    for key, value in recipe.hyperparameters.items():
        log.event(key, value)
    log.event("train_samples", data.info.train_samples)
    log.event("eval_samples", data.info.eval_samples)
    precision = "fp32"
    for key in ("lowest_numerical_precision_in_linear", "lowest_numerical_precision_in_attn",
                "lowest_numerical_precision_in_comm"):
        log.event(key, precision)
    for key in ("tensor_parallelism", "pipeline_parallelism", "context_parallelism",
                "expert_parallelism"):
        log.event(key, 1)
    log.event("config_filename", f"{ctx.workload.name}/{ctx.scale}")
    for key, value in ctx.extra_log_keys.items():
        log.event(key, value)


def run_phase(phase: Phase, data: PhaseData, recipe: Recipe, seed: int, ctx: RunContext,
              log_path: Path, previous: Any | None) -> PhaseOutcome:
    """One seeded run of one phase, logged to ``log_path``; never raises for divergence."""
    import torch

    with RunLog(log_path) as log:
        _log_header(log, ctx, phase, recipe, data, seed)
        init_begin = time.perf_counter()
        torch.manual_seed(seed)
        model = phase.build_model(data, ctx.scale, previous)
        model = model.to(ctx.device) if hasattr(model, "to") else model
        optimizer, scheduler = phase.build_optimizer(model, recipe)
        batches = phase.train_batches(data, recipe, seed, ctx.device)
        init_seconds = time.perf_counter() - init_begin
        log.end("init_stop")

        memory.reset_peak_rss()
        memory.reset_cuda_peak(ctx.device)
        guard = contention.ContentionWindow(ctx.contention_threshold)
        window_name = f"{phase.name}-run{ctx.run_index}"
        if ctx.energy is not None:
            ctx.energy.begin_window(window_name)
        guard.begin()
        log.start("run_start")
        started = time.perf_counter()

        loop = _train_until_target(phase, model, optimizer, scheduler, batches, data, recipe,
                                   ctx, log, started)

        stopped = time.perf_counter()
        log.end("run_stop", metadata={"status": loop.status, "samples_count": loop.samples})
        reading = guard.end()
        energy = ctx.energy.end_window(window_name) if ctx.energy is not None else None

    tta = stopped - started
    train_seconds = max(tta - loop.eval_seconds, 0.0)
    record = {
        "index": ctx.run_index,
        "seed": seed,
        "status": loop.status,
        "abort_reason": loop.abort_reason,
        "init_seconds": init_seconds,
        "tta_seconds": tta,
        "samples_seen": loop.samples,
        "samples_to_target": loop.samples if loop.status == "success" else None,
        "epochs": loop.samples / max(data.info.train_samples, 1),
        "train_seconds": train_seconds,
        "eval_seconds": loop.eval_seconds,
        "train_throughput": loop.samples / train_seconds if train_seconds > 0 else 0.0,
        "evals": len(loop.curve),
        "final_metric": loop.curve[-1]["metric"] if loop.curve else None,
        "eval_curve": loop.curve,
        "peak_rss_bytes": memory.peak_rss_bytes(),
        "cuda_max_allocated_bytes": memory.cuda_peak_bytes(ctx.device),
        "contention": reading.to_dict(),
        "energy": energy.to_dict() if hasattr(energy, "to_dict") else energy,
        "log": {"path": str(log_path), "sha256": file_sha256(log_path)},
        "started_unix": time.time() - (time.perf_counter() - started),
    }
    return PhaseOutcome(record, model)


@dataclass
class _LoopState:
    status: str = "aborted"
    abort_reason: str | None = None
    samples: int = 0
    eval_seconds: float = 0.0
    curve: list[dict[str, Any]] = field(default_factory=list)


def _train_until_target(phase: Phase, model: Any, optimizer: Any, scheduler: Any, batches: Any,
                        data: PhaseData, recipe: Recipe, ctx: RunContext, log: RunLog,
                        started: float) -> _LoopState:
    state = _LoopState()
    eval_every = recipe.eval_every
    next_eval = eval_every
    train_step = phase.train_step
    step_scheduler: Callable[[], Any] = scheduler.step if scheduler is not None else _no_op
    batch_size_of = phase.batch_size_of
    samples = 0
    block = 0
    log.start("block_start", metadata={"first_epoch_num": 0, "epoch_count": 1,
                                       "samples_count": 0})
    # The hot loop does no host sync: the loss is only read at eval points.
    while True:
        batch = next(batches)
        loss = train_step(model, optimizer, batch)
        step_scheduler()
        samples += batch_size_of(batch)
        if samples < next_eval:
            continue
        log.end("block_stop", metadata={"first_epoch_num": block, "samples_count": samples})
        loss_value = float(loss.detach() if hasattr(loss, "detach") else loss)
        elapsed = time.perf_counter() - started
        if not math.isfinite(loss_value) or loss_value > recipe.max_loss:
            state.abort_reason = (f"training diverged: loss {loss_value} at {samples} samples "
                                  f"(limit {recipe.max_loss:g})")
            break
        log.start("eval_start", metadata={"samples_count": samples, "epoch_num": block})
        eval_begin = time.perf_counter()
        metric = float(phase.evaluate(model, data, ctx.device))
        if hasattr(model, "train"):
            model.train()
        state.eval_seconds += time.perf_counter() - eval_begin
        elapsed = time.perf_counter() - started
        log.event("eval_accuracy", metric, metadata={"samples_count": samples, "epoch_num": block})
        log.end("eval_stop", metadata={"samples_count": samples, "epoch_num": block})
        state.curve.append({"samples": samples, "seconds": elapsed,
                            "metric": metric if math.isfinite(metric) else None})
        ctx.progress.update(f"{ctx.workload.name}/{phase.name}", ctx.run_index, ctx.run_count,
                            samples, metric, recipe.target, elapsed)
        if metric >= recipe.target:
            state.status = "success"
            break
        if samples >= recipe.max_samples:
            state.abort_reason = f"sample budget of {recipe.max_samples} spent before the target"
            break
        if elapsed >= recipe.max_seconds:
            state.abort_reason = f"time budget of {recipe.max_seconds:g} s spent before the target"
            break
        next_eval += eval_every
        block += 1
        log.start("block_start", metadata={"first_epoch_num": block, "epoch_count": 1,
                                           "samples_count": samples})
    state.samples = samples
    return state


def _no_op() -> None:
    return None
