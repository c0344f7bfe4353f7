"""The one interface a model offers to the LoadGen driver, and its up-front checks."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from greenperf.errors import GreenperfError


@runtime_checkable
class InferenceTarget(Protocol):
    """A model plus its query sample library, as LoadGen sees it.

    ``predict`` is a batched call: one output row per index, all rows the same
    dtype and shape (a predicted class, logits, ...). ``score`` turns the rows
    decoded from LoadGen's accuracy log back into a quality figure.
    """

    name: str
    sample_count: int
    performance_sample_count: int
    max_batch: int

    def load_samples(self, indices: list[int]) -> None: ...

    def unload_samples(self, indices: list[int]) -> None: ...

    def predict(self, indices: list[int]) -> np.ndarray: ...

    def score(self, predictions: dict[int, np.ndarray]) -> float: ...


def check_target(target: object) -> None:
    """Fail early, with the offending field named, before LoadGen is involved."""
    name = getattr(target, "name", type(target).__name__)
    if not isinstance(target, InferenceTarget):
        missing = [
            attr
            for attr in (
                "name",
                "sample_count",
                "performance_sample_count",
                "max_batch",
                "load_samples",
                "unload_samples",
                "predict",
                "score",
            )
            if not hasattr(target, attr)
        ]
        raise GreenperfError(f"inference target {name}", f"lacks {', '.join(missing)}")
    for field in ("sample_count", "performance_sample_count", "max_batch"):
        value = getattr(target, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise GreenperfError(f"{name}.{field}", f"must be a positive int, got {value!r}")
    if target.performance_sample_count > target.sample_count:
        raise GreenperfError(
            f"{name}.performance_sample_count",
            f"{target.performance_sample_count} exceeds sample_count {target.sample_count}",
        )
