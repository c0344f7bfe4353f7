"""The one call most users need: calibrate, pick settings, run the scenario."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from greenperf.inference.calibrate import measure_speed
from greenperf.inference.driver import probe_offline_sps, run_loadgen
from greenperf.inference.result import InferenceResult
from greenperf.inference.server_search import find_server_qps
from greenperf.inference.settings import (
    Mode,
    ModelSpeed,
    Scenario,
    offline_qps_margin,
    settings_for,
)
from greenperf.inference.target import InferenceTarget, check_target

PROBE_FOLDER = "offline_probe"
OFFLINE_ATTEMPTS = 3  # an Offline run that ends too soon is resized at most twice


def run_inference(
    target: InferenceTarget,
    scenario: Scenario | str,
    output_dir: str | Path,
    *,
    mode: Mode | str = Mode.PERFORMANCE,
    profile: str = "quick",
    reference_quality: float | None = None,
    speed: ModelSpeed | None = None,
    **overrides: Any,
) -> InferenceResult:
    """Measure ``target`` in one LoadGen scenario and mode under the ``profile`` settings.

    ``overrides`` replace single settings (e.g. ``server_target_latency_ns``). The
    Offline and Server scenarios first measure LoadGen Offline throughput in a short
    probe (logs in ``output_dir/offline_probe``) unless ``speed`` carries it.
    Server in performance mode runs the peak-QPS search; in accuracy mode it
    issues at ``server_target_qps``.
    """
    check_target(target)
    scenario = Scenario.parse(scenario)
    mode = Mode.parse(mode)
    folder = Path(output_dir)
    speed = speed or measure_speed(target)
    needs_probe = scenario in (Scenario.OFFLINE, Scenario.SERVER) and mode is Mode.PERFORMANCE
    if needs_probe and speed.loadgen_offline_sps is None:
        probed = probe_offline_sps(target, speed, folder / PROBE_FOLDER, profile)
        speed = dataclasses.replace(speed, loadgen_offline_sps=probed)
    settings = settings_for(profile, scenario, speed, mode, **overrides)
    if scenario is Scenario.SERVER and mode is Mode.PERFORMANCE:
        return find_server_qps(target, settings, folder, speed=speed)
    result = run_loadgen(target, settings, folder, reference_quality=reference_quality, speed=speed)
    attempts = 1
    while (
        scenario is Scenario.OFFLINE
        and mode is Mode.PERFORMANCE
        and attempts < OFFLINE_ATTEMPTS
        and result.loadgen_checks.get("result_min_duration_met") is False
        and "offline_expected_qps" not in overrides
        and result.samples_per_second
    ):
        # The run beat the estimated rate and its one query ended before the minimum
        # duration; as LoadGen advises ("increase expected QPS"), resize it from the
        # rate just measured. A short run underestimates, hence the extra margin.
        settings = settings.replace(
            offline_expected_qps=result.samples_per_second * offline_qps_margin(profile) * 1.25
        )
        result = run_loadgen(
            target, settings, folder, reference_quality=reference_quality, speed=speed
        )
        attempts += 1
    return result
