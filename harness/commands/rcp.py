"""``greenperf rcp``: build RCP files (reference convergence points) from reference results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from greenperf.commands.output import emit_json, table
from greenperf.errors import UsageError
from greenperf.references import build_rcps, reference_results, write_rcps


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rcp", help="build RCP files from reference results",
        description="Pool the samples to target of every successful run of the closed-division "
                    "reference results per workload, scale, phase and global batch size, and "
                    "write one rcps_<workload>_<scale>.json per workload and scale, in the "
                    "official RCP record shape.")
    p.add_argument("references", nargs="+", type=Path, help="reference result folders")
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="folder for the RCP files (e.g. reference_results/rcps/)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def _submission_runs(workload: str) -> int | None:
    from greenperf.workload import available_workloads

    installed = available_workloads().get(workload)
    return installed.submission_runs if installed is not None else None


def run(args: argparse.Namespace) -> int:
    references = reference_results(args.references)
    if not references:
        raise UsageError(" ".join(map(str, args.references)), "no training result files found")
    build = build_rcps(references, _submission_runs)
    if not build.records:
        for warning in build.warnings:
            print(f"greenperf: warning: {warning}", file=sys.stderr)
        raise UsageError(" ".join(map(str, args.references)),
                         "no RCP record could be built (see the warnings above)")
    written = write_rcps(build, args.out)
    rows = [[name, record["BS"], len(record["samples to converge"]), f"{record['RCP Mean']:.6g}",
             f"{record['RCP Stdev']:.4g}", f"{record['Max Speedup']:.4g}",
             str(args.out / f"rcps_{workload}_{scale}.json")]
            for (workload, scale), records in sorted(build.records.items())
            for name, record in sorted(records.items())]
    if args.json:
        emit_json({"written": [str(p) for p in written], "warnings": build.warnings,
                   "records": {f"{w}_{s}": r for (w, s), r in build.records.items()}})
    else:
        print(table(rows, ["record", "BS", "runs", "mean samples", "stdev", "max speedup",
                           "file"]))
        for warning in build.warnings:
            print(f"warning: {warning}")
    return 0
