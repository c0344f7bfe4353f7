"""The ``greenperf`` command line. Each sub-command lives in ``greenperf.commands``.

Exit codes: 0 success, 1 a check or run failed, 2 usage or input error,
130 interrupted. Errors caused by input are one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from greenperf import __version__
from greenperf.errors import GreenperfError

COMMANDS = ("list", "run", "check", "compare", "report", "score", "import-mlperf", "rcp",
            "leaderboard", "submit", "infer")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"greenperf: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="greenperf", description="MLPerf-style PyTorch benchmarks with a "
                                                   "sustainability account.")
    parser.add_argument("--version", action="version", version=f"greenperf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"greenperf.commands.{name.replace('-', '_')}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    try:
        return int(args.handler(args) or 0)
    except GreenperfError as exc:
        print(f"greenperf: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("greenperf: interrupted; completed runs are kept in the result file",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
