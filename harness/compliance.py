"""greenperf's MLLOG ruleset, generated from the installed mlperf-logging, and
runs of the **official** compliance checker against it.

The ruleset is never copied into the repo: at run time we read the installed
package's ``training_<version>/common.yaml`` and division files and derive:

* ``common.yaml``: the official file, with two changes. The division hook
  enqueues greenperf's division files instead of the official ones (those
  only admit MLPerf's own benchmark names), and the ``eval_accuracy`` record
  gains an ``ATLEAST_ONE_CHECK`` for the workload's target, as official
  benchmark files do. Every official check stays in place.
* ``<division>_common.yaml``: the official file with ``submission_benchmark``
  admitting the greenperf benchmark and enqueueing its file.
* ``<division>_<benchmark>.yaml``: only *new* keys (seed, quality target,
  batch size, fixed hyper-parameters). Common keys are not re-defined there,
  because a later record for the same key erases the earlier one's findings.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

BASELINE_RULESET = "6.0.0"
USAGE = "training"


def installed_rulesets(usage: str = USAGE) -> list[str]:
    """Rulesets the installed mlperf-logging offers for ``usage``, oldest first."""
    root = resources.files("mlperf_logging.compliance_checker")
    versions = []
    for entry in root.iterdir():
        m = re.fullmatch(rf"{re.escape(usage)}_(\d+)\.(\d+)\.(\d+)", entry.name)
        if m and entry.joinpath("common.yaml").is_file():
            versions.append(tuple(int(x) for x in m.groups()))
    return [".".join(map(str, v)) for v in sorted(versions)]


def rulesets_to_check() -> list[str]:
    """The baseline ruleset plus the newest installed one."""
    versions = installed_rulesets()
    chosen = [v for v in (BASELINE_RULESET, versions[-1] if versions else None) if v in versions]
    return list(dict.fromkeys(chosen))


@dataclass(frozen=True)
class RulesetSpec:
    """What greenperf's ruleset checks for one benchmark (a workload phase)."""

    benchmark: str
    target: float
    reference_batch_size: int
    reference_learning_rate: float
    lr_scaling: str
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        blob = json.dumps(
            [self.benchmark, self.target, self.reference_batch_size,
             self.reference_learning_rate, self.lr_scaling, dict(self.fixed)],
            sort_keys=True, default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _official(version: str, name: str) -> list[dict[str, Any]]:
    path = resources.files("mlperf_logging.compliance_checker").joinpath(
        f"{USAGE}_{version}", name)
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader) or []


def _key(name: str, req: str, check: str | list[str] | None = None,
         post: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"NAME": name, "REQ": req}
    if check is not None:
        record["CHECK"] = check
    if post is not None:
        record["POST"] = post
    return {"KEY": record}


def _py(value: Any) -> str:
    return repr(value)


def _benchmark_file(spec: RulesetSpec, division: str) -> list[dict[str, Any]]:
    records = [
        _key("seed", "EXACTLY_ONE", "is_integer(v['value'])"),
        _key("quality_target", "EXACTLY_ONE", f"v['value'] == {_py(spec.target)}"),
        _key("global_batch_size", "EXACTLY_ONE", "v['value'] > 0",
             post="s['global_batch_size'] = v['value']"),
    ]
    if division == "closed":
        ratio = f"(s['global_batch_size'] / {spec.reference_batch_size})"
        scale = {"linear": ratio, "sqrt": f"{ratio} ** 0.5"}.get(spec.lr_scaling, "1")
        expected = f"{_py(spec.reference_learning_rate)} * {scale}"
        records.append(_key("opt_base_learning_rate", "EXACTLY_ONE",
                            f"abs(v['value'] - {expected}) <= 1e-9 * abs({expected})"))
        for name, value in spec.fixed.items():
            records.append(_key(name, "EXACTLY_ONE", f"v['value'] == {_py(value)}"))
    else:
        records.append(_key("opt_base_learning_rate", "EXACTLY_ONE", "v['value'] > 0"))
    return records


def generate_ruleset(spec: RulesetSpec, version: str, out_dir: Path) -> Path:
    """Write greenperf's ruleset for ``spec`` under ``out_dir``; returns common.yaml."""
    out_dir.mkdir(parents=True, exist_ok=True)
    official_prefix = f"{USAGE}_{version}/"
    common = _official(version, "common.yaml")
    for item in common:
        record = item.get("KEY")
        if not record:
            continue
        if record["NAME"] == "submission_division":
            record["POST"] = record["POST"].replace(official_prefix, f"{out_dir.as_posix()}/")
        if record["NAME"] == "eval_accuracy":
            record["ATLEAST_ONE_CHECK"] = f"v['value'] >= {_py(spec.target)}"
    _dump(common, out_dir / "common.yaml")

    for division in ("closed", "open"):
        division_records = _official(version, f"{division}_common.yaml")
        bench_path = out_dir / f"{division}_{spec.benchmark}.yaml"
        for item in division_records:
            record = item.get("KEY")
            if record and record["NAME"] == "submission_benchmark":
                record["CHECK"] = f"v['value'] == {_py(spec.benchmark)}"
                record["POST"] = f"enqueue_config({_py(bench_path.as_posix())})"
        _dump(division_records, out_dir / f"{division}_common.yaml")
        _dump(_benchmark_file(spec, division), bench_path)
    return out_dir / "common.yaml"


def _dump(records: list[dict[str, Any]], path: Path) -> None:
    path.write_text(yaml.safe_dump(records, sort_keys=False, width=10_000))


@dataclass
class ComplianceFinding:
    log: str
    ruleset: str
    passed: bool
    messages: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"log": self.log, "ruleset": self.ruleset, "passed": self.passed,
                "messages": self.messages}


_MESSAGE_PATTERNS = (
    re.compile(r"(CHECK for '[^']+' failed in line \d+)"),
    re.compile(r"(failed test: .*)"),
    re.compile(r"(Required [A-Z_]+(?:\(\d+\))? occurrence of .*)"),
    re.compile(r"(Failed checks for .*)"),
    re.compile(r"(Failed executing .*)"),
    re.compile(r"(Could not find config file: .*)"),
    re.compile(r"(Log lines had parsing errors.*)"),
    re.compile(r"(No log lines detected.*)"),
)


def _summarise(output: str) -> list[str]:
    found: list[str] = []
    for line in output.splitlines():
        for pattern in _MESSAGE_PATTERNS:
            m = pattern.search(line)
            if m and m.group(1).strip() not in found:
                found.append(m.group(1).strip())
    return found


def run_official_checker(log: Path, common_yaml: Path, version: str) -> ComplianceFinding:
    """``python -m mlperf_logging.compliance_checker`` exactly as a submitter runs it."""
    with tempfile.TemporaryDirectory(prefix="greenperf-cc-") as tmp:
        cmd = [sys.executable, "-m", "mlperf_logging.compliance_checker",
               "--usage", USAGE, "--ruleset", version,
               "--config", str(common_yaml.resolve()),
               "--log_output", str(Path(tmp) / "checker.log"), str(log.resolve())]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=300)
    output = proc.stdout + proc.stderr
    passed = proc.returncode == 0 and "SUCCESS" in output
    messages = [] if passed else (_summarise(output) or [output.strip()[-500:]])
    return ComplianceFinding(str(log), version, passed, messages)


def check_logs(logs: list[tuple[Path, RulesetSpec]],
               versions: list[str] | None = None) -> list[ComplianceFinding]:
    """Check each log against greenperf's ruleset in every requested version."""
    versions = versions or rulesets_to_check()
    with tempfile.TemporaryDirectory(prefix="greenperf-ruleset-") as tmp:
        commons: dict[tuple[str, str], Path] = {}
        jobs = []
        for log, spec in logs:
            for version in versions:
                key = (spec.digest(), version)
                if key not in commons:
                    commons[key] = generate_ruleset(
                        spec, version, Path(tmp) / f"{version}-{spec.digest()}")
                jobs.append((log, commons[key], version))
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(lambda job: run_official_checker(*job), jobs))
