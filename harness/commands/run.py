"""``greenperf run``: train workloads to their targets and write result files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from greenperf import contention, distributed
from greenperf.commands.infer import print_summary, serve_and_measure, summarise
from greenperf.commands.output import emit_json, table
from greenperf.errors import UsageError
from greenperf.progress import Progress
from greenperf.runner import EarlyStop, RunRequest, run_workload
from greenperf.workload import get_suite, get_workload


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train a workload (or a suite) to its target")
    p.add_argument("workload", nargs="?", help="workload name (see greenperf list)")
    p.add_argument("--suite", help="run every workload of a suite (e.g. quick)")
    p.add_argument("--scale", default=None, help="tiny (2 CPU cores) or standard (one GPU)")
    p.add_argument("--runs", type=int, default=None, help="seeded runs (default: the workload's)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds, one per run")
    p.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: one per core that other processes leave "
                        "idle, read just before each workload)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="global batch size; the learning rate follows the recipe's scaling rule "
                        "(stays closed division)")
    p.add_argument("--set", action="append", default=[], metavar="[PHASE.]KEY=VALUE",
                   help="override a recipe setting (makes the result open division)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="use a local copy of real data in the workload's format")
    p.add_argument("--system", type=Path, default=None,
                   help="TOML with the declared system description (MLCommons field names)")
    p.add_argument("--wait-quiet", action="store_true",
                   help="wait for a quiet machine before each run and retry contended runs")
    p.add_argument("--contention-threshold", type=float, default=contention.DEFAULT_THRESHOLD,
                   help="foreign cores above which a run is flagged contended")
    p.add_argument("--no-compliance", action="store_true",
                   help="skip the official compliance checker after each run")
    p.add_argument("--cpu-tdp", type=float, default=None,
                   help="CPU package TDP in watts for the CPU energy estimate (when no RAPL)")
    p.add_argument("--no-energy", action="store_true", help="do not measure energy")
    p.add_argument("--region", default=None,
                   help="grid region for carbon (e.g. FR, US; default: world average)")
    p.add_argument("--prices", type=Path, default=None,
                   help="TOML with energy/device prices (each with source and date)")
    p.add_argument("--amortise", type=int, default=None,
                   help="fine-tunes served by one pre-training, for the amortisation account")
    p.add_argument("--nproc-per-node", type=int, default=1,
                   help="data-parallel processes per node, launched through torchrun (DDP)")
    p.add_argument("--nnodes", type=int, default=1, help="nodes taking part (torchrun)")
    p.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT",
                   help="rendezvous endpoint of a multi-node run (torchrun's c10d backend)")
    p.add_argument("--node-rank", type=int, default=None, help="this node's rank (multi-node)")
    p.add_argument("--collective-timeout", type=float,
                   default=distributed.DEFAULT_COLLECTIVE_TIMEOUT_S,
                   help="seconds before a hung collective ends the run (a rank died)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(handler=run)


def _parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item}", "expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise UsageError(f"--seeds {text}", "expected comma-separated integers") from exc


_LAUNCH_OPTIONS = ("--nproc-per-node", "--nnodes", "--rdzv-endpoint", "--node-rank")


def _without_launch_options(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in _LAUNCH_OPTIONS:
            skip = "=" not in item
            continue
        out.append(item)
    return out


def _launch(args: argparse.Namespace) -> int:
    """Re-run this very command under torchrun, one process per rank."""
    import subprocess

    if args.nproc_per_node < 1 or args.nnodes < 1:
        raise UsageError("--nproc-per-node/--nnodes", "must be at least 1")
    if args.nnodes > 1 and not args.rdzv_endpoint:
        raise UsageError("--nnodes", "a multi-node run needs --rdzv-endpoint HOST:PORT")
    cmd = distributed.torchrun_command(_without_launch_options(args.argv), args.nproc_per_node,
                                       args.nnodes, args.rdzv_endpoint, args.node_rank)
    return subprocess.run(cmd).returncode


def run(args: argparse.Namespace) -> int:
    if (args.nproc_per_node > 1 or args.nnodes > 1) and not distributed.launched_by_torchrun():
        return _launch(args)
    try:
        return _run(args)
    finally:
        distributed.shutdown()


def _run(args: argparse.Namespace) -> int:
    if bool(args.workload) == bool(args.suite):
        raise UsageError("greenperf run", "name a workload or --suite, not both or neither")
    suite = None
    if args.suite:
        suite = get_suite(args.suite)
        names, scale = list(suite.workloads), args.scale or suite.scale
        runs = args.runs if args.runs is not None else suite.runs
    else:
        names, scale, runs = [args.workload], args.scale or "tiny", args.runs
    workloads = [get_workload(n) for n in names]
    if args.contention_threshold <= 0:
        raise UsageError("--contention-threshold", "must be > 0")
    progress = Progress(enabled=not args.quiet)
    if args.cpu_tdp is not None and args.cpu_tdp <= 0:
        raise UsageError("--cpu-tdp", "must be > 0 watts")
    energy_factory = None if args.no_energy else energy_monitor_factory(args.cpu_tdp)
    summary = []
    inference_paths: list[Path] = []
    for workload in workloads:
        request = RunRequest(
            workload=workload, scale=scale,
            runs=runs if runs is not None else workload.default_runs(scale),
            out_dir=args.out, seeds=_parse_seeds(args.seeds), device=args.device,
            threads=args.threads, batch_size=args.batch_size, overrides=_parse_sets(args.set),
            data_dir=args.data_dir, system_file=args.system, wait_quiet=args.wait_quiet,
            contention_threshold=args.contention_threshold,
            check_compliance=not args.no_compliance, progress=progress,
            energy_factory=energy_factory, region=args.region, prices_file=args.prices,
            amortise=args.amortise, collective_timeout=args.collective_timeout,
            auto_threads=args.threads is None, stop_early=suite is not None,
        )
        try:
            path = run_workload(request)
        except EarlyStop as exc:
            # One line, why and what to run instead; the result files written so far stay.
            print(f"greenperf: stopping the {suite.name + ' suite' if suite else 'run'}: "
                  f"{exc.problem}; results so far are kept in {args.out}", file=sys.stderr)
            return 1
        if os.environ.get("RANK", "0") != "0":
            continue  # rank 0 writes and reports for the whole run
        doc = json.loads(path.read_text())
        if suite is not None and suite.inference_scenarios and doc.get("checkpoint"):
            inference_paths += _serve(workload.name, path, suite, args)
        for phase in doc["phases"]:
            score = phase["score"]
            summary.append({"workload": doc["workload"], "phase": phase["name"],
                            "scale": doc["scale"], "score_seconds": score["value"],
                            "method": score["method"], "reason": score["reason"],
                            "runs": score["n_runs"], "success": score["n_success"],
                            "result": str(path)})
    if os.environ.get("RANK", "0") != "0":
        return 0
    inference_rows = summarise(inference_paths)
    if args.json:
        emit_json({"training": summary, "inference": inference_rows})
    else:
        print(table([[s["workload"], s["phase"], s["scale"],
                      "-" if s["score_seconds"] is None else f"{s['score_seconds']:.2f} s",
                      s["method"], f"{s['success']}/{s['runs']}", s["result"]] for s in summary],
                    ["workload", "phase", "scale", "time to target", "score", "ok", "result"]))
        if inference_rows:
            print()
            print_summary(inference_rows, as_json=False)
    trained = all(s["score_seconds"] is not None for s in summary)
    served = all(r["verdict"] == "VALID" for r in inference_rows)
    return 0 if trained and served else 1


def _serve(workload: str, result: Path, suite, args: argparse.Namespace) -> list[Path]:
    """The suite's LoadGen scenarios, serving the model the training run just saved."""
    if distributed.launched_by_torchrun():
        return []  # serve from one process, after the data-parallel run
    return serve_and_measure(workload, list(suite.inference_scenarios),
                             ["performance", "accuracy"], args.out, from_result=result,
                             device=args.device, energy=not args.no_energy, system=args.system,
                             region=args.region, prices=args.prices, quiet=args.quiet)


def energy_monitor_factory(cpu_tdp_watts: float | None):
    """An EnergyMonitor per workload run: NVML on CUDA devices, RAPL or a TDP estimate."""
    from greenperf.meters import EnergyMonitor

    def make(device: str) -> EnergyMonitor:
        on_gpu = device.startswith("cuda")
        index = int(device.split(":", 1)[1]) if on_gpu and ":" in device else 0
        return EnergyMonitor(gpu_indices=[index] if on_gpu else None, measure_gpu=on_gpu,
                             cpu_tdp_watts=cpu_tdp_watts)

    return make
