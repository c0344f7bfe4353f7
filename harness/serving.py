"""Serving a trained workload model to LoadGen, and the inference result file.

The model comes from a training result's checkpoint (``--from-result``), a
checkpoint file, or a fresh training run at the reference recipe. Any
workload works: its serving phase says which inputs and labels to serve and
how to turn a batch of inputs into predictions.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from greenperf import __version__, account, sysinfo
from greenperf.errors import GreenperfError, UsageError
from greenperf.inference import Mode, Scenario, direct_quality, measure_speed, run_inference
from greenperf.results import SCHEMA_VERSION, file_sha256, read_result, write_result
from greenperf.workload import Phase, PhaseData, Workload


class WorkloadTarget:
    """An ``InferenceTarget`` over a phase's trained model and its held-out set."""

    def __init__(self, name: str, phase: Phase, model: Any, inputs: Any, labels: Any,
                 max_batch: int, device: str) -> None:
        import torch

        self.name = name
        self.phase = phase
        self.model = model.eval()
        self.inputs = inputs.to(device)
        self.labels = labels.cpu().numpy()
        self.sample_count = int(labels.shape[0])
        self.performance_sample_count = self.sample_count  # the whole set fits in memory
        self.max_batch = max(1, min(max_batch, self.sample_count))
        self.device = device
        self._torch = torch

    def load_samples(self, indices: list[int]) -> None:
        return None  # held in memory (on the device) from the start

    def unload_samples(self, indices: list[int]) -> None:
        return None

    def predict(self, indices: list[int]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            index = torch.as_tensor(indices, dtype=torch.long, device=self.device)
            out = self.phase.predict(self.model, self.inputs[index])
        return out.to("cpu", torch.int64).numpy().reshape(len(indices), -1)

    def score(self, predictions: dict[int, np.ndarray]) -> float:
        if not predictions:
            return 0.0
        keys = np.fromiter(predictions.keys(), dtype=np.int64)
        predicted = np.array([int(np.asarray(predictions[int(k)]).reshape(-1)[0]) for k in keys])
        return float((predicted == self.labels[keys]).mean())


@dataclass
class ServedModel:
    workload: Workload
    scale: str
    phase: Phase
    model: Any
    data: PhaseData
    source: dict[str, Any] = field(default_factory=dict)
    # The trained model's own quality as its training run measured it (FP32, same
    # eval set): the accuracy gate's reference. None: measured by direct calls.
    reference_quality: float | None = None


def _load_checkpoint(workload: Workload, scale: str, checkpoint: Path, data_dir: Path | None,
                     device: str, source: dict[str, Any]) -> ServedModel:
    import torch

    phase = workload.serving_phase()
    data = phase.build_data(phase.recipe(scale, data_dir), scale, data_dir)
    model = phase.build_model(data, scale, None)
    try:
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, ValueError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GreenperfError(str(checkpoint), f"not a checkpoint of {workload.name} "
                                              f"({scale}): {first}") from exc
    return ServedModel(workload, scale, phase, model.to(device), data,
                       {**source, "checkpoint_sha256": file_sha256(checkpoint)})


def model_from_result(result: Path, workload: Workload, device: str) -> ServedModel:
    doc = read_result(result)
    if doc["kind"] != "training" or doc["workload"] != workload.name:
        raise UsageError(str(result), f"is not a {workload.name} training result")
    checkpoint = doc.get("checkpoint")
    if not checkpoint:
        raise UsageError(f"{result}: field checkpoint", "the result holds no checkpoint "
                                                        "(no run converged)")
    path = result.parent / checkpoint["path"]
    if not path.is_file():
        raise UsageError(f"{result}: field checkpoint.path", f"{path} is missing")
    if file_sha256(path) != checkpoint["sha256"]:
        raise GreenperfError(f"{result}: field checkpoint.sha256",
                             f"{path} was changed after the run")
    data_dir = doc["config"].get("data_dir")
    served = _load_checkpoint(workload, doc["scale"], path, Path(data_dir) if data_dir else None,
                              device, {"kind": "training-result", "path": str(result),
                                       "result_sha256": doc["checksum"]["value"]})
    phase_doc = next((p for p in doc["phases"] if p["name"] == served.phase.name), None)
    run = next((r for r in (phase_doc or {}).get("runs", []) if r["index"] == checkpoint["run"]),
               None)
    if run is not None and run.get("final_metric") is not None:
        served.reference_quality = float(run["final_metric"])
    return served


def model_from_checkpoint(path: Path, workload: Workload, scale: str, data_dir: Path | None,
                          device: str) -> ServedModel:
    if not path.is_file():
        raise UsageError(str(path), "no such checkpoint file")
    return _load_checkpoint(workload, scale, path, data_dir, device,
                            {"kind": "checkpoint", "path": str(path)})


def infer(served: ServedModel, scenarios: list[str], modes: list[str], out_dir: Path,
          profile: str = "quick", device: str = "cpu", energy: Any = None,
          system_file: Path | None = None, region: str | None = None,
          prices_file: Path | None = None) -> list[Path]:
    """One result file per scenario, each holding the requested modes' LoadGen runs."""
    workload, phase = served.workload, served.phase
    pair = phase.inference_set(served.data)
    if pair is None:
        raise UsageError(f"workload {workload.name}",
                         f"phase {phase.name} has no inference set to serve")
    target = WorkloadTarget(f"{workload.name}-{served.scale}", phase, served.model, pair[0],
                            pair[1], workload.inference_max_batch, device)
    direct = direct_quality(target)
    reference_quality = (served.reference_quality if served.reference_quality is not None
                         else direct)
    speed = measure_speed(target)
    declared = sysinfo.load_declared(system_file)
    auto = sysinfo.auto_system()
    paths = []
    for scenario_name in scenarios:
        scenario = Scenario.parse(scenario_name)
        runs = []
        for mode_name in modes:
            mode = Mode.parse(mode_name)
            folder = out_dir / "loadgen" / f"{workload.name}_{served.scale}" / scenario.value / \
                mode.value
            window = f"{scenario.value}-{mode.value}"
            if energy is not None:
                energy.begin_window(window)
            began = time.perf_counter()
            bound_ns = int(workload.inference_latency_bound_ms * 1e6)
            overrides = ({"server_target_latency_ns": bound_ns}
                         if scenario is Scenario.SERVER else {})
            result = run_inference(target, scenario, folder, mode=mode, profile=profile,
                                   reference_quality=reference_quality, speed=speed,
                                   **overrides)
            seconds = time.perf_counter() - began
            measurement = energy.end_window(window) if energy is not None else None
            entry = result.to_dict()
            entry["logs"] = {k: str(Path(v).relative_to(out_dir)) if Path(v).is_absolute()
                             and Path(v).is_relative_to(out_dir) else v
                             for k, v in entry["logs"].items()}
            entry["energy"] = measurement.to_dict() if measurement is not None else None
            entry["wall_seconds"] = seconds
            entry.setdefault("samples", _samples(entry))
            runs.append(entry)
        paths.append(_write(served, scenario.value, runs, reference_quality, direct, speed,
                            out_dir,
                            profile, declared, auto, system_file, device, region, prices_file))
    return paths


def _samples(entry: dict[str, Any]) -> int | None:
    sps, seconds = entry.get("samples_per_second"), entry.get("duration_s")
    return int(round(sps * seconds)) if sps and seconds else None


def _write(served: ServedModel, scenario: str, runs: list[dict[str, Any]],
           reference_quality: float, direct: float, speed: Any, out_dir: Path, profile: str,
           declared: dict[str, Any], auto: dict[str, Any], system_file: Path | None,
           device: str, region: str | None, prices_file: Path | None) -> Path:
    config = {"workload": served.workload.name, "scale": served.scale, "scenario": scenario,
              "modes": [r["mode"] for r in runs], "profile": profile, "device": device,
              "source": served.source}
    from greenperf.runner import config_hash

    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "kind": "inference",
        "generator": {"name": "greenperf", "version": __version__},
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "status": "complete", "status_reason": None,
        "workload": served.workload.name, "scale": served.scale,
        "division": "closed", "origin": "greenperf",
        "system": {"name": sysinfo.system_name(declared, auto), "auto": auto,
                   "declared": declared,
                   "declared_source": str(system_file) if system_file else None},
        "software": sysinfo.software(), "config": config, "config_hash": config_hash(config),
        "phases": [], "sustainability": None, "compliance": {"findings": []},
        "inference": {
            "scenario": scenario, "profile": profile, "served_phase": served.phase.name,
            "dataset": served.data.info.to_dict(), "reference_quality": reference_quality,
            "reference_quality_source": ("training run (final eval of the checkpoint's run)"
                                         if served.reference_quality is not None
                                         else "direct batched calls of the served model"),
            "direct_quality": direct,
            "model_speed": speed.to_dict() if hasattr(speed, "to_dict") else None,
            "source": served.source, "results": runs,
            "valid": all(r["valid"] for r in runs),
        },
    }
    settings = account.resolve_settings(region=region, prices_file=prices_file, doc=doc)
    doc["sustainability"] = account.build_account(doc, settings)
    path = out_dir / f"{served.workload.name}_{served.scale}_inference_{scenario}.json"
    write_result(path, json.loads(json.dumps(doc, default=_plain)))
    return path


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "value"):
        return value.value
    raise TypeError(f"not JSON: {type(value).__name__}")
