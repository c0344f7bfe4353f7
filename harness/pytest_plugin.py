"""pytest plugin: run greenperf workloads from a test suite and fail on a performance regression.

Installed through the ``pytest11`` entry point ``greenperf``. Options::

    --greenperf-baseline=PATH    result file or folder to compare with (matched by workload,
                                 scale and kind); without it runs are recorded, not judged
    --greenperf-threshold=5%     smallest change that counts as a regression
    --greenperf-alpha=0.01       significance level (one-sided Mann-Whitney U over runs)
    --greenperf-out=DIR          keep the result files there (e.g. to become the next baseline)

The ``greenperf_run`` fixture is a function::

    def test_training_speed(greenperf_run):
        run = greenperf_run("mlp", scale="tiny", runs=5)           # recipe overrides as kwargs
        assert run.doc["phases"][0]["score"]["value"] is not None

It runs the workload (N seeded runs, one result file), compares the result with the baseline
when one is given, and fails the test with the comparison table on a significant regression
(``greenperf.compare``: significant *and* beyond the threshold). Tests using it carry the
``greenperf`` marker, so ``-m greenperf`` selects them and ``-m "not greenperf"`` skips them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from greenperf.errors import GreenperfError

if TYPE_CHECKING:
    from greenperf.compare import Comparison

MARKER = "greenperf"


@dataclass
class GreenperfRun:
    """One ``greenperf_run`` call: the result file and, with a baseline, its comparison."""

    workload: str
    scale: str
    result: Path
    doc: dict[str, Any]
    comparison: Comparison | None = None

    @property
    def regressed(self) -> bool:
        return bool(self.comparison and self.comparison.regressed)


@dataclass
class _Settings:
    baseline: Path | None
    threshold: float
    alpha: float
    out: Path | None
    runs: list[tuple[str, GreenperfRun]] = field(default_factory=list)
    written: dict[Path, str] = field(default_factory=dict)


_SETTINGS = pytest.StashKey[_Settings]()
# greenperf.compare's default, repeated so that loading the plugin in every pytest session
# does not import numpy.
_DEFAULT_ALPHA = 0.01


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenperf", "greenperf performance regression tests")
    group.addoption("--greenperf-baseline", default=None, metavar="PATH",
                    help="greenperf result file or folder to compare runs with")
    group.addoption("--greenperf-threshold", default="5%", metavar="PCT",
                    help="smallest change that counts as a regression (default 5%%)")
    group.addoption("--greenperf-alpha", default=_DEFAULT_ALPHA, type=float, metavar="P",
                    help=f"significance level of the regression test (default {_DEFAULT_ALPHA})")
    group.addoption("--greenperf-out", default=None, metavar="DIR",
                    help="keep greenperf result files in DIR (default: a temporary folder)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: runs greenperf workloads (performance "
                                       "regression test)")
    baseline = config.getoption("greenperf_baseline")
    if baseline is not None and not Path(baseline).exists():
        raise pytest.UsageError(f"--greenperf-baseline {baseline}: no such result file or folder")
    from greenperf.compare import parse_threshold

    raw = config.getoption("greenperf_threshold")
    try:
        threshold = parse_threshold(raw)
    except GreenperfError as exc:
        raise pytest.UsageError(f"--greenperf-threshold {raw}: {exc.problem}") from exc
    alpha = config.getoption("greenperf_alpha")
    if not 0 < alpha < 1:
        raise pytest.UsageError(f"--greenperf-alpha {alpha}: must be between 0 and 1")
    out = config.getoption("greenperf_out")
    config.stash[_SETTINGS] = _Settings(Path(baseline) if baseline else None, threshold, alpha,
                                        Path(out) if out else None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "greenperf_run" in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)


@pytest.fixture
def greenperf_run(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Callable[..., GreenperfRun]:
    """Run a greenperf workload; fail the test on a significant regression against the baseline.

    ``greenperf_run(workload, scale="tiny", runs=5, *, seeds=None, batch_size=None,
    threads=None, device="cpu", compliance=False, energy=True, **overrides)``; keyword
    overrides are recipe settings like ``--set`` (they make the result open division).
    """
    settings = request.config.stash[_SETTINGS]

    def run(workload: str, scale: str = "tiny", runs: int = 5, *, seeds: list[int] | None = None,
            batch_size: int | None = None, threads: int | None = None, device: str = "cpu",
            compliance: bool = False, energy: bool = True, **overrides: Any) -> GreenperfRun:
        from greenperf.compare import compare_paths, render_text
        from greenperf.progress import Progress
        from greenperf.runner import RunRequest, result_path, run_workload
        from greenperf.workload import get_workload

        out = settings.out or tmp_path_factory.mktemp("greenperf")
        target = result_path(out, workload, scale).resolve()
        if target in settings.written:
            pytest.fail(f"greenperf: {workload} {scale} was already written to {target} by "
                        f"{settings.written[target]} in this session; use another "
                        "--greenperf-out per run", pytrace=False)
        try:
            path = run_workload(RunRequest(
                workload=get_workload(workload), scale=scale, runs=runs, out_dir=out,
                seeds=seeds, device=device, threads=threads, batch_size=batch_size,
                overrides={k: str(v) for k, v in overrides.items()},
                check_compliance=compliance, progress=Progress(enabled=False),
                energy_factory=_energy_factory if energy else None))
        except GreenperfError as exc:
            pytest.fail(f"greenperf: {exc}", pytrace=False)
        settings.written[path.resolve()] = request.node.nodeid
        result = GreenperfRun(workload, scale, path, json.loads(path.read_text()))
        settings.runs.append((request.node.nodeid, result))
        if settings.baseline is None:
            return result
        try:
            result.comparison = compare_paths(settings.baseline, path, settings.threshold,
                                              settings.alpha)
        except GreenperfError as exc:
            pytest.fail(f"greenperf: cannot compare with --greenperf-baseline: {exc}",
                        pytrace=False)
        if result.comparison.regressed:
            pytest.fail(f"greenperf: performance regression in {workload} {scale} against "
                        f"{settings.baseline}\n{render_text(result.comparison)}", pytrace=False)
        return result

    return run


def _energy_factory(device: str) -> Any:
    """The same meters as ``greenperf run``: NVML on CUDA devices, RAPL or a TDP estimate."""
    from greenperf.meters import EnergyMonitor

    on_gpu = device.startswith("cuda")
    index = int(device.split(":", 1)[1]) if on_gpu and ":" in device else 0
    return EnergyMonitor(gpu_indices=[index] if on_gpu else None, measure_gpu=on_gpu)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    settings = config.stash.get(_SETTINGS, None)
    if settings is None or not settings.runs:
        return
    from greenperf.compare import summary_line

    terminalreporter.section("greenperf")
    for nodeid, run in settings.runs:
        verdict = (summary_line(run.comparison) if run.comparison is not None
                   else "recorded (no --greenperf-baseline given)")
        terminalreporter.write_line(f"{nodeid}: {run.workload} {run.scale} -> {run.result}: "
                                    f"{verdict}")
