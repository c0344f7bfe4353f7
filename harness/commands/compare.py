"""``greenperf compare``: the regression gate. Exit 1 on a significant regression."""

from __future__ import annotations

import argparse
from pathlib import Path

from greenperf.commands.output import emit_json
from greenperf.compare import (
    DEFAULT_ALPHA,
    compare_paths,
    parse_threshold,
    render_markdown,
    render_text,
)
from greenperf.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare two results; exit 1 on a significant regression",
        description="Compare a candidate result (file or folder) with a baseline. A metric "
                    "regresses when it is worse by more than --threshold and a one-sided "
                    "Mann-Whitney U test over the runs gives p < --alpha. Exit 1 on any "
                    "regression, 0 otherwise, 2 on usage errors.")
    p.add_argument("baseline", type=Path, help="baseline result file or folder")
    p.add_argument("candidate", type=Path, help="candidate result file or folder")
    p.add_argument("--threshold", default="5%",
                   help="smallest change that counts as a regression (default 5%%)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"significance level of the one-sided test (default {DEFAULT_ALPHA})")
    p.add_argument("--exclude-contended", action="store_true",
                   help="leave runs flagged contended (another process used the CPU) out of "
                        "the time and energy figures")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="machine-readable output")
    form.add_argument("--markdown", action="store_true", help="a Markdown table (CI comments)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    threshold = parse_threshold(args.threshold)
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha {args.alpha}", "must be between 0 and 1")
    comparison = compare_paths(args.baseline, args.candidate, threshold, args.alpha,
                               args.exclude_contended)
    if args.json:
        emit_json(comparison.to_dict())
    elif args.markdown:
        print(render_markdown(comparison), end="")
    else:
        print(render_text(comparison))
    return 1 if comparison.regressed else 0
