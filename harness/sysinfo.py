"""System description: what we can see (auto) plus what the submitter declares.

Declared fields come from an optional TOML file and use the MLCommons
system-description field names (the ones in an MLPerf ``systems/*.json``).
"""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

from greenperf.errors import UsageError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[no-redef]

# MLCommons training system-description fields (as in the official systems/*.json).
MLCOMMONS_FIELDS = (
    "submitter", "division", "status", "system_name", "number_of_nodes",
    "host_processors_per_node", "host_processor_model_name", "host_processor_core_count",
    "host_processor_vcpu_count", "host_processor_frequency", "host_processor_caches",
    "host_processor_interconnect", "host_memory_capacity", "host_storage_type",
    "host_storage_capacity", "host_networking", "host_networking_topology",
    "host_memory_configuration", "accelerators_per_node", "accelerator_model_name",
    "accelerator_host_interconnect", "accelerator_frequency", "accelerator_on-chip_memories",
    "accelerator_memory_configuration", "accelerator_memory_capacity",
    "accelerator_interconnect", "accelerator_interconnect_topology", "cooling", "hw_notes",
    "framework", "other_software_stack", "operating_system", "sw_notes",
)
# greenperf's own declared sections: human effort and prices for the account.
GREENPERF_SECTIONS = ("human_effort", "prices", "region", "notes")
HUMAN_EFFORT_FIELDS = {"porting_hours": float, "tuning_hours": float, "hourly_rate": float,
                       "currency": str, "source": str}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _gpus() -> dict[str, Any]:
    """GPUs through pynvml, or the reason there are none."""
    try:
        import pynvml
    except ImportError:
        return {"available": False, "reason": "pynvml not installed", "devices": []}
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return {"available": False, "reason": f"NVML unavailable: {exc}", "devices": []}
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append({"index": i, "name": name if isinstance(name, str) else name.decode(),
                            "memory_bytes": int(mem.total)})
        driver = pynvml.nvmlSystemGetDriverVersion()
        return {"available": bool(devices), "reason": None if devices else "no GPU found",
                "driver": driver if isinstance(driver, str) else driver.decode(),
                "devices": devices}
    except Exception as exc:
        return {"available": False, "reason": f"NVML query failed: {exc}", "devices": []}
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def auto_system() -> dict[str, Any]:
    """What greenperf can see of this machine."""
    sched = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(sched) if sched is not None else os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "gpus": _gpus(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def software() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "greenperf": _version("greenperf"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "numpy": _version("numpy"),
        "mlperf_logging": _version("mlperf-logging"),
        "mlcommons_loadgen": _version("mlcommons-loadgen"),
    }


def load_declared(path: Path | None) -> dict[str, Any]:
    """Read the declared system TOML; unknown keys and wrong types are errors."""
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise UsageError(str(path), "no such system description file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(str(path), f"not valid TOML ({exc})") from exc
    allowed = set(MLCOMMONS_FIELDS) | set(GREENPERF_SECTIONS)
    for key, value in data.items():
        if key not in allowed:
            raise UsageError(f"{path}: field {key}",
                             "unknown field (use MLCommons system-description names, or "
                             f"one of {', '.join(GREENPERF_SECTIONS)})")
        if key == "other_software_stack" or key in ("prices", "human_effort"):
            if not isinstance(value, dict):
                raise UsageError(f"{path}: field {key}", "must be a table")
        elif key not in GREENPERF_SECTIONS and not isinstance(value, (str, int, float)):
            raise UsageError(f"{path}: field {key}", "must be a string or number")
    for key, value in data.get("human_effort", {}).items():
        kind = HUMAN_EFFORT_FIELDS.get(key)
        if kind is None:
            raise UsageError(f"{path}: field human_effort.{key}",
                             f"unknown field (known: {', '.join(HUMAN_EFFORT_FIELDS)})")
        if kind is float and (not isinstance(value, (int, float)) or value < 0):
            raise UsageError(f"{path}: field human_effort.{key}", "must be a number >= 0")
        if kind is str and not isinstance(value, str):
            raise UsageError(f"{path}: field human_effort.{key}", "must be a string")
    division = data.get("division")
    if division is not None and division not in ("closed", "open"):
        raise UsageError(f"{path}: field division", f"{division!r} is not 'closed' or 'open'")
    return data


def system_name(declared: dict[str, Any], auto: dict[str, Any]) -> str:
    name = declared.get("system_name")
    if name:
        return str(name)
    gpus = auto.get("gpus", {}).get("devices") or []
    accel = f"{len(gpus)}x{gpus[0]['name']}" if gpus else "cpu"
    return f"{auto.get('hostname', 'host')}-{auto.get('logical_cpus')}c-{accel}".replace(" ", "_")
