"""``greenperf check``: validate result files (schema, checksum, run rules, compliance), and
submission packages (member safety and manifest hashes, then the same checks on the results)."""

from __future__ import annotations

import argparse
from pathlib import Path

from greenperf import package
from greenperf.checker import check_result
from greenperf.commands.output import emit_json
from greenperf.errors import UsageError
from greenperf.results import NON_RESULT_DIRS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate result files")
    p.add_argument("results", nargs="+", type=Path,
                   help="result JSON files or folders, or submission packages (.tar.gz)")
    p.add_argument("--no-compliance", action="store_true",
                   help="skip the official MLLOG compliance checker")
    p.add_argument("--submission", action="store_true",
                   help="apply submission rules (e.g. enough runs) as errors")
    p.add_argument("--against", type=Path, default=None, metavar="DIR",
                   help="reference folder (e.g. reference_results/): RCP convergence check "
                        "(closed division) and speed relative to the reference systems")
    p.add_argument("--max-member-bytes", type=int, default=package.DEFAULT_MAX_MEMBER_BYTES,
                   help="refuse a submission package with a member larger than this")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def result_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json")
                           if not NON_RESULT_DIRS & set(p.relative_to(path).parts[:-1]))
            if not found:
                raise UsageError(str(path), "folder holds no result files (*.json)")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(str(path), "no such file or folder")
    return files


def run(args: argparse.Namespace) -> int:
    if args.against is not None and not args.against.is_dir():
        raise UsageError(f"--against {args.against}", "no such reference folder")
    reports = []
    for path in args.results:
        if package.is_archive(path) and path.exists() and not path.is_dir():
            reports.extend(package.verify_package(
                path, package.Limits(member_bytes=args.max_member_bytes),
                run_compliance=not args.no_compliance, submission=args.submission))
            continue
        reports.extend(check_result(p, run_compliance=not args.no_compliance,
                                    submission=args.submission, against=args.against)
                       for p in result_files([path]))
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
