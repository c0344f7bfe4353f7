"""The training driver: MLPerf-style time-to-accuracy rules for any workload.

init (timed, outside TTA) -> run_start -> train, evaluating every
``eval_every`` samples -> run_stop at the target (success) or when the sample
or time budget runs out, or the loss diverges (aborted). TTA includes
evaluation time; throughput excludes it. A suite run may also stop a phase
early when it cannot fit its time budget (``early_stop_reason``).
"""

from __future__ import annotations

import dataclasses
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from greenperf import contention, distributed, memory
from greenperf.compliance import RulesetSpec
from greenperf.mllog_writer import NullLog, RunLog
from greenperf.progress import Budget, Progress
from greenperf.results import file_sha256
from greenperf.workload import Phase, PhaseData, Recipe, Workload


class EnergyWindowSource(Protocol):
    """What the driver needs of an energy monitor (see ``greenperf.meters``)."""

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
    dist: distributed.DistContext | None = None
    contention_threshold: float = contention.DEFAULT_THRESHOLD
    extra_log_keys: dict[str, Any] = field(default_factory=dict)
    # Stop a phase that cannot fit its time budget (``early_stop_reason``); suites set it.
    stop_early: bool = False
    threads: int = 1  # torch threads, for the advice the progress display gives
    busy_warned: bool = False  # the runner already warned of a busy machine at the start


@dataclass
class PhaseOutcome:
    record: dict[str, Any]
    model: Any


def _log_header(log: Any, ctx: RunContext, phase: Phase, recipe: Recipe, data: PhaseData,
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
    """One seeded run of one phase, logged to ``log_path``; never raises for divergence.

    Under torchrun (``ctx.dist``) every rank runs this; rank 0 alone writes the
    log, and samples, energy and memory are aggregated over ranks.
    """
    import torch

    dist_ctx = ctx.dist
    main = dist_ctx is None or dist_ctx.is_main
    with (RunLog(log_path) if main else NullLog()) as log:
        _log_header(log, ctx, phase, recipe, data, seed)
        init_begin = time.perf_counter()
        torch.manual_seed(seed)
        model = phase.build_model(data, ctx.scale, previous)
        model = model.to(ctx.device) if hasattr(model, "to") else model
        if dist_ctx is not None:
            model = distributed.wrap_model(model, dist_ctx, ctx.device)
        optimizer, scheduler = phase.build_optimizer(model, recipe)
        batches = phase.train_batches(data, recipe, seed, ctx.device)
        if dist_ctx is not None:
            batches = _shards(batches, dist_ctx.rank, dist_ctx.world_size)
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

        try:
            loop = _train_until_target(phase, model, optimizer, scheduler, batches, data,
                                       recipe, ctx, log, started, guard)
        except distributed.RankFailure as exc:
            loop = _LoopState(abort_reason=str(exc), rank_failure=True)
        except RuntimeError as exc:
            if dist_ctx is None:
                raise
            # DDP's own gradient all-reduce reports a dead peer as a RuntimeError
            # (DistBackendError); the process group is unusable from here on.
            first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            loop = _LoopState(abort_reason=f"collective failed on rank {dist_ctx.rank}, another "
                                           f"rank died or hung ({first_line})",
                              rank_failure=True)

        stopped = time.perf_counter()
        log.end("run_stop", metadata={"status": loop.status, "samples_count": loop.samples})
        energy = ctx.energy.end_window(window_name) if ctx.energy is not None else None
        energy = energy.to_dict() if hasattr(energy, "to_dict") else energy
        peak_rss = memory.peak_rss_bytes()
        if dist_ctx is not None and not loop.rank_failure:
            try:
                ranks = distributed.gather_objects(
                    {"host": socket.gethostname(), "cpu": guard.own_cpu_seconds(),
                     "energy": energy, "rss": peak_rss})
            except distributed.RankFailure as exc:
                loop.rank_failure, loop.status, loop.abort_reason = True, "aborted", str(exc)
                ranks = None
        else:
            ranks = None
        siblings = 0.0
        if ranks is not None:
            me = ranks[dist_ctx.rank]
            siblings = sum(r["cpu"] for i, r in enumerate(ranks)
                           if i != dist_ctx.rank and r["host"] == me["host"])
        reading = guard.end(sibling_cpu_seconds=siblings)

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
        "peak_rss_bytes": peak_rss,
        "cuda_max_allocated_bytes": memory.cuda_peak_bytes(ctx.device),
        "contention": reading.to_dict(),
        "energy": energy,
        "log": {"path": str(log_path), "sha256": file_sha256(log_path) if main else ""},
        "started_unix": time.time() - (time.perf_counter() - started),
    }
    if loop.stopped_early:
        record["stopped_early"] = True
    if dist_ctx is not None:
        record["world_size"] = dist_ctx.world_size
        record["rank_failure"] = loop.rank_failure
        if ranks is not None:
            record["peak_rss_bytes"] = max(r["rss"] for r in ranks)
            record["peak_rss_bytes_per_rank"] = [r["rss"] for r in ranks]
            record["energy"] = merge_rank_energy([r["energy"] for r in ranks],
                                                 [r["host"] for r in ranks])
    return PhaseOutcome(record, distributed.unwrap(model))


def merge_rank_energy(per_rank: list[Any], hosts: list[str]) -> dict[str, Any] | None:
    """One energy window for all ranks: process-scope readings summed over ranks,
    machine-scope ones (RAPL sees the whole package) counted once per host."""
    if any(e is None for e in per_rank):
        return None
    readings, seen_hosts = [], set()
    for rank, (window, host) in enumerate(zip(per_rank, hosts, strict=True)):
        for reading in window.get("readings", []):
            scope = reading.get("details", {}).get("scope")
            if scope == "machine" and host in seen_hosts:
                continue
            readings.append({**reading, "rank": rank})
        seen_hosts.add(host)
    from greenperf.labels import combine

    # Labelled as one rank's window is (meters.base.WindowMeasurement): from its readings, or
    # from the ranks' own windows when no meter read anything.
    label = combine((r.get("label") for r in readings or per_rank), keep_partly=True)
    return {"name": per_rank[0].get("name"),
            "seconds": max(float(w.get("seconds", 0.0)) for w in per_rank),
            "total_joules": sum(float(r.get("joules", 0.0)) for r in readings),
            "label": label, "readings": readings, "ranks": len(per_rank),
            "lower_bound": any(w.get("lower_bound") for w in per_rank),
            "notes": sorted({n for w in per_rank for n in w.get("notes", [])})}


@dataclass
class _LoopState:
    status: str = "aborted"
    abort_reason: str | None = None
    samples: int = 0
    eval_seconds: float = 0.0
    curve: list[dict[str, Any]] = field(default_factory=list)
    rank_failure: bool = False
    stopped_early: bool = False


def _shards(batches: Any, rank: int, world: int) -> Any:
    for batch in batches:
        shard = distributed.shard_rows(batch, rank, world)
        if shard is None:
            raise TypeError("distributed training needs batches of tensors of equal length")
        yield shard


def _evaluate(phase: Phase, model: Any, data: PhaseData, ctx: RunContext) -> float:
    """Evaluate; under DDP each rank scores a shard of the eval set and the results are
    combined (weighted by shard size), or every rank scores it all if it won't shard."""
    module = distributed.unwrap(model)
    if ctx.dist is None:
        return float(phase.evaluate(module, data, ctx.device))
    shard = distributed.shard_rows(data.eval, ctx.dist.rank, ctx.dist.world_size)
    if shard is None:
        return float(phase.evaluate(module, data, ctx.device))
    rows = int((shard[0] if isinstance(shard, (tuple, list)) else shard).shape[0])
    local = float(phase.evaluate(module, dataclasses.replace(data, eval=shard), ctx.device))
    total, n = distributed.all_reduce_sum([local * rows, rows])
    return total / max(n, 1.0)


# An early stop judges the rate only after this much of the run, so start-up (first
# batches, allocator warm-up, a short burst of load) cannot decide it.
EARLY_STOP_MIN_SECONDS = 15.0
EARLY_STOP_MIN_SHARE = 0.03  # of the time budget


def early_stop_reason(label: str, samples: int, elapsed: float, budget: Budget,
                      foreign_cores: float | None, threshold: float = contention.DEFAULT_THRESHOLD,
                      threads: int = 1) -> str | None:
    """Why a phase should stop now, or None. Pure: the caller gives the readings.

    At the rate so far (evaluations included), reaching the sample budget would take
    longer than the time budget. The target usually comes before the sample budget (at
    30-90% of it in the reference runs), so such a run may still succeed, but it is more
    likely to end at its time budget after many minutes; a suite stops instead and says
    what to run.
    """
    if samples <= 0 or elapsed < max(EARLY_STOP_MIN_SECONDS,
                                     EARLY_STOP_MIN_SHARE * budget.max_seconds):
        return None
    rate = samples / elapsed
    needed = budget.max_samples / rate
    if needed <= budget.max_seconds:
        return None
    why = (f"{label} would need ~{needed:.0f} s at the current {rate:,.0f} samples/s, over its "
           f"{budget.max_seconds:g} s budget")
    if foreign_cores is not None and foreign_cores > threshold:
        fix = "--threads 1 or --wait-quiet" if threads > 1 else "--wait-quiet"
        return (f"{why}; the machine is busy ({foreign_cores:.1f} other cores). Run with {fix}, "
                "or on a quiet machine")
    return (f"{why}; the machine is not busy, it is too slow for this budget. Run the workload "
            "alone with a larger budget (--set PHASE.max_seconds=N, open division)")


class _LiveStatus:
    """The progress display of one phase-run: status line with budget and time left, and a
    one-time warning when other processes compete for the CPU."""

    def __init__(self, ctx: RunContext, label: str, recipe: Recipe) -> None:
        self.ctx = ctx
        self.label = label
        self.target = recipe.target
        self.budget = Budget(recipe.max_samples, recipe.max_seconds)
        # Under torchrun the other ranks would read as foreign load.
        self.load = (contention.LiveLoad() if ctx.dist is None and ctx.progress.enabled
                     else None)
        self.metric: float | None = None
        self.warned = ctx.busy_warned  # once is enough; the status line keeps its BUSY flag

    def show(self, samples: int, elapsed: float, heartbeat: bool = False) -> None:
        foreign = self.load.read() if self.load is not None else None
        busy = foreign if foreign is not None and foreign > self.ctx.contention_threshold \
            else None
        if busy is not None and not self.warned:
            self.warned = True
            self.ctx.progress.message(f"  {self.label}: "
                                      + contention.busy_advice(busy, self.ctx.threads))
        self.ctx.progress.update(self.label, self.ctx.run_index, self.ctx.run_count, samples,
                                 self.metric, self.target, elapsed, self.budget, busy, heartbeat)


HEARTBEAT_SECONDS = 2.0  # status-line refresh between evals, on a terminal only


def _train_until_target(phase: Phase, model: Any, optimizer: Any, scheduler: Any, batches: Any,
                        data: PhaseData, recipe: Recipe, ctx: RunContext, log: Any,
                        started: float,
                        guard: contention.ContentionWindow | None = None) -> _LoopState:
    state = _LoopState()
    label = f"{ctx.workload.name}/{phase.name}"
    status = _LiveStatus(ctx, label, recipe)
    # Between evals a terminal's line is refreshed every few seconds: one clock read per
    # step when on a terminal, nothing otherwise.
    beat = ctx.progress.live
    clock = time.perf_counter
    next_beat = started + HEARTBEAT_SECONDS
    eval_every = recipe.eval_every
    next_eval = eval_every
    train_step = phase.train_step
    step_scheduler: Callable[[], Any] = scheduler.step if scheduler is not None else _no_op
    batch_size_of = phase.batch_size_of
    world = ctx.dist.world_size if ctx.dist is not None else 1
    samples = 0
    block = 0
    log.start("block_start", metadata={"first_epoch_num": 0, "epoch_count": 1,
                                       "samples_count": 0})
    # The hot loop does no host sync: the loss is only read at eval points.
    while True:
        batch = next(batches)
        loss = train_step(model, optimizer, batch)
        step_scheduler()
        samples += batch_size_of(batch) * world
        if samples < next_eval:
            if beat and clock() >= next_beat:
                status.show(samples, clock() - started, heartbeat=True)
                next_beat = clock() + HEARTBEAT_SECONDS
            continue
        log.end("block_stop", metadata={"first_epoch_num": block, "samples_count": samples})
        loss_value = float(loss.detach() if hasattr(loss, "detach") else loss)
        if ctx.dist is not None:
            loss_value = distributed.all_reduce_sum([loss_value])[0] / world
        elapsed = time.perf_counter() - started
        if not math.isfinite(loss_value) or loss_value > recipe.max_loss:
            state.abort_reason = (f"training diverged: loss {loss_value} at {samples} samples "
                                  f"(limit {recipe.max_loss:g})")
            break
        log.start("eval_start", metadata={"samples_count": samples, "epoch_num": block})
        eval_begin = time.perf_counter()
        metric = _evaluate(phase, model, data, ctx)
        if hasattr(model, "train"):
            model.train()
        state.eval_seconds += time.perf_counter() - eval_begin
        elapsed = time.perf_counter() - started
        log.event("eval_accuracy", metric, metadata={"samples_count": samples, "epoch_num": block})
        log.end("eval_stop", metadata={"samples_count": samples, "epoch_num": block})
        state.curve.append({"samples": samples, "seconds": elapsed,
                            "metric": metric if math.isfinite(metric) else None})
        status.metric = metric
        status.show(samples, elapsed)
        decision = None
        if metric >= recipe.target:
            decision = ("success", None)
        elif samples >= recipe.max_samples:
            decision = ("aborted", f"sample budget of {recipe.max_samples} spent before the "
                                   "target")
        elif elapsed >= recipe.max_seconds:
            decision = ("aborted", f"time budget of {recipe.max_seconds:g} s spent before the "
                                   "target")
        elif ctx.stop_early:
            foreign = guard.end().foreign_cores if guard is not None else None
            reason = early_stop_reason(label, samples, elapsed, status.budget, foreign,
                                       ctx.contention_threshold, ctx.threads)
            if reason is not None:
                decision = ("aborted", f"stopped early: {reason}")
                state.stopped_early = True
        # One decision, rank 0's, so every rank stops at the same step.
        stop = decision is not None
        if ctx.dist is not None:
            stop = distributed.broadcast_flag(stop)
        if stop:
            state.status, state.abort_reason = decision or ("aborted", "stopped by rank 0")
            break
        next_eval += eval_every
        block += 1
        log.start("block_start", metadata={"first_epoch_num": block, "epoch_count": 1,
                                           "samples_count": samples})
    state.samples = samples
    return state


def _no_op() -> None:
    return None
