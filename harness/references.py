"""Reference results: RCP files built from reference runs, and checks of a result against them.

Layout of a reference folder (``reference_results/``)::

    <system>/<workload>_<scale>_training.json   reference runs on a named system (+ logs/)
    rcps/rcps_<workload>_<scale>.json           RCP records, official shape
                                                (``greenperf.rcp.build_rcp_record``), one per
                                                phase benchmark name and global batch size

Two checks use it:

* **convergence** (closed division): the result's samples to target against the RCPs, by
  ``greenperf.rcp.check_convergence`` (the official rcp_checker's method): pass, fail (converges
  significantly faster: not the reference algorithm), missing batch size, interpolated; a
  passing result faster than the RCP mean carries the normalisation factor.
* **speed**: the time-to-target ratio of a reference system to this result, with a bootstrap
  95% interval over the runs of both ("3.1x (95% CI 2.8-3.4) the reference CPU"). Samples to
  target do not depend on hardware, so a ratio of times is a ratio of speeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from greenperf import rcp, stats
from greenperf.errors import GreenperfError, UsageError
from greenperf.results import NON_RESULT_DIRS, read_result, write_json_atomic

RCP_DIR = "rcps"
DEFAULT_SUBMISSION_RUNS = 5
SPEED_RESAMPLES = 10_000


def rcp_file(root: Path, workload: str, scale: str) -> Path:
    return Path(root) / RCP_DIR / f"rcps_{workload}_{scale}.json"


def phase_benchmark(doc: dict[str, Any], phase_name: str) -> str:
    """MLLOG ``submission_benchmark`` of a phase, as ``greenperf.training.benchmark_name`` names it.

    Read from the result (one phase: the workload's name) so that it needs no installed
    workload.
    """
    phases = doc.get("phases") or []
    return str(doc["workload"]) if len(phases) == 1 else f"{doc['workload']}_{phase_name}"


@dataclass(frozen=True)
class ReferenceResult:
    system: str
    path: Path
    doc: dict[str, Any]


def reference_results(roots: Iterable[Path]) -> list[ReferenceResult]:
    """Training result files under ``roots`` (``rcps`` and ``logs`` folders skipped).

    A file that is not a readable result raises a one-line error naming it: a reference
    folder must hold only good references.
    """
    found: list[ReferenceResult] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise UsageError(str(root), "no such reference folder")
        for path in sorted(root.rglob("*.json")):
            parts = path.relative_to(root).parts
            if RCP_DIR in parts[:-1] or NON_RESULT_DIRS & set(parts[:-1]):
                continue
            doc = _read_reference(path)
            if doc is None or doc["kind"] != "training":
                continue
            system = parts[0] if len(parts) > 1 else str(doc["system"]["name"])
            found.append(ReferenceResult(system, path, doc))
    return found


def _read_reference(path: Path) -> dict[str, Any] | None:
    """A result document, or None for a JSON file that is no greenperf result at all."""
    try:
        return read_result(path)
    except GreenperfError:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = None
        if isinstance(raw, dict) and "schema_version" not in raw:
            return None
        raise


# -- building RCP files -----------------------------------------------------------------------


@dataclass
class RcpBuild:
    """RCP records per (workload, scale), and what was skipped or is thin."""

    records: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def build_rcps(references: Sequence[ReferenceResult],
               submission_runs_of: Callable[[str], int | None] | None = None) -> RcpBuild:
    """RCP records from the successful runs of closed-division reference results.

    Runs of every system are pooled: samples to target do not depend on hardware.
    ``submission_runs_of(workload)`` gives the runs a submission has (default 5); the
    official rule wants twice that many reference runs per batch size.
    """
    build = RcpBuild()
    pools: dict[tuple[str, str, str, int], list[float]] = {}
    hyper: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for ref in references:
        doc = ref.doc
        label = f"{ref.path}"
        if doc["division"] != "closed":
            build.warnings.append(f"{label}: open division, not a reference run; skipped")
            continue
        if doc["status"] != "complete":
            build.warnings.append(f"{label}: incomplete result; its completed runs are used")
        for phase in doc["phases"]:
            batch = int(phase["recipe"]["batch_size"])
            key = (doc["workload"], doc["scale"], phase_benchmark(doc, phase["name"]), batch)
            samples = [r["samples_to_target"] for r in phase["runs"]
                       if r["status"] == "success" and r.get("samples_to_target")]
            pools.setdefault(key, []).extend(float(s) for s in samples)
            params = dict(phase["recipe"].get("hyperparameters") or {})
            params["opt_base_learning_rate"] = phase["recipe"].get("learning_rate")
            if key in hyper and hyper[key] != params:
                build.warnings.append(f"{label}: {key[2]} BS {batch}: hyper-parameters differ "
                                      "from another reference at this batch size")
            hyper.setdefault(key, params)
    for (workload, scale, benchmark, batch), samples in sorted(pools.items()):
        runs = (submission_runs_of(workload) if submission_runs_of else None) \
            or DEFAULT_SUBMISSION_RUNS
        where = f"{benchmark} BS {batch}"
        if len(samples) < 2 * runs:
            build.warnings.append(f"{where}: {len(samples)} converged reference run(s); the RCP "
                                  f"rule wants at least {2 * runs} (2x the {runs} runs of a "
                                  "submission)")
        try:
            record = rcp.build_rcp_record(benchmark, batch, [int(s) for s in samples],
                                          hyper[(workload, scale, benchmark, batch)],
                                          submission_runs=runs)
        except GreenperfError as exc:
            build.warnings.append(f"{where}: no RCP record: {exc.problem}")
            continue
        name = rcp.rcp_record_name(benchmark, batch)
        build.records.setdefault((workload, scale), {})[name] = record
    return build


def write_rcps(build: RcpBuild, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(str(out_dir), f"cannot create folder ({exc.strerror or exc})") from exc
    written = []
    for (workload, scale), records in sorted(build.records.items()):
        path = out_dir / f"rcps_{workload}_{scale}.json"
        write_json_atomic(path, dict(sorted(records.items())))
        written.append(path)
    return written


# -- convergence against RCPs -----------------------------------------------------------------


@dataclass
class ConvergenceFinding:
    phase: str
    benchmark: str
    batch_size: int
    verdict: str
    passed: bool
    message: str
    detail: str
    norm_factor: float = 1.0
    rcp_file: str | None = None
    rcp: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        head = f"convergence of {self.benchmark} at batch size {self.batch_size}"
        if self.verdict == rcp.PASS:
            how = {"exact": "RCP found", "interpolated": "RCP interpolated",
                   "smaller_batch": "converges slower than the smallest-batch RCP"}
            source = (self.rcp or {}).get("rcp_source")
            return f"{head}: pass ({how.get(source, self.message)}): {self.detail}"
        if self.verdict == rcp.FAIL:
            return (f"{head}: FAIL: converges significantly faster than the reference "
                    f"(did not run the reference algorithm): {self.detail}")
        if self.verdict == rcp.MISSING:
            return (f"{head}: no RCP covers this batch size ({self.message}): {self.detail}; "
                    "add reference runs at this batch size and rebuild the RCPs "
                    "(greenperf rcp)")
        return f"{head}: {self.verdict}: {self.message}: {self.detail}"


def check_convergence_against(doc: dict[str, Any], root: Path) -> list[ConvergenceFinding]:
    """The RCP verdict of every phase of ``doc`` (closed division) against ``root``'s RCPs."""
    path = rcp_file(root, doc["workload"], doc["scale"])
    if not path.is_file():
        return []
    records = rcp.load_rcp_records(path)
    findings = []
    for phase in doc["phases"]:
        benchmark = phase_benchmark(doc, phase["name"])
        batch = int(phase["recipe"]["batch_size"])
        mine = {n: r for n, r in records.items() if r["Benchmark"] == benchmark}
        samples = [r["samples_to_target"] if r["status"] == "success" else None
                   for r in phase["runs"]]
        if not mine:
            findings.append(ConvergenceFinding(
                phase["name"], benchmark, batch, rcp.NO_RCP, False, "Cannot find any RCPs",
                f"{path} holds no RCP record for {benchmark}", rcp_file=str(path)))
            continue
        runs = _declared_runs(mine)
        cut = rcp.rejected_per_side(benchmark)
        if len(samples) < 2 * cut + 1:
            findings.append(ConvergenceFinding(
                phase["name"], benchmark, batch, rcp.INSUFFICIENT, False, "Too few runs",
                f"{len(samples)} run(s); the RCP check needs an olympic mean of at least "
                f"{2 * cut + 1}", rcp_file=str(path)))
            continue
        verdict = rcp.check_convergence(mine, batch, samples, submission_runs=runs)
        findings.append(ConvergenceFinding(
            phase["name"], benchmark, batch, verdict.verdict, verdict.passed, verdict.message,
            verdict.detail, verdict.norm_factor, str(path), verdict.to_dict()))
    return findings


def _declared_runs(records: dict[str, dict[str, Any]]) -> int:
    declared = {r.get(rcp.SUBMISSION_RUNS_KEY) for r in records.values()}
    declared.discard(None)
    return int(declared.pop()) if len(declared) == 1 else DEFAULT_SUBMISSION_RUNS


# -- speed against reference systems ----------------------------------------------------------


@dataclass
class SpeedFinding:
    phase: str
    system: str
    reference: str
    factor: float
    ci95: list[float] | None
    your_runs: int
    reference_runs: int
    your_batch_size: int | None = None
    reference_batch_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self, workload: str, scale: str) -> str:
        ci = (f" (95% CI {two_digits(self.ci95[0])}-{two_digits(self.ci95[1])})" if self.ci95
              else " (no interval: too few runs)")
        phase = "" if self.phase == "train" else f" {self.phase}"
        batches = ""
        if self.your_batch_size != self.reference_batch_size:
            batches = f", batch size {self.your_batch_size} vs {self.reference_batch_size}"
        return (f"Your system is {two_digits(self.factor)}x{ci} the reference {self.system} on "
                f"{workload}{phase} {scale} ({self.your_runs} vs {self.reference_runs} "
                f"successful runs{batches}; {self.reference})")


def two_digits(value: float) -> str:
    """Two significant digits, keeping a trailing zero: 1.0, 0.63, 3.1, 12."""
    return format(value, "#.2g").rstrip(".")


def speed_factor(reference_times: Sequence[float], your_times: Sequence[float],
                 resamples: int = SPEED_RESAMPLES,
                 seed: int = 0) -> tuple[float, list[float] | None]:
    """How many times faster you are: central reference time / central time of yours.

    "Central" is the olympic mean from 3 runs on, else the mean (``stats.olympic_mean``). The
    95% interval is the percentile bootstrap of your time relative to the reference's
    (``stats.ratio_ci``, which resamples the runs of each side), inverted: a ratio of times
    is the inverse ratio of speeds, and percentile intervals follow a monotone map.
    """
    factor = float(stats.olympic_mean(reference_times) / stats.olympic_mean(your_times))
    time_ci = stats.ratio_ci(reference_times, your_times, statistic=stats.olympic_mean,
                             resamples=resamples, seed=seed)
    return factor, None if time_ci is None else [1.0 / time_ci[1], 1.0 / time_ci[0]]


def speed_against(doc: dict[str, Any], path: Path | None,
                  references: Sequence[ReferenceResult]) -> list[SpeedFinding]:
    """Speed of ``doc`` relative to each reference system with a matching result."""
    own = (doc.get("checksum") or {}).get("value")
    findings = []
    for ref in references:
        other = ref.doc
        if (other["workload"], other["scale"]) != (doc["workload"], doc["scale"]):
            continue
        if (other.get("checksum") or {}).get("value") == own or (
                path is not None and ref.path.resolve() == Path(path).resolve()):
            continue
        ref_phases = {p["name"]: p for p in other["phases"]}
        for phase in doc["phases"]:
            match = ref_phases.get(phase["name"])
            if match is None:
                continue
            yours = _success_times(phase)
            theirs = _success_times(match)
            if not yours or not theirs:
                continue
            factor, ci = speed_factor(theirs, yours)
            if math.isfinite(factor):
                findings.append(SpeedFinding(
                    phase["name"], ref.system, str(ref.path), factor, ci, len(yours),
                    len(theirs), phase["recipe"].get("batch_size"),
                    match["recipe"].get("batch_size")))
    return findings


def _success_times(phase: dict[str, Any]) -> list[float]:
    return [float(r["tta_seconds"]) for r in phase["runs"]
            if r["status"] == "success" and r["tta_seconds"] > 0]


def data_mismatches(doc: dict[str, Any], references: Sequence[ReferenceResult]) -> list[str]:
    """Phases whose built-in (procedural) data differs from a reference system's, one line each.

    Built-in data is generated bit-identically on every machine, so a different checksum means
    a different data set (another greenperf version, or a changed generator): such a result
    cannot be compared with that reference at all.
    """
    lines = []
    for ref in references:
        other = ref.doc
        if (other.get("workload"), other.get("scale")) != (doc["workload"], doc["scale"]):
            continue
        theirs = {p["name"]: p.get("dataset") or {} for p in other.get("phases", [])}
        for phase in doc["phases"]:
            mine, match = phase.get("dataset") or {}, theirs.get(phase["name"])
            if not match or mine.get("source") != "procedural" or match.get(
                    "source") != "procedural" or mine.get("name") != match.get("name"):
                continue
            if mine.get("checksum") != match.get("checksum"):
                lines.append(
                    f"{phase['name']}: dataset {mine.get('name')} has checksum "
                    f"{str(mine.get('checksum'))[:12]}..., the reference system {ref.system} "
                    f"({ref.path}) trained on {str(match.get('checksum'))[:12]}...: not the same "
                    "data, so neither speed nor convergence compare (another greenperf version?)")
    return lines


# -- the whole check --------------------------------------------------------------------------


@dataclass
class AgainstReport:
    """What ``greenperf check --against`` adds: errors, warnings and notes, one line each."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    convergence: list[ConvergenceFinding] = field(default_factory=list)
    speed: list[SpeedFinding] = field(default_factory=list)


def check_against(doc: dict[str, Any], path: Path | None, root: Path,
                  submission: bool = False) -> AgainstReport:
    """Convergence (closed division) and speed of a training result against ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"--against {root}", "no such reference folder")
    report = AgainstReport()
    if doc.get("kind") != "training":
        report.notes.append(f"--against {root}: only training results have references")
        return report
    label = f"{path}: " if path else ""
    references = reference_results([root])
    mismatches = data_mismatches(doc, references)
    if mismatches:
        report.errors.extend(f"{label}{line}" for line in mismatches)
        return report
    if doc["division"] != "closed":
        report.notes.append(f"{label}convergence check skipped: it applies to the closed "
                            "division only (this result is open)")
    elif not rcp_file(root, doc["workload"], doc["scale"]).is_file():
        report.warnings.append(f"{label}no RCP file for {doc['workload']} {doc['scale']} in "
                               f"{root / RCP_DIR} (expected "
                               f"{rcp_file(root, doc['workload'], doc['scale']).name}): "
                               "convergence not checked")
    else:
        report.convergence = check_convergence_against(doc, root)
        for finding in report.convergence:
            text = f"{label}{finding.line()}"
            if finding.passed:
                report.notes.append(text)
            elif finding.verdict == rcp.MISSING and not submission:
                report.warnings.append(text)
            else:
                report.errors.append(text)
    report.speed = speed_against(doc, path, references)
    for finding in report.speed:
        report.notes.append(finding.line(doc["workload"], doc["scale"]))
    if not report.speed:
        report.notes.append(f"{label}no reference system in {root} has a successful "
                            f"{doc['workload']} {doc['scale']} result to compare speed with")
    return report
