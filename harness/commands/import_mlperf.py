"""``greenperf import-mlperf``: official MLPerf Training results as greenperf result files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from greenperf.commands.output import emit_json, table
from greenperf.mlperf_import import import_folder
from greenperf.results import ensure_writable_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-mlperf", help="import official MLPerf Training results as greenperf results",
        description="Turn <org>/results/<system>/<benchmark>/result_*.txt (with "
                    "<org>/systems/<system>.json), an org folder, or a bare benchmark folder "
                    "into greenperf result files marked \"origin\": \"imported-mlperf\", "
                    "written to OUT/<system>/<benchmark>_official_training.json with the logs.")
    p.add_argument("folder", type=Path, help="official results folder")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--ruleset", default=None,
                   help="training ruleset version, e.g. 4.0.0 (default: from the path)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = ensure_writable_dir(args.out)
    written = import_folder(args.folder, out, args.ruleset)
    summary = []
    for path in written:
        doc = json.loads(path.read_text())
        score = doc["phases"][0]["score"]
        summary.append({"result": str(path), "workload": doc["workload"],
                        "system": doc["system"]["name"], "division": doc["division"],
                        "score_seconds": score["value"],
                        "official_minutes": score["official_minutes"],
                        "runs": score["n_runs"], "reason": score["reason"]})
    if args.json:
        emit_json(summary)
    else:
        print(table([[s["workload"], s["system"], s["division"],
                      "-" if s["official_minutes"] is None else f"{s['official_minutes']:.4f}",
                      s["runs"], s["result"]] for s in summary],
                    ["benchmark", "system", "division", "official minutes", "runs", "result"]))
    return 0
