"""``greenperf check``: validate result files (schema, checksum, run rules, compliance)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.checker import check_result
from harness.commands.output import emit_json
from harness.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate result files")
    p.add_argument("results", nargs="+", type=Path, help="result JSON files or folders")
    p.add_argument("--no-compliance", action="store_true",
                   help="skip the official MLLOG compliance checker")
    p.add_argument("--submission", action="store_true",
                   help="apply submission rules (e.g. enough runs) as errors")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def result_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if "logs" not in p.parts)
            if not found:
                raise UsageError(str(path), "folder holds no result files (*.json)")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(str(path), "no such file or folder")
    return files


def run(args: argparse.Namespace) -> int:
    reports = [check_result(p, run_compliance=not args.no_compliance, submission=args.submission)
               for p in result_files(args.results)]
    if args.json:
        emit_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            print(f"{'OK  ' if report.ok else 'FAIL'} {report.path}")
            for line in report.errors:
                print(f"  error: {line}")
            for line in report.warnings:
                print(f"  warning: {line}")
            for line in report.notes:
                print(f"  note: {line}")
    return 0 if all(r.ok for r in reports) else 1
