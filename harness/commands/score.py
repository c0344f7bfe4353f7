"""``greenperf score``: time to train of an MLLOG log folder, as the official summarizer scores it.

Official folders are checked with the official ruleset (``--ruleset``, or the version named
in the path, e.g. ``training_results_v4.0``). greenperf's own log folders
(``results/logs/<workload>_<scale>/<phase>/``) are recognised by their logs and checked with
greenperf's generated ruleset. The folder is never written to.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from greenperf import compliance
from greenperf.commands.output import emit_json, table
from greenperf.errors import UsageError
from greenperf.mlperf_import import greenperf_log_spec
from greenperf.mlperf_score import FolderScore, score_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score a folder of MLLOG result logs (official rules)")
    p.add_argument("folder", type=Path, help="folder of result_*.txt MLLOG logs")
    p.add_argument("--ruleset", default=None,
                   help="training ruleset version, e.g. 4.0.0 (default: from the path, or "
                        "greenperf's baseline ruleset for greenperf's own logs)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def score(folder: Path, ruleset: str | None = None) -> tuple[FolderScore, str]:
    """The folder's score, and which rules checked its logs."""
    if not folder.is_dir():
        raise UsageError(str(folder), "no such folder")
    own = greenperf_log_spec(folder)
    if own is None:
        scored = score_folder(folder, ruleset)
        return scored, f"official training {scored.ruleset} ruleset"
    version = ruleset or compliance.rulesets_to_check()[0]
    known = compliance.installed_rulesets()
    if version not in known:
        raise UsageError(f"--ruleset {version}", "not a training ruleset of the installed "
                                                 f"mlperf-logging ({', '.join(known)})")
    with tempfile.TemporaryDirectory(prefix="greenperf-score-") as tmp:
        common = compliance.generate_ruleset(own.spec, version, Path(tmp))
        scored = score_folder(folder, version, own.spec.benchmark, config=common)
    return scored, (f"greenperf's generated ruleset for {own.workload}/{own.phase} "
                    f"({own.scale}), on training {version}")


def run(args: argparse.Namespace) -> int:
    scored, rules = score(args.folder, args.ruleset)
    if args.json:
        out = scored.to_dict()
        out["score_seconds"] = (scored.score_minutes * 60 if scored.score_minutes is not None
                                else None)
        out["rules"] = rules
        emit_json(out)
    else:
        counted = set(scored.counted_files)
        unused = "dropped by the olympic rule" if scored.score_minutes is not None else "no score"
        rows = [[run.file, "-" if run.minutes is None else f"{run.minutes:.6g}", run.status,
                 "pass" if run.compliance_ok else "FAIL",
                 "counted" if run.file in counted else (run.drop_reason or unused)]
                for run in scored.runs]
        print(table(rows, ["log", "minutes", "run_stop status", "compliance", "olympic"]))
        print()
        print(f"benchmark {scored.benchmark}; logs checked with {rules}")
        if scored.score_minutes is None:
            print(f"no score: {scored.reason}")
        else:
            factor = (f" (x scaling factor {scored.scaling_factor:g})"
                      if scored.scaling_factor != 1.0 else "")
            print(f"score: {scored.score_minutes!r} minutes (olympic average of "
                  f"{len(scored.counted_files)} runs{factor})")
        for run in scored.runs:
            for message in run.compliance_messages[:3]:
                print(f"note: {run.file}: {message}")
    return 0 if scored.score_minutes is not None else 1
