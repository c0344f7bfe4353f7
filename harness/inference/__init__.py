"""greenperf's LoadGen driver: any :class:`InferenceTarget` through the real MLCommons
LoadGen, in the Offline, SingleStream, MultiStream and Server scenarios.

Importing this package does not import torch.
"""

from greenperf.inference.calibrate import direct_predictions, direct_quality, measure_speed
from greenperf.inference.driver import run_loadgen
from greenperf.inference.logs import DetailLog, parse_detail, read_accuracy_log, summary_verdict
from greenperf.inference.measure import run_inference
from greenperf.inference.result import AccuracyReport, InferenceResult, LatencyStats, ServerTrial
from greenperf.inference.server_search import find_server_qps, search_peak_qps
from greenperf.inference.settings import (
    LoadGenSettings,
    Mode,
    ModelSpeed,
    Scenario,
    loadgen_defaults,
    quick_settings,
    settings_for,
    standard_settings,
)
from greenperf.inference.target import InferenceTarget, check_target

__all__ = [
    "AccuracyReport",
    "DetailLog",
    "InferenceResult",
    "InferenceTarget",
    "LatencyStats",
    "LoadGenSettings",
    "Mode",
    "ModelSpeed",
    "Scenario",
    "ServerTrial",
    "check_target",
    "direct_predictions",
    "direct_quality",
    "find_server_qps",
    "loadgen_defaults",
    "measure_speed",
    "parse_detail",
    "quick_settings",
    "read_accuracy_log",
    "run_inference",
    "run_loadgen",
    "search_peak_qps",
    "settings_for",
    "standard_settings",
    "summary_verdict",
]
