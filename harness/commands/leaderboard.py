"""``greenperf leaderboard``: render result files into a static, self-contained HTML site."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from greenperf.commands.output import emit_json
from greenperf.errors import CheckFailed
from greenperf.leaderboard import render_site
from greenperf.leaderboard.load import DEFAULT_MAX_FILE_BYTES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="render result files into an HTML leaderboard")
    p.add_argument("folders", nargs="+", type=Path,
                   help="result files or folders (searched recursively; logs/ skipped)")
    p.add_argument("-o", "--out", type=Path, default=Path("reports"), help="output folder")
    p.add_argument("--reference", metavar="SYSTEM", default=None,
                   help="system name of the reference for speed-ups (default: results under a "
                        "folder named reference_results)")
    p.add_argument("--title", default="greenperf leaderboard", help="the site's title")
    p.add_argument("--max-file-bytes", type=int, default=DEFAULT_MAX_FILE_BYTES,
                   help="skip result files larger than this")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    summary = render_site(args.folders, args.out, reference_system=args.reference,
                          title=args.title, max_file_bytes=args.max_file_bytes)
    for skipped in summary.skipped:
        print(f"greenperf: warning: skipped {skipped}", file=sys.stderr)
    for line in summary.logs_not_copied:
        print(f"greenperf: warning: not copied: {line}", file=sys.stderr)
    if args.json:
        emit_json({"index": str(summary.index), "pages": summary.pages,
                   "tables": summary.tables, "logs_copied": summary.logs_copied,
                   "skipped": [{"path": str(s.source), "problem": s.problem}
                               for s in summary.skipped],
                   "logs_not_copied": summary.logs_not_copied})
    else:
        print(f"wrote {summary.pages} result page(s) in {summary.tables} table(s), "
              f"{summary.logs_copied} log(s) copied -> {summary.index}")
    if summary.pages == 0:
        raise CheckFailed(" ".join(map(str, args.folders)), "no valid result files found "
                          f"(an empty leaderboard was written to {summary.index})")
    return 0
