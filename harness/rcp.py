"""Reference convergence points (RCPs): the MLPerf check that a result ran the reference algorithm.

Mirrors ``mlperf_logging/rcp_checker/rcp_checker.py`` (mlperf-logging 4.1.68), class
``RCP_Checker`` and ``check_directory``, with the same numpy/scipy calls in the same order so
the numbers agree to the last bit:

- reference stats (``compute_rcp_stats``): olympic mean of the sorted list with 1 run cut at
  each end (4 for unet3d), population stdev (``np.std``, ddof=0) of the *whole* list;
- minimum acceptable mean (``_find_min_acceptable_mean``): bisection on [0, mean] until the
  interval is under 1e-4, keeping the lowest mean whose one-sided p-value of
  ``scipy.stats.ttest_ind_from_stats(equal_var=True)`` stays above 0.05; the reference has
  ``len - 2*cut`` runs, the submission ``submission_runs - 2``; ``Max Speedup = mean / min``;
- pruning (``_prune_rcps``): drop batch sizes below the fastest-converging one, then drop an
  interior point that converges slower than the interpolation of its neighbours;
- lookup (``check_directory``): exact batch size, else linear interpolation of mean and stdev
  (``_create_interp_rcp``, reference runs taken as ``2 * submission_runs``), else the
  smallest-batch RCP for a smaller batch size, else "missing";
- verdict (``_eval_submission_record``): pass when the olympic mean of the submission is
  ``>= RCP Mean / Max Speedup``; normalisation factor ``max(1, RCP Mean / submission mean)``.

greenperf counts convergence in samples. The official checker does the same arithmetic on
whatever unit a benchmark records (epochs for most, samples for llama2_70b_lora and flux1,
whose RCP files use the key ``samples to converge``), so the unit changes no formula.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
from greenperf.errors import GreenperfError, UsageError

ALPHA = 0.05
# Absolute bisection tolerance, in the convergence unit, as in the official checker.
TOLERANCE = 0.0001
SAMPLES_KEY = "samples to converge"
EPOCHS_KEY = "Epochs to converge"
# greenperf's addition to the official record: the run count the t-test assumes.
SUBMISSION_RUNS_KEY = "Submission runs"

PASS = "pass"
FAIL = "fail"
MISSING = "missing"
INSUFFICIENT = "insufficient_convergence"
NO_RCP = "no_rcp"


@dataclass(frozen=True)
class _Reference:
    name: str
    benchmark: str
    batch_size: int | float
    mean: float
    stdev: float
    max_speedup: float


@dataclass(frozen=True)
class RcpVerdict:
    """Outcome of comparing a submission's convergence with the RCPs.

    ``verdict``: ``pass``; ``fail`` (converges significantly faster than the reference);
    ``missing`` (no RCP covers the batch size); ``insufficient_convergence`` (too many runs
    did not converge); ``no_rcp``. ``message`` is the official checker's wording.
    """

    verdict: str
    passed: bool
    message: str
    detail: str
    benchmark: str
    batch_size: int | float
    rcp_name: str | None = None
    rcp_source: str | None = None
    rcp_mean: float | None = None
    rcp_stdev: float | None = None
    max_speedup: float | None = None
    min_allowed_mean: float | None = None
    submission_mean: float | None = None
    norm_factor: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rejected_per_side(benchmark: str) -> int:
    """Runs cut at each end of an olympic mean (unet3d submits 40 runs and cuts 4)."""
    return 4 if benchmark == "unet3d" else 1


def rcp_record_name(benchmark: str, batch_size: int) -> str:
    return f"{benchmark}_ref_{batch_size}"


def build_rcp_record(
    benchmark: str,
    batch_size: int,
    samples_to_converge: Sequence[float],
    hyperparams: Mapping[str, Any],
    *,
    submission_runs: int = 5,
) -> dict[str, Any]:
    """An RCP record in the official JSON shape, with its statistics filled in.

    ``submission_runs`` is how many runs a submission at this RCP has; the t-test bound
    (``Max Speedup``) depends on it.
    """
    record = {
        "Benchmark": benchmark,
        "BS": batch_size,
        "Hyperparams": dict(hyperparams),
        SAMPLES_KEY: [_number(v, f"{benchmark} BS {batch_size}") for v in samples_to_converge],
        SUBMISSION_RUNS_KEY: submission_runs,
    }
    _validate_record(rcp_record_name(benchmark, batch_size), record)
    ref = _reference(rcp_record_name(benchmark, batch_size), record, submission_runs)
    record.update({"RCP Mean": ref.mean, "RCP Stdev": ref.stdev, "Max Speedup": ref.max_speedup})
    return record


def load_rcp_records(path: Path) -> dict[str, dict[str, Any]]:
    """Read an RCP JSON file (official ``rcps_*.json`` or greenperf's) and validate it."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except OSError as err:
        raise GreenperfError(str(path), f"cannot read RCP file: {err.strerror or err}") from err
    except ValueError as err:
        raise GreenperfError(str(path), f"not valid JSON: {err}") from err
    if not isinstance(records, dict) or not records:
        raise GreenperfError(str(path), "an RCP file is a non-empty JSON object of records")
    for name, record in records.items():
        _validate_record(f"{path}:{name}", record)
    return records


def min_acceptable_mean(
    mean: float, stdev: float, reference_runs: int, submission_runs: int
) -> float:
    """Lowest submission mean not significantly below ``mean`` (one-sided t-test, p=0.05)."""
    if stdev == 0:
        return mean
    submission_count = submission_runs - 2
    mean_max = mean
    mean_min = 0.0
    mean_mid = (mean_min + mean_max) / 2
    while mean_max - mean_min > TOLERANCE:
        # Argument order as in the official checker; with equal stdevs the pooled
        # t statistic is symmetric in the two run counts.
        t_stat, p_value = scipy.stats.ttest_ind_from_stats(
            mean_mid, stdev, reference_runs, mean, stdev, submission_count, equal_var=True
        )
        p_value = p_value / 2 if t_stat < 0 else 1 - p_value / 2
        previous = (mean_min, mean_max)
        if p_value > ALPHA:
            mean_max = mean_mid
        else:
            mean_min = mean_mid
        mean_mid = (mean_min + mean_max) / 2
        # Above ~5e11 the float spacing exceeds the tolerance and the official loop never
        # ends; stopping when the interval stops shrinking changes no result it does return.
        if (mean_min, mean_max) == previous:
            break
    return mean_mid


def check_convergence(
    rcp_records: Mapping[str, Mapping[str, Any]],
    batch_size: int,
    samples_to_converge: Sequence[float | None],
    *,
    submission_runs: int | None = None,
    pruned: bool = True,
) -> RcpVerdict:
    """Compare a submission's samples to converge (``None`` = did not converge) with the RCPs.

    ``pruned`` uses the pruned RCP set, as the official summarizer and CLI do by default.
    """
    if not rcp_records:
        raise UsageError("rcp_records", "no RCP records given")
    for name, record in rcp_records.items():
        _validate_record(name, record)
    benchmark = _single_benchmark(rcp_records)
    runs = _submission_runs(rcp_records, submission_runs)
    cut = rejected_per_side(benchmark)
    if len(samples_to_converge) < 2 * cut + 1:
        raise UsageError(
            "samples_to_converge",
            f"{len(samples_to_converge)} runs; an olympic mean needs at least {2 * cut + 1}",
        )
    references = sorted(
        (_reference(name, record, runs) for name, record in rcp_records.items()),
        key=lambda ref: ref.batch_size,
    )
    candidates = _prune(references) if pruned else references

    for value in samples_to_converge:
        if value is not None and not (isinstance(value, int | float) and math.isinf(value)):
            _number(value, "samples_to_converge")
    not_converged = sum(1 for v in samples_to_converge if v is None or math.isinf(v))
    if not_converged > cut:
        return RcpVerdict(
            INSUFFICIENT,
            False,
            "Insufficient convergence",
            f"{not_converged} runs did not converge; at most {cut} may",
            benchmark,
            batch_size,
        )

    exact = next((ref for ref in candidates if ref.batch_size == batch_size), None)
    below = _largest_below(candidates, batch_size)
    above = _smallest_above(candidates, batch_size)
    if exact is not None:
        return _evaluate(exact, "exact", "RCP found", samples_to_converge, batch_size)
    if below is not None and above is not None:
        interp = _interpolate(batch_size, below, above, benchmark, runs)
        return _evaluate(
            interp, "interpolated", "RCP Interpolation", samples_to_converge, batch_size
        )
    missing = f"Missing RCP, please submit RCP with BS = {batch_size}"
    if below is not None:
        return RcpVerdict(
            MISSING,
            False,
            missing,
            f"batch size {batch_size} is above every RCP batch size; no RCP covers it",
            benchmark,
            batch_size,
        )
    if above is not None:
        # A smaller batch size may be checked against the smallest RCP: it should converge
        # in no fewer samples than that.
        smallest = min(candidates, key=lambda ref: ref.batch_size)
        result = _evaluate(smallest, "smaller_batch", "", samples_to_converge, batch_size)
        if result.passed:
            return replace(
                result, message="RCP not found but slower convergence on smaller batch size"
            )
        return replace(result, verdict=MISSING, message=missing)
    return RcpVerdict(
        NO_RCP,
        False,
        "Cannot find any RCPs",
        "no RCP records to compare with",
        benchmark,
        batch_size,
    )


def _evaluate(
    ref: _Reference,
    source: str,
    message: str,
    samples: Sequence[float | None],
    batch_size: int,
) -> RcpVerdict:
    cut = rejected_per_side(ref.benchmark)
    ordered = sorted(math.inf if v is None else v for v in samples)
    submission_mean = float(np.mean(ordered[cut : len(ordered) - cut]))
    norm_factor = ref.mean / submission_mean
    norm_factor = 1.0 if norm_factor < 1 else norm_factor
    min_allowed = ref.mean / ref.max_speedup
    passed = submission_mean >= min_allowed
    relation = ">=" if passed else "<"
    detail = (
        f"olympic mean {submission_mean:.6g} {relation} minimum allowed {min_allowed:.6g} "
        f"(RCP {ref.name}: mean {ref.mean:.6g}, max speedup {ref.max_speedup:.6g})"
    )
    if passed and norm_factor > 1.0:
        detail += f"; faster than the RCP mean, so the score is normalised by {norm_factor:.6g}"
    if not passed:
        detail += "; converges significantly faster than the reference (p < 0.05)"
    return RcpVerdict(
        PASS if passed else FAIL,
        passed,
        message,
        detail,
        ref.benchmark,
        batch_size,
        rcp_name=ref.name,
        rcp_source=source,
        rcp_mean=ref.mean,
        rcp_stdev=ref.stdev,
        max_speedup=ref.max_speedup,
        min_allowed_mean=min_allowed,
        submission_mean=submission_mean,
        norm_factor=float(norm_factor),
    )


def _reference(name: str, record: Mapping[str, Any], submission_runs: int) -> _Reference:
    benchmark = record["Benchmark"]
    cut = rejected_per_side(benchmark)
    ordered = sorted(_convergence_list(record))
    mean = np.mean(ordered[cut : len(ordered) - cut])
    stdev = np.std(ordered)
    min_mean = min_acceptable_mean(mean, stdev, len(ordered) - cut * 2, submission_runs)
    return _Reference(
        name=name,
        benchmark=benchmark,
        batch_size=record["BS"],
        mean=float(mean),
        stdev=float(stdev),
        max_speedup=float(mean / min_mean),
    )


def _interpolate(
    batch_size: int, low: _Reference, high: _Reference, benchmark: str, submission_runs: int
) -> _Reference:
    mean = np.interp(batch_size, [low.batch_size, high.batch_size], [low.mean, high.mean])
    stdev = np.interp(batch_size, [low.batch_size, high.batch_size], [low.stdev, high.stdev])
    # The official checker assumes an interpolated point has 2x the submission's runs.
    min_mean = min_acceptable_mean(mean, stdev, submission_runs * 2, submission_runs)
    return _Reference(
        name=f"{benchmark}_interp_{batch_size}",
        benchmark=benchmark,
        batch_size=batch_size,
        mean=float(mean),
        stdev=float(stdev),
        max_speedup=float(mean / min_mean),
    )


def _prune(references: Sequence[_Reference]) -> list[_Reference]:
    """The official pruning: not a lower convex hull, one left-to-right pass."""
    fastest = min(references, key=lambda ref: ref.mean)
    kept = [ref for ref in references if ref.batch_size >= fastest.batch_size]
    i = 1
    while i < len(kept) - 1:
        low, high = kept[i - 1], kept[i + 1]
        interp_mean = np.interp(
            kept[i].batch_size, [low.batch_size, high.batch_size], [low.mean, high.mean]
        )
        if kept[i].mean > interp_mean:
            del kept[i]
        else:
            i += 1
    kept_points = {(ref.benchmark, ref.batch_size) for ref in kept}
    return [ref for ref in references if (ref.benchmark, ref.batch_size) in kept_points]


def _largest_below(references: Sequence[_Reference], batch_size: float) -> _Reference | None:
    best = None
    for ref in references:
        if 0 < ref.batch_size < batch_size and (best is None or ref.batch_size > best.batch_size):
            best = ref
    return best


def _smallest_above(references: Sequence[_Reference], batch_size: float) -> _Reference | None:
    best = None
    for ref in references:
        if ref.batch_size > batch_size and (best is None or ref.batch_size < best.batch_size):
            best = ref
    return best


def _single_benchmark(records: Mapping[str, Mapping[str, Any]]) -> str:
    names = {record["Benchmark"] for record in records.values()}
    if len(names) != 1:
        raise UsageError("rcp_records", f"records mix benchmarks: {sorted(names)}")
    return names.pop()


def _submission_runs(records: Mapping[str, Mapping[str, Any]], given: int | None) -> int:
    if given is not None:
        runs = given
    else:
        declared = {r[SUBMISSION_RUNS_KEY] for r in records.values() if SUBMISSION_RUNS_KEY in r}
        if len(declared) != 1:
            raise UsageError(
                "submission_runs",
                f"RCP records declare {len(declared)} different '{SUBMISSION_RUNS_KEY}' values; "
                "pass submission_runs",
            )
        runs = declared.pop()
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 3:
        raise UsageError("submission_runs", f"{runs!r}: need an integer of at least 3")
    return runs


def _convergence_list(record: Mapping[str, Any]) -> list[float]:
    return list(record[SAMPLES_KEY] if SAMPLES_KEY in record else record[EPOCHS_KEY])


def _validate_record(where: str, record: Any) -> None:
    if not isinstance(record, Mapping):
        raise GreenperfError(where, "an RCP record is a JSON object")
    for key in ("Benchmark", "BS"):
        if key not in record:
            raise GreenperfError(where, f"RCP record has no {key!r}")
    if not isinstance(record["Benchmark"], str):
        raise GreenperfError(where, "'Benchmark' is not a string")
    bs = record["BS"]
    if not isinstance(bs, int | float) or isinstance(bs, bool) or bs <= 0:
        raise GreenperfError(where, f"'BS' must be a positive number, got {bs!r}")
    if SAMPLES_KEY not in record and EPOCHS_KEY not in record:
        raise GreenperfError(where, f"RCP record has neither {SAMPLES_KEY!r} nor {EPOCHS_KEY!r}")
    values = _convergence_list(record)
    for value in values:
        _number(value, where)
    cut = rejected_per_side(record["Benchmark"])
    if len(values) < 2 * cut + 1:
        raise GreenperfError(
            where, f"{len(values)} reference runs; an olympic mean needs at least {2 * cut + 1}"
        )


def _number(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise GreenperfError(where, f"convergence point {value!r} is not a number")
    if not math.isfinite(value) or value <= 0:
        raise GreenperfError(where, f"convergence point {value!r} must be positive and finite")
    return value
