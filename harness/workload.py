"""The workload interface and its registry.

A workload is a sequence of *phases* (most have one, ``train``; BERT-small has
``pretrain`` then ``finetune``). Each phase is one measured time-to-accuracy
span with its own data, recipe, target and MLLOG log. The harness drives
phases; it never knows which workload it is driving.

Workloads register through the ``greenperf.workloads`` entry-point group, so a
third-party package adds one with no edit to greenperf.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from greenperf.errors import UsageError

WORKLOAD_GROUP = "greenperf.workloads"
SUITE_GROUP = "greenperf.suites"

HyperValue = int | float | str | bool


@dataclass(frozen=True)
class Recipe:
    """Reference hyper-parameters of one phase at one scale.

    ``hyperparameters`` are logged as MLLOG keys and, in the closed division,
    must equal the reference. ``batch_size`` and the learning rate may follow
    ``lr_scaling`` (the documented scaling rule) and stay closed.
    """

    batch_size: int
    eval_every: int
    max_samples: int
    max_seconds: float
    target: float
    learning_rate: float
    hyperparameters: Mapping[str, HyperValue] = field(default_factory=dict)
    lr_scaling: str = "linear"
    reference_batch_size: int | None = None
    max_loss: float = 1e4

    def __post_init__(self) -> None:
        if self.reference_batch_size is None:
            object.__setattr__(self, "reference_batch_size", self.batch_size)

    def with_batch_size(self, batch_size: int) -> Recipe:
        """The recipe at another batch size, learning rate scaled by the rule."""
        ratio = batch_size / float(self.reference_batch_size or self.batch_size)
        if self.lr_scaling == "linear":
            lr = self.learning_rate * ratio
        elif self.lr_scaling == "sqrt":
            lr = self.learning_rate * ratio**0.5
        else:
            lr = self.learning_rate
        return dataclasses.replace(self, batch_size=batch_size, learning_rate=lr)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["hyperparameters"] = dict(self.hyperparameters)
        return out


@dataclass
class DatasetInfo:
    """What the result file records about the data a phase used."""

    name: str
    source: str  # "procedural" or "local:<path>"
    checksum: str
    train_samples: int
    eval_samples: int
    nbytes: int
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PhaseData:
    """Train and eval data of a phase, in whatever form the phase uses."""

    train: Any
    eval: Any
    info: DatasetInfo
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. a vocabulary size


class Phase(ABC):
    """One measured time-to-accuracy span of a workload."""

    name: str = "train"
    metric: str = "accuracy"

    @abstractmethod
    def recipe(self, scale: str, data_dir: Path | None = None) -> Recipe:
        """The reference recipe at ``scale``; real data (``data_dir``) may move the target."""

    @abstractmethod
    def build_data(self, recipe: Recipe, scale: str, data_dir: Path | None) -> PhaseData:
        """Generate (or load from ``data_dir``) the train and eval data."""

    @abstractmethod
    def build_model(self, data: PhaseData, scale: str, previous: Any | None) -> Any:
        """A fresh model; ``previous`` is the model the earlier phase trained, if any."""

    @abstractmethod
    def build_optimizer(self, model: Any, recipe: Recipe) -> tuple[Any, Any | None]:
        """Optimizer and per-step LR scheduler (or None)."""

    @abstractmethod
    def train_batches(self, data: PhaseData, recipe: Recipe, seed: int,
                      device: str) -> Iterator[Any]:
        """An endless iterator of training batches, deterministic from ``seed``."""

    @abstractmethod
    def train_step(self, model: Any, optimizer: Any, batch: Any) -> Any:
        """One optimizer step; returns the loss tensor (not ``.item()``: no sync per step)."""

    @abstractmethod
    def evaluate(self, model: Any, data: PhaseData, device: str) -> float:
        """Quality metric on the held-out set."""

    def inference_set(self, data: PhaseData) -> tuple[Any, Any] | None:
        """Inputs and labels inference serves from: by default the eval set when it is an
        ``(inputs, labels)`` pair; None when this phase's model is not served."""
        held_out = data.eval
        if isinstance(held_out, (tuple, list)) and len(held_out) == 2:
            return held_out[0], held_out[1]
        return None

    def predict(self, model: Any, inputs: Any) -> Any:
        """Predicted labels for a batch of inference inputs (default: argmax of the output)."""
        return model(inputs).argmax(dim=1)

    def batch_size_of(self, batch: Any) -> int:
        """Samples in one batch; phases with odd batch types override this."""
        first = batch[0] if isinstance(batch, (tuple, list)) else batch
        return int(first.shape[0])


class Workload(ABC):
    """A reference workload: named, described, made of phases."""

    name: str
    description: str
    scales: tuple[str, ...] = ("tiny", "standard")
    submission_runs: int = 5

    @abstractmethod
    def phases(self) -> list[Phase]:
        """The phases in the order they run."""

    def default_runs(self, scale: str) -> int:
        return self.submission_runs

    def serving_phase(self) -> Phase:
        """The phase whose trained model inference serves (by default the last one)."""
        return self.phases()[-1]

    # Latency bound for the Server and MultiStream scenarios, in milliseconds.
    inference_latency_bound_ms: float = 50.0
    inference_max_batch: int = 256


@dataclass(frozen=True)
class Suite:
    """A named set of workloads at one scale, e.g. ``quick``."""

    name: str
    scale: str
    runs: int
    workloads: tuple[str, ...]
    description: str = ""
    # LoadGen scenarios served after each workload trains (performance + accuracy).
    inference_scenarios: tuple[str, ...] = ()


_extra_workloads: dict[str, Workload] = {}


def register_workload(workload: Workload) -> None:
    """Register a workload in-process (tests, notebooks); packages use entry points."""
    _extra_workloads[workload.name] = workload


def unregister_workload(name: str) -> None:
    _extra_workloads.pop(name, None)


def _load_entry_point(ep: Any, kind: str) -> Any:
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not take the whole CLI down
        raise UsageError(f"entry point {kind}:{ep.name}", f"cannot be loaded ({exc})") from exc
    return obj() if isinstance(obj, type) else obj


def _registered(group: str) -> dict[str, Any]:
    """Every object an entry-point group registers, by its ``name``."""
    found: dict[str, Any] = {}
    for ep in entry_points(group=group):
        obj = _load_entry_point(ep, group)
        found[obj.name] = obj
    return found


def _lookup(registry: dict[str, Any], name: str, where: str, kind: str) -> Any:
    if name not in registry:
        known = ", ".join(registry) or "none installed"
        raise UsageError(where, f"unknown {kind} (known: {known})")
    return registry[name]


def available_workloads() -> dict[str, Workload]:
    """Every registered workload by name: entry points first, then in-process ones."""
    return dict(sorted({**_registered(WORKLOAD_GROUP), **_extra_workloads}.items()))


def get_workload(name: str) -> Workload:
    return _lookup(available_workloads(), name, f"workload {name!r}", "workload")


def check_scale(workload: Workload, scale: str) -> None:
    if scale not in workload.scales:
        raise UsageError(
            f"--scale {scale}",
            f"unknown scale for workload {workload.name} (known: {', '.join(workload.scales)})",
        )


def available_suites() -> dict[str, Suite]:
    return dict(sorted(_registered(SUITE_GROUP).items()))


def get_suite(name: str) -> Suite:
    return _lookup(available_suites(), name, f"--suite {name}", "suite")
