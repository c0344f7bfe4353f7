"""``greenperf submit``: pack a result folder into an MLPerf-style submission package."""

from __future__ import annotations

import argparse
from pathlib import Path

from greenperf.commands.output import emit_json
from greenperf.package import build_package


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="pack results, logs and system descriptions for submission")
    p.add_argument("folder", type=Path, help="folder of result files (searched recursively)")
    p.add_argument("-o", "--out", type=Path, default=Path("submission.tar.gz"),
                   help="the package to write (.tar.gz)")
    p.add_argument("--org", default=None,
                   help="submitting organisation (default: the results' declared submitter)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    summary = build_package(args.folder, args.out, org=args.org)
    if args.json:
        emit_json({"path": str(summary.path), "org": summary.org, "results": summary.results,
                   "files": summary.files, "bytes": summary.bytes})
    else:
        print(f"packed {len(summary.results)} result(s), {summary.files} files "
              f"({summary.bytes:,} bytes) for {summary.org} -> {summary.path}")
        print(f"verify it with: greenperf check {summary.path}")
    return 0
