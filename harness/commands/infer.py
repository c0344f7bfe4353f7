"""``greenperf infer``: serve a trained workload model under the real MLCommons LoadGen."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from greenperf.commands.output import emit_json, table
from greenperf.errors import UsageError
from greenperf.inference import Scenario
from greenperf.progress import Progress
from greenperf.workload import check_scale, get_suite, get_workload

SCENARIOS = [s.value.lower() for s in Scenario]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("infer", help="inference under LoadGen (Offline, SingleStream, "
                                     "MultiStream, Server)")
    p.add_argument("workload", nargs="?", help="workload name (see greenperf list)")
    p.add_argument("--suite", help="every workload of a suite, Offline and SingleStream")
    p.add_argument("--scenario", action="append", default=None, choices=SCENARIOS,
                   help="LoadGen scenario; repeat for several (default: offline)")
    p.add_argument("--mode", choices=["performance", "accuracy", "both"], default="both",
                   help="performance, accuracy (the 99%% quality gate) or both")
    p.add_argument("--profile", choices=["quick", "standard"], default="quick",
                   help="quick: seconds per scenario (CI); standard: LoadGen defaults (600 s)")
    p.add_argument("--from-result", type=Path, default=None,
                   help="serve the checkpoint recorded in this training result")
    p.add_argument("--checkpoint", type=Path, default=None, help="serve this checkpoint file")
    p.add_argument("--scale", default="tiny", help="scale of the model (tiny, standard)")
    p.add_argument("--data-dir", type=Path, default=None, help="local real data (as for run)")
    p.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--system", type=Path, default=None, help="declared system TOML")
    p.add_argument("--region", default=None, help="grid region for carbon")
    p.add_argument("--prices", type=Path, default=None, help="price config TOML")
    p.add_argument("--no-energy", action="store_true", help="do not measure energy")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(handler=run)


def _modes(mode: str) -> list[str]:
    return ["performance", "accuracy"] if mode == "both" else [mode]


def serve_and_measure(workload_name: str, scenarios: list[str], modes: list[str], out: Path,
                      *, from_result: Path | None = None, checkpoint: Path | None = None,
                      scale: str = "tiny", data_dir: Path | None = None, device: str = "cpu",
                      profile: str = "quick", energy: bool = True, system: Path | None = None,
                      region: str | None = None, prices: Path | None = None,
                      quiet: bool = False) -> list[Path]:
    """Load (or train) the model, then run each scenario; returns the result files."""
    from greenperf.commands.run import energy_monitor_factory
    from greenperf.results import ensure_writable_dir
    from greenperf.serving import infer, model_from_checkpoint, model_from_result

    workload = get_workload(workload_name)
    out = ensure_writable_dir(out)
    if from_result is not None:
        served = model_from_result(from_result, workload, device)
    elif checkpoint is not None:
        check_scale(workload, scale)
        served = model_from_checkpoint(checkpoint, workload, scale, data_dir, device)
    else:
        from greenperf.runner import RunRequest, run_workload

        check_scale(workload, scale)
        trained = run_workload(RunRequest(
            workload=workload, scale=scale, runs=1, out_dir=out, device=device,
            data_dir=data_dir, system_file=system, progress=Progress(enabled=not quiet)))
        served = model_from_result(trained, workload, device)
    monitor = energy_monitor_factory(None)(device) if energy else None
    try:
        return infer(served, scenarios, modes, out, profile=profile, device=device,
                     energy=monitor, system_file=system, region=region, prices_file=prices)
    finally:
        if monitor is not None:
            monitor.close()


def summarise(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        doc = json.loads(path.read_text())
        for r in doc["inference"]["results"]:
            acc = r.get("accuracy") or {}
            rows.append({"workload": doc["workload"], "scenario": r["scenario"],
                         "mode": r["mode"], "verdict": r["verdict"],
                         "metric": r["metric_name"], "value": r["metric_value"],
                         "unit": r["metric_unit"], "accuracy": acc.get("quality"),
                         "result": str(path)})
    return rows


def print_summary(rows: list[dict], as_json: bool) -> None:
    if as_json:
        emit_json(rows)
        return
    print(table([[r["workload"], r["scenario"], r["mode"], r["verdict"],
                  "" if r["value"] is None else f"{r['metric']} {r['value']:.4g} {r['unit']}",
                  "" if r["accuracy"] is None else f"{r['accuracy']:.4f}", r["result"]]
                 for r in rows],
                ["workload", "scenario", "mode", "verdict", "metric", "accuracy", "result"]))


def run(args: argparse.Namespace) -> int:
    if bool(args.workload) == bool(args.suite):
        raise UsageError("greenperf infer", "name a workload or --suite, not both or neither")
    if args.from_result is not None and args.checkpoint is not None:
        raise UsageError("--from-result/--checkpoint", "give one model source, not both")
    scenarios = args.scenario or (["offline", "singlestream"] if args.suite else ["offline"])
    names = [args.workload] if args.workload else list(get_suite(args.suite).workloads)
    paths = []
    for name in names:
        paths += serve_and_measure(
            name, scenarios, _modes(args.mode), args.out, from_result=args.from_result,
            checkpoint=args.checkpoint, scale=args.scale, data_dir=args.data_dir,
            device=args.device, profile=args.profile, energy=not args.no_energy,
            system=args.system, region=args.region, prices=args.prices, quiet=args.quiet)
    rows = summarise(paths)
    print_summary(rows, args.json)
    return 0 if all(r["verdict"] == "VALID" for r in rows) else 1


