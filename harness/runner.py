"""Runs N seeded runs of a workload and keeps its result file current.

The result file is rewritten after every completed run, marked ``incomplete``
until the last one, so Ctrl-C or a crash during run k leaves runs 1..k-1 on
disk.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenperf import __version__, account, compliance, contention, distributed, sysinfo
from greenperf.errors import GreenperfError, UsageError
from greenperf.progress import Progress
from greenperf.results import SCHEMA_VERSION, canonical_json, ensure_writable_dir, write_result
from greenperf.scoring import olympic_score
from greenperf.training import EnergyWindowSource, RunContext, ruleset_spec, run_phase
from greenperf.workload import Phase, PhaseData, Recipe, Workload, check_scale

RECIPE_FIELDS = {f.name for f in dataclasses.fields(Recipe)} - {"hyperparameters"}


@dataclass
class RunRequest:
    """What the user asked for; validated by ``resolve``."""

    workload: Workload
    scale: str
    runs: int
    out_dir: Path
    seeds: list[int] | None = None
    device: str = "cpu"
    threads: int | None = None
    # No --threads: one thread per idle core, from a 0.5 s reading of the machine's load
    # (contention.choose_threads). False keeps torch's current setting (library use).
    auto_threads: bool = False
    # Stop a phase that cannot fit its time budget, and raise EarlyStop after saving.
    stop_early: bool = False
    batch_size: int | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None
    system_file: Path | None = None
    wait_quiet: bool = False
    contention_threshold: float = contention.DEFAULT_THRESHOLD
    max_retries: int = 2
    collective_timeout: float = distributed.DEFAULT_COLLECTIVE_TIMEOUT_S
    check_compliance: bool = True
    energy_factory: Any = None
    region: str | None = None
    prices_file: Path | None = None
    amortise: int | None = None
    progress: Progress = field(default_factory=Progress)


def _coerce(value: str, like: Any, where: str) -> Any:
    try:
        if isinstance(like, bool):
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise ValueError(value)
        if isinstance(like, int):
            return int(value)
        if isinstance(like, float):
            return float(value)
    except ValueError as exc:
        raise UsageError(where, f"{value!r} is not a valid {type(like).__name__}") from exc
    return value


def apply_overrides(phases: list[Phase], recipes: dict[str, Recipe], batch_size: int | None,
                    overrides: dict[str, str]) -> tuple[dict[str, Recipe], str]:
    """Apply ``--batch-size`` (closed, by the scaling rule) and ``--set`` (makes it open)."""
    division = "closed"
    out = dict(recipes)
    if batch_size is not None:
        if batch_size < 1:
            raise UsageError("--batch-size", f"{batch_size} must be a positive integer")
        out = {name: r.with_batch_size(batch_size) for name, r in out.items()}
    names = [p.name for p in phases]
    for key, raw in overrides.items():
        phase_name, _, name = key.rpartition(".")
        targets = [phase_name] if phase_name else names
        where = f"--set {key}"
        if phase_name and phase_name not in names:
            raise UsageError(where, f"unknown phase {phase_name!r} (phases: {', '.join(names)})")
        for target in targets:
            recipe = out[target]
            if name in RECIPE_FIELDS:
                value = _coerce(raw, getattr(recipe, name), where)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                    raise UsageError(where, f"{raw} must be > 0")
                recipe = dataclasses.replace(recipe, **{name: value})
            elif name in recipe.hyperparameters:
                hyper = dict(recipe.hyperparameters)
                hyper[name] = _coerce(raw, hyper[name], where)
                recipe = dataclasses.replace(recipe, hyperparameters=hyper)
            else:
                known = sorted(RECIPE_FIELDS | set(recipe.hyperparameters))
                raise UsageError(where, f"unknown setting {name!r} (known: {', '.join(known)})")
            out[target] = recipe
        division = "open"
    return out, division


def _seeds(request: RunRequest) -> list[int]:
    if request.runs < 1:
        raise UsageError("--runs", f"{request.runs} must be at least 1")
    seeds = request.seeds if request.seeds is not None else list(range(request.runs))
    if len(seeds) != request.runs:
        raise UsageError("--seeds", f"{len(seeds)} seeds given for {request.runs} runs")
    if len(set(seeds)) != len(seeds):
        raise UsageError("--seeds", "seeds must be distinct")
    return seeds


# Provenance, not configuration: the same thread count chosen for another measured
# reason is the same configuration.
_NOT_HASHED = ("threads_reason",)


def config_hash(config: dict[str, Any]) -> str:
    hashed = {k: v for k, v in config.items() if k not in _NOT_HASHED}
    return hashlib.sha256(canonical_json(hashed)).hexdigest()


class EarlyStop(GreenperfError):
    """A phase stopped because it could not fit its time budget; the file is saved."""


_torch_default_threads: int | None = None
_OMP_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def resolve_threads(request: RunRequest) -> contention.ThreadChoice:
    """The torch thread count for this request and why; sets it."""
    import torch

    global _torch_default_threads
    if _torch_default_threads is None:  # before any set_num_threads of this process
        _torch_default_threads = torch.get_num_threads()
    if request.threads is not None:
        if request.threads < 1:
            raise UsageError("--threads", f"{request.threads} must be at least 1")
        choice = contention.ThreadChoice(request.threads, "--threads")
    elif os.environ.get("OMP_NUM_THREADS"):
        choice = contention.ThreadChoice(torch.get_num_threads(),
                                         f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    elif not request.auto_threads or distributed.launched_by_torchrun():
        # Under torchrun every other rank would read as foreign load.
        return contention.ThreadChoice(torch.get_num_threads(), "torch default")
    else:
        if request.wait_quiet:
            # Choose for the quiet machine the runs will wait for, not for the load now.
            contention.wait_until_quiet()
        choice = contention.choose_threads(contention.usable_cpus(),
                                           contention.foreign_cores_now(),
                                           limit=_torch_default_threads)
    torch.set_num_threads(choice.threads)
    return choice


def result_path(out_dir: Path, workload: str, scale: str) -> Path:
    return out_dir / f"{workload}_{scale}_training.json"


def run_workload(request: RunRequest) -> Path:
    """Run and score a workload; returns the result file's path."""
    import torch

    workload = request.workload
    check_scale(workload, request.scale)
    seeds = _seeds(request)
    if request.threads is not None and request.threads < 1:
        raise UsageError("--threads", f"{request.threads} must be at least 1")
    if request.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {request.device}", "CUDA is not available on this machine")
    if request.data_dir is not None and not request.data_dir.is_dir():
        raise UsageError(f"--data-dir {request.data_dir}", "not a folder")
    phases = workload.phases()
    references = {p.name: p.recipe(request.scale, request.data_dir) for p in phases}
    dist_ctx = distributed.init_from_env(request.device, request.collective_timeout)
    world = dist_ctx.world_size if dist_ctx else 1
    main = dist_ctx is None or dist_ctx.is_main
    device = distributed.rank_device(request.device, dist_ctx)
    batch_size = _global_batch_size(request.batch_size, references, world)
    recipes, division = apply_overrides(phases, references, batch_size, request.overrides)
    declared = sysinfo.load_declared(request.system_file)
    out_dir = ensure_writable_dir(request.out_dir) if main else request.out_dir
    threads = resolve_threads(request)
    auto = sysinfo.auto_system()
    if dist_ctx is not None:
        nodes = {n["hostname"]: n for n in distributed.gather_objects(auto)}
        auto = {**auto, "nodes": list(nodes.values()), "world_size": world}
    if not main:
        request.progress = Progress(enabled=False)
    system = {"name": sysinfo.system_name(declared, auto), "auto": auto, "declared": declared,
              "declared_source": str(request.system_file) if request.system_file else None}
    config = {
        "workload": workload.name, "scale": request.scale, "division": division,
        "world_size": world, "backend": dist_ctx.backend if dist_ctx else None,
        "runs": request.runs, "seeds": seeds, "device": request.device,
        "threads": torch.get_num_threads(), "threads_reason": threads.reason,
        "batch_size_override": request.batch_size,
        "overrides": dict(request.overrides),
        "data_dir": str(request.data_dir) if request.data_dir else None,
        "phases": {name: r.to_dict() for name, r in recipes.items()},
        "contention_threshold": request.contention_threshold, "wait_quiet": request.wait_quiet,
    }
    # OpenMP settings change CPU speed under load (README, "Busy machines"); recorded when
    # set, and only then, so results without them keep their configuration hash.
    omp_env = {k: os.environ[k] for k in _OMP_ENV if os.environ.get(k)}
    if omp_env:
        config["omp_env"] = omp_env
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "training",
        "generator": {"name": "greenperf", "version": __version__},
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "status": "incomplete",
        "status_reason": "running",
        "workload": workload.name,
        "scale": request.scale,
        "division": division,
        "origin": "greenperf",
        "system": system,
        "software": sysinfo.software(),
        "config": config,
        "config_hash": config_hash(config),
        "phases": [],
        "sustainability": None,
        "compliance": {"rulesets": compliance.rulesets_to_check(), "findings": []},
    }
    account_settings = account.resolve_settings(
        region=request.region, prices_file=request.prices_file, amortise=request.amortise,
        doc=doc)
    path = result_path(out_dir, workload.name, request.scale)
    log_root = out_dir / "logs" / f"{workload.name}_{request.scale}"

    request.progress.message(f"greenperf: {workload.name} ({request.scale}, {division}), "
                             f"{request.runs} run(s), {_threads_text(torch.get_num_threads())} "
                             f"({threads.reason}) -> {path}")
    busy_at_start = (threads.foreign_cores is not None
                     and threads.foreign_cores > request.contention_threshold)
    if busy_at_start:
        request.progress.message("  " + contention.busy_advice(threads.foreign_cores or 0.0,
                                                               threads.threads))
    datas: dict[str, PhaseData] = {}
    for phase in phases:
        begin = time.perf_counter()
        datas[phase.name] = phase.build_data(recipes[phase.name], request.scale, request.data_dir)
        dataset = datas[phase.name].info.to_dict()
        dataset["generation_seconds"] = time.perf_counter() - begin
        doc["phases"].append({
            "name": phase.name, "metric": phase.metric, "target": recipes[phase.name].target,
            "recipe": recipes[phase.name].to_dict(), "dataset": dataset, "runs": [],
            "score": olympic_score([], []).to_dict(),
        })
    if main:
        write_result(path, doc)

    ctx_base = dict(workload=workload, scale=request.scale, division=division,
                    device=device, dist=dist_ctx,
                    submitter=str(declared.get("submitter") or "unspecified"),
                    platform=system["name"],
                    submission_status=str(declared.get("status") or "onprem"),
                    progress=request.progress, run_count=request.runs,
                    contention_threshold=request.contention_threshold,
                    stop_early=request.stop_early, threads=torch.get_num_threads(),
                    busy_warned=busy_at_start)
    energy: EnergyWindowSource | None = (request.energy_factory(request.device)
                                         if request.energy_factory else None)
    completed = 0
    try:
        for k, seed in enumerate(seeds, start=1):
            served = _run_all_phases(request, phases, datas, recipes, references, seed, k,
                                     ctx_base, energy, log_root, out_dir, doc)
            if main and served is not None and doc.get("checkpoint") is None:
                doc["checkpoint"] = save_checkpoint(served, out_dir, workload.name,
                                                    request.scale, k)
            completed = k
            _rescore(doc)
            doc["sustainability"] = account.build_account(doc, account_settings)
            doc["status_reason"] = f"{completed} of {request.runs} runs done"
            failed = _rank_failure(doc)
            if failed:
                doc["status_reason"] = (f"run {k} of {request.runs} aborted: {failed}; "
                                        f"runs 1-{k} kept")
            stopped = _early_stop(doc)
            if stopped:
                doc["status_reason"] = f"run {k} of {request.runs} {stopped}; runs 1-{k} kept"
            if main:
                write_result(path, doc)
            if failed:
                raise GreenperfError(f"run {k}", f"aborted, a rank failed: {failed}")
            if stopped:
                raise EarlyStop(workload.name, stopped.removeprefix("stopped early: "))
    except KeyboardInterrupt:
        doc["status"] = "incomplete"
        doc["status_reason"] = (f"interrupted during run {completed + 1} of {request.runs}; "
                                f"runs 1-{completed} kept" if completed else
                                "interrupted during run 1; no run completed")
        if main:
            write_result(path, doc)
        raise
    finally:
        if energy is not None and hasattr(energy, "close"):
            doc["energy_meters"] = energy.describe() if hasattr(energy, "describe") else None
            energy.close()
    doc["status"] = "complete"
    doc["status_reason"] = None
    if main:
        write_result(path, doc)
    return path


def _global_batch_size(requested: int | None, references: dict[str, Recipe],
                       world: int) -> int | None:
    """Global batch = per-rank batch x world size; ``--batch-size`` names the global one."""
    if world == 1:
        return requested
    sizes = {r.batch_size for r in references.values()}
    if requested is None:
        if len(sizes) != 1:
            raise UsageError("--batch-size", "phases differ in batch size; give the global "
                                             "batch size explicitly")
        requested = sizes.pop() * world
    if requested % world:
        raise UsageError("--batch-size", f"global batch {requested} is not divisible by the "
                                         f"world size {world}")
    return requested


def _threads_text(n: int) -> str:
    return f"{n} torch thread" + ("" if n == 1 else "s")


def _early_stop(doc: dict[str, Any]) -> str | None:
    for phase in doc["phases"]:
        for run in phase["runs"][-1:]:
            if run.get("stopped_early"):
                return str(run.get("abort_reason"))
    return None


def _rank_failure(doc: dict[str, Any]) -> str | None:
    for phase in doc["phases"]:
        for run in phase["runs"][-1:]:
            if run.get("rank_failure"):
                return run.get("abort_reason") or "rank failure"
    return None


def _run_all_phases(request: RunRequest, phases: list[Phase], datas: dict[str, PhaseData],
                    recipes: dict[str, Recipe], references: dict[str, Recipe], seed: int, k: int,
                    ctx_base: dict[str, Any], energy: EnergyWindowSource | None, log_root: Path,
                    out_dir: Path, doc: dict[str, Any]) -> Any | None:
    """Run every phase of run ``k``; returns the served (last-phase) model if it converged."""
    previous = None
    previous_ok = True
    for phase, phase_doc in zip(phases, doc["phases"], strict=True):
        recipe = recipes[phase.name]
        log_path = log_root / phase.name / f"result_{k}.txt"
        record = None
        distributed_run = ctx_base.get("dist") is not None
        main_rank = not distributed_run or ctx_base["dist"].is_main
        for attempt in range(request.max_retries + 1):
            # Ranks would disagree on waiting and retrying (each sees the others as load).
            if request.wait_quiet and not distributed_run:
                contention.wait_until_quiet()
            ctx = RunContext(run_index=k, energy=energy, **ctx_base)
            if not previous_ok:
                record = _skipped_record(k, seed, log_path, "previous phase aborted", main_rank)
                outcome_model = None
                break
            outcome = run_phase(phase, datas[phase.name], recipe, seed, ctx, log_path, previous)
            record, outcome_model = outcome.record, outcome.model
            record["attempts"] = attempt + 1
            if distributed_run or not (request.wait_quiet and record["contention"]["contended"]):
                break
            request.progress.message(
                f"run {k} was contended ({record['contention']['foreign_cores']:.2f} foreign "
                f"cores); retrying ({attempt + 1}/{request.max_retries})")
        assert record is not None
        record["log"]["path"] = str(Path(record["log"]["path"]).relative_to(out_dir))
        phase_doc["runs"].append(record)
        request.progress.message(_run_line(phase.name, record, request.runs))
        if request.check_compliance and main_rank and log_path.exists():
            spec = ruleset_spec(request.workload, phase, recipe, references[phase.name])
            for finding in compliance.check_logs([(log_path, spec)]):
                entry = finding.to_dict()
                entry["log"] = record["log"]["path"]
                entry["run"] = k
                entry["phase"] = phase.name
                doc["compliance"]["findings"].append(entry)
        previous = outcome_model
        previous_ok = record["status"] == "success"
        if record.get("rank_failure"):
            break  # the process group is gone; no later phase can run
    return previous if previous_ok and previous is not None else None


def save_checkpoint(model: Any, out_dir: Path, workload: str, scale: str,
                    run: int) -> dict[str, Any]:
    """The first converged run's served model, for ``greenperf infer --from-result``."""
    import torch
    from greenperf.results import file_sha256

    path = out_dir / "checkpoints" / f"{workload}_{scale}_run{run}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return {"run": run, "path": str(path.relative_to(out_dir)), "sha256": file_sha256(path),
            "bytes": path.stat().st_size}


def _skipped_record(k: int, seed: int, log_path: Path, reason: str,
                    write_log: bool = True) -> dict[str, Any]:
    from greenperf.mllog_writer import RunLog
    from greenperf.results import file_sha256

    if write_log:
        with RunLog(log_path) as log:
            log.event("note", f"not run: {reason}")
    return {
        "index": k, "seed": seed, "status": "aborted", "abort_reason": reason,
        "init_seconds": 0.0, "tta_seconds": 0.0, "samples_seen": 0, "samples_to_target": None,
        "epochs": 0.0, "train_seconds": 0.0, "eval_seconds": 0.0, "train_throughput": 0.0,
        "evals": 0, "final_metric": None, "eval_curve": [], "peak_rss_bytes": 0,
        "cuda_max_allocated_bytes": None,
        "contention": {"foreign_cores": None, "contended": False},
        "energy": None,
        "log": {"path": str(log_path), "sha256": file_sha256(log_path) if write_log else ""},
    }


def _run_line(phase: str, record: dict[str, Any], runs: int) -> str:
    status = record["status"]
    foreign = record["contention"]["foreign_cores"]
    flag = " CONTENDED" if record["contention"]["contended"] else ""
    detail = (f"{record['samples_to_target']:,} samples to target" if status == "success"
              else record.get("abort_reason") or "aborted")
    load = f", foreign cores {foreign:.2f}" if foreign is not None else ""
    return (f"  {phase} run {record['index']}/{runs} seed {record['seed']}: {status} in "
            f"{record['tta_seconds']:.2f} s ({detail}; "
            f"{record['train_throughput']:,.0f} samples/s{load}){flag}")


def _rescore(doc: dict[str, Any]) -> None:
    for phase_doc in doc["phases"]:
        phase_doc["score"] = score_phase(phase_doc["runs"]).to_dict()


def score_phase(runs: list[dict[str, Any]]) -> Any:
    return olympic_score([r["tta_seconds"] for r in runs],
                         [r["status"] == "success" for r in runs],
                         [r["index"] for r in runs])
