"""A phase that trains a classifier on in-memory tensors: the MLP and ResNet share it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from greenperf.workload import Phase, PhaseData, Recipe


def epoch_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                  transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled full batches, a fresh permutation per epoch, seeded.

    The last partial batch of an epoch is dropped so every step has the
    recipe's batch size (samples-to-target then counts whole steps).
    """
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    n = x.shape[0]
    if n < batch_size:
        raise ValueError(f"batch size {batch_size} exceeds the {n} training samples")
    while True:
        order = torch.randperm(n, generator=generator).to(x.device)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            xb = x[idx]
            yield (transform(xb) if transform is not None else xb), y[idx]


def warmup_cosine(total_steps: int, warmup_steps: int = 0) -> Callable[[int], float]:
    """LR multiplier: linear warmup, then cosine decay to zero at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def warmup_linear(total_steps: int, warmup_steps: int = 0) -> Callable[[int], float]:
    """LR multiplier: linear warmup, then linear decay to zero at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, 1.0 - (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return factor


def steps_for(recipe: Recipe) -> int:
    return max(1, recipe.max_samples // recipe.batch_size)


def adamw_warmup_linear(param_groups: list[dict], recipe: Recipe) -> tuple[Any, Any]:
    """AdamW from the recipe's ``opt_adamw_*`` keys, with a per-step LR schedule: linear
    warmup over ``opt_learning_rate_warmup_samples``, then linear decay to zero."""
    h = recipe.hyperparameters
    optimizer = torch.optim.AdamW(param_groups, lr=recipe.learning_rate,
                                  betas=(h["opt_adamw_beta_1"], h["opt_adamw_beta_2"]),
                                  eps=h["opt_adamw_epsilon"])
    warmup = max(1, h["opt_learning_rate_warmup_samples"] // recipe.batch_size)
    schedule = warmup_linear(steps_for(recipe), warmup)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


@torch.inference_mode()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096,
             transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Top-1 accuracy over a held-out set, evaluated in chunks."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, x.shape[0], chunk):
        xb = x[start:start + chunk]
        if transform is not None:
            xb = transform(xb)
        correct += (model(xb).argmax(dim=1) == y[start:start + chunk]).sum()
    return float(correct.item()) / max(1, y.shape[0])


class ClassificationPhase(Phase):
    """Cross-entropy training and top-1 accuracy on ``data.train``/``data.eval``.

    ``data.train`` and ``data.eval`` are ``(x, y)`` tensor pairs. Subclasses
    give the recipe, data, model and optimizer, and may set ``input_transform``
    (e.g. uint8 images -> normalised float) applied per batch on the device.
    """

    metric = "accuracy"

    def input_transform(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        if type(self).input_transform is ClassificationPhase.input_transform:
            return None
        return self.input_transform

    def train_batches(self, data: PhaseData, recipe: Recipe, seed: int,
                      device: str) -> Iterator[Any]:
        x, y = data.train
        return epoch_batches(x.to(device), y.to(device), recipe.batch_size, seed,
                             self._transform())

    def train_step(self, model: Any, optimizer: Any, batch: Any) -> Any:
        x, y = batch
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    def predict(self, model: Any, inputs: Any) -> Any:
        transform = self._transform()
        return model(transform(inputs) if transform is not None else inputs).argmax(dim=1)

    def evaluate(self, model: Any, data: PhaseData, device: str) -> float:
        x, y = data.eval
        return accuracy(model, x.to(device), y.to(device), transform=self._transform())
