"""Regression comparison of two greenperf results: is the candidate significantly worse?

Each result holds several runs, so each metric is a small sample per side (one value per run):
time to target, samples to target, training throughput and energy to target for every
training phase; throughput and latency percentiles for every inference scenario.

The statistics, and why:

* **Estimate: the ratio of medians** (candidate / baseline), with a 95% percentile-bootstrap
  interval that resamples the runs of each side independently (10,000 resamples, fixed seed,
  so the same files always give the same report). Medians, because run times are skewed: a
  seed that converges one evaluation later, or a run that shares the machine, produces a long
  tail that would drag a mean.
* **Test: one-sided Mann-Whitney U** (exact distribution for small samples without ties),
  asking "are candidate values stochastically worse than baseline values?". It is rank
  based, so it assumes no distribution (five runs cannot support a normality assumption)
  and one contended run cannot on its own make a difference significant. Aborted runs count
  as infinitely slow, the rank of the MLPerf rule that treats them as the slowest runs.
* **Verdict: asv's rule.** A metric *regressed* only when the difference is significant
  (p < ``alpha``, default 0.01) **and** the median moved the wrong way by more than the
  threshold (default 5%). Significance alone would flag real but negligible changes;
  a threshold alone would flag noise. ``alpha`` is one-sided 0.01 because a result reports
  several metrics per phase and a CI gate must rarely cry wolf; with it, 5 runs a side
  (the MLPerf submission count) can reach significance (smallest p = 1/252).
* **Too few runs** (e.g. 1 vs 1, or 3 vs 3 at alpha 0.01): when even a complete
  separation of the two samples could not reach ``alpha``, there is no test. The report
  says so and never fails on that metric.

What the test cannot see: the runs of one result share the machine's state, so drift of the
whole machine between two invocations (other jobs, frequency, a noisy neighbour) moves every
run of a block together and looks like a code change to any test over runs. Only the
threshold absorbs it: it must exceed the machine's noise floor between invocations (a few
percent on a quiet, dedicated runner; measured up to 2x on the shared 2-core development VM,
see tests/fixtures/compare_pairs/README.md). Runs flagged contended can be left out of the
time and energy figures (``exclude_contended``): another process took CPU time while they ran,
so their times measure the neighbour as much as the code.

"Worse by a factor" is symmetric in time and rate: a throughput that drops from 100 to 80
samples/s is worse by the same factor (1.25) as a time that grows from 80 to 100 s.

The package: ``verdict`` (metric model, thresholds and the verdict rule; the statistics are
``greenperf.stats``), ``series`` (metric values out of result documents), ``files`` (result
files and folders, matched) and ``render`` (text and Markdown tables).
"""

from greenperf.compare.files import compare_paths, load_side
from greenperf.compare.render import render_markdown, render_text, rows, summary_line
from greenperf.compare.series import (
    compare_docs,
    inference_series,
    key_text,
    result_key,
    training_series,
)
from greenperf.compare.verdict import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    HIGHER,
    IMPROVED,
    LOWER,
    NO_DATA,
    REGRESSED,
    TOO_FEW_RUNS,
    UNCHANGED,
    Comparison,
    MetricComparison,
    compare_samples,
    parse_threshold,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_THRESHOLD",
    "HIGHER",
    "IMPROVED",
    "LOWER",
    "NO_DATA",
    "REGRESSED",
    "TOO_FEW_RUNS",
    "UNCHANGED",
    "Comparison",
    "MetricComparison",
    "compare_docs",
    "compare_paths",
    "compare_samples",
    "inference_series",
    "key_text",
    "load_side",
    "parse_threshold",
    "render_markdown",
    "render_text",
    "result_key",
    "rows",
    "summary_line",
    "training_series",
]
