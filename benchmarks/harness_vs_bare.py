"""Side-by-side timing of the harness's training loop against a bare PyTorch loop.

Both loops train the same model on the same data at the same batch size, in
one process, interleaved (bare, harness, bare, harness, ...) so that drift in
machine load hits both alike. The figure of merit is the median ratio of
harness throughput to bare throughput.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from greenperf.progress import Progress
from greenperf.training import RunContext, run_phase
from greenperf.workload import Phase, PhaseData, Workload


def bare_throughput(phase: Phase, data: PhaseData, scale: str, steps: int, seed: int) -> float:
    """A plain loop: shuffled gather, forward, cross-entropy, backward, step, schedule."""
    recipe = phase.recipe(scale)
    torch.manual_seed(seed)
    model = phase.build_model(data, scale, None)
    optimizer, scheduler = phase.build_optimizer(model, recipe)
    x, y = data.train
    transform = getattr(phase, "_transform", lambda: None)()
    bs = recipe.batch_size
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(x.shape[0], generator=g)
    model.train()
    start = time.perf_counter()
    pos = 0
    for _ in range(steps):
        if pos + bs > x.shape[0]:
            order, pos = torch.randperm(x.shape[0], generator=g), 0
        idx = order[pos:pos + bs]
        pos += bs
        xb = x[idx]
        if transform is not None:
            xb = transform(xb)
        loss = F.cross_entropy(model(xb), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    float(loss)
    return steps * bs / (time.perf_counter() - start)


def harness_throughput(workload: Workload, phase: Phase, data: PhaseData, scale: str, steps: int,
                       seed: int, log_dir: Path) -> float:
    """The real driver (MLLOG, contention window, memory, budget checks); no eval inside."""
    recipe = phase.recipe(scale)
    samples = steps * recipe.batch_size
    recipe = dataclasses.replace(recipe, eval_every=samples, max_samples=samples, target=2.0)
    ctx = RunContext(workload=workload, scale=scale, division="open", device="cpu",
                     submitter="bench", platform="bench", submission_status="onprem",
                     progress=Progress(enabled=False), run_index=1, run_count=1)
    record = run_phase(phase, data, recipe, seed, ctx, log_dir / "log.txt", None).record
    return record["train_throughput"]


def compare(workload: Workload, scale: str, steps: int, rounds: int) -> dict[str, Any]:
    phase = workload.phases()[0]
    data = phase.build_data(phase.recipe(scale), scale, None)
    ratios, bare, harness = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        bare_throughput(phase, data, scale, max(5, steps // 10), 0)  # warm-up
        for r in range(rounds):
            b = bare_throughput(phase, data, scale, steps, r)
            h = harness_throughput(workload, phase, data, scale, steps, r, Path(tmp))
            bare.append(b)
            harness.append(h)
            ratios.append(h / b)
    return {"workload": workload.name, "steps": steps, "rounds": rounds,
            "bare_samples_per_s": statistics.median(bare),
            "harness_samples_per_s": statistics.median(harness),
            "ratio_median": statistics.median(ratios), "ratios": ratios}
