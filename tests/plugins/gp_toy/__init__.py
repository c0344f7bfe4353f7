"""A third-party greenperf workload, installed only through an entry point.

It proves that a workload plugs in with no edit to greenperf, and gives the
tests a fast, controllable workload: logistic regression on a seeded
Gaussian-blob data set. Environment knobs let a test slow a step down
(``GP_TOY_STEP_SLEEP``), make the loss diverge (``GP_TOY_NAN_AT_STEP``),
kill the process mid-run (``GP_TOY_CRASH_AT_STEP``), or kill one rank of a
distributed run at its first step of run N (``GP_TOY_CRASH_RANK`` and
``GP_TOY_CRASH_IN_RUN``).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from greenperf.workload import DatasetInfo, Phase, PhaseData, Recipe, Workload

RECIPE = Recipe(batch_size=32, eval_every=256, max_samples=20_000, max_seconds=60.0,
                target=0.9, learning_rate=0.05,
                hyperparameters={"opt_name": "sgd", "model_kind": "logistic"})


class ToyPhase(Phase):
    name = "train"
    metric = "accuracy"

    def recipe(self, scale: str, data_dir: Path | None = None) -> Recipe:
        return RECIPE

    def build_data(self, recipe: Recipe, scale: str, data_dir: Path | None) -> PhaseData:
        g = torch.Generator().manual_seed(1234)
        centres = torch.randn(4, 8, generator=g) * 3
        y = torch.randint(0, 4, (2400,), generator=g)
        x = centres[y] + torch.randn(2400, 8, generator=g)
        digest = hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()
        info = DatasetInfo("toy-blobs", "procedural", digest, 2000, 400,
                           x.numel() * 4 + y.numel() * 8, 1234)
        return PhaseData((x[:2000], y[:2000]), (x[2000:], y[2000:]), info)

    def build_model(self, data: PhaseData, scale: str, previous: Any | None) -> Any:
        self.builds = getattr(self, "builds", 0) + 1
        return torch.nn.Linear(8, 4)

    def build_optimizer(self, model: Any, recipe: Recipe) -> tuple[Any, Any]:
        return torch.optim.SGD(model.parameters(), lr=recipe.learning_rate), None

    def train_batches(self, data: PhaseData, recipe: Recipe, seed: int, device: str):
        x, y = data.train
        g = torch.Generator().manual_seed(seed)
        while True:
            order = torch.randperm(x.shape[0], generator=g)
            for i in range(0, x.shape[0] - recipe.batch_size + 1, recipe.batch_size):
                idx = order[i:i + recipe.batch_size]
                yield x[idx], y[idx]

    def train_step(self, model: Any, optimizer: Any, batch: Any) -> Any:
        self.steps = getattr(self, "steps", 0) + 1
        sleep = float(os.environ.get("GP_TOY_STEP_SLEEP", "0"))
        if sleep:
            time.sleep(sleep)
        if self.steps == int(os.environ.get("GP_TOY_CRASH_AT_STEP", "-1")):
            os._exit(3)
        if (os.environ.get("RANK") == os.environ.get("GP_TOY_CRASH_RANK", "none")
                and self.builds == int(os.environ.get("GP_TOY_CRASH_IN_RUN", "-1"))):
            os._exit(4)
        x, y = batch
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if self.steps >= int(os.environ.get("GP_TOY_NAN_AT_STEP", "1000000000")):
            return loss * float("nan")
        return loss

    @torch.inference_mode()
    def evaluate(self, model: Any, data: PhaseData, device: str) -> float:
        x, y = data.eval
        return float((model(x).argmax(1) == y).float().mean())


class ToyWorkload(Workload):
    name = "toy"
    description = "logistic regression on Gaussian blobs (test plugin)"
    scales = ("tiny",)

    def phases(self) -> list[Phase]:
        return [ToyPhase()]


workload = ToyWorkload()
