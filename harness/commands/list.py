"""``greenperf list``: workloads, phases, scales and targets; suites."""

from __future__ import annotations

import argparse

from greenperf.commands.output import emit_json, table
from greenperf.workload import available_suites, available_workloads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list workloads, scales, targets and suites")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    workloads = available_workloads()
    rows = []
    data = {"workloads": [], "suites": []}
    for name, workload in workloads.items():
        entry = {"name": name, "description": workload.description, "phases": []}
        for phase in workload.phases():
            for scale in workload.scales:
                recipe = phase.recipe(scale)
                rows.append([name, phase.name, scale, f"{phase.metric} >= {recipe.target:g}",
                             recipe.batch_size, f"{recipe.eval_every:,}",
                             f"{recipe.max_samples:,}", f"{recipe.max_seconds:g} s"])
                entry["phases"].append({"phase": phase.name, "scale": scale,
                                        "metric": phase.metric, "target": recipe.target,
                                        "batch_size": recipe.batch_size,
                                        "eval_every": recipe.eval_every,
                                        "max_samples": recipe.max_samples,
                                        "max_seconds": recipe.max_seconds})
        data["workloads"].append(entry)
    suites = available_suites()
    for suite in suites.values():
        data["suites"].append({"name": suite.name, "scale": suite.scale, "runs": suite.runs,
                               "workloads": list(suite.workloads),
                               "description": suite.description})
    if args.json:
        emit_json(data)
        return 0
    print(table(rows, ["workload", "phase", "scale", "target", "batch", "eval every",
                       "budget (samples)", "budget (time)"]))
    print("A run is aborted when either budget is spent before the target "
          "(change one with --set PHASE.max_samples=N or max_seconds=S: open division).")
    print()
    print(table([[s.name, s.scale, s.runs, ", ".join(s.workloads), s.description]
                 for s in suites.values()], ["suite", "scale", "runs", "workloads", "about"]))
    return 0
