"""Training throughput vs. torch threads, OpenMP wait policy and background load.

Why: on a shared 2-core machine the default 2 torch threads ran the MLP ~10x slower than
1 thread when other processes were busy (libgomp's worker threads spin-wait at every
parallel region's barrier, and a spinning or descheduled team member stalls the others).
This study measures that, to choose ``greenperf run``'s thread default.

Each cell is a fresh subprocess, because ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` are read
once, when libgomp initialises (at ``import torch``). A cell builds the workload's tiny
model, optimizer and train step through the harness registry (``greenperf.workload``) and
feeds it synthetic batches of the real shapes (so the study does not depend on data
generation), runs warm-up steps, then times a fixed number of steps. A cell that would run
past ``--cap`` seconds stops early and reports the steps it did (marked ``*``).

Background load is ``python -c 'while True: pass'`` processes, started by this script and
always killed in a ``finally``.

    python benchmarks/bench_threads_under_load.py [--models mlp resnet bert] [--loads 0 1 2]

Timings are reported, never asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# name -> extra environment; "active" is libgomp's default (spin ~300k iterations, then sleep).
POLICIES: dict[str, dict[str, str]] = {
    "active": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin0": {"GOMP_SPINCOUNT": "0"},
}
# workload -> (warm-up steps, timed steps): about 1-2 s per cell on an idle 2-core machine.
STEPS = {"mlp": (50, 600), "resnet": (3, 25), "bert": (5, 40)}

_CELL = r"""
import json, sys, time
import torch
from greenperf.contention import ContentionWindow
from greenperf.workload import get_workload, PhaseData, DatasetInfo

name, threads, warm, steps, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), float(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
info = DatasetInfo("synthetic", "synthetic", "", 0, 0, 0)
if name == "mlp":
    phase = get_workload("mlp").phases()[0]
    recipe = phase.recipe("tiny")
    data = PhaseData(train=(torch.randn(8, 40), None), eval=None, info=info)
    bs = recipe.batch_size
    batch = (torch.randn(bs, 40), torch.randint(0, 10, (bs,)))
elif name == "resnet":
    phase = get_workload("resnet").phases()[0]
    recipe = phase.recipe("tiny")
    data = PhaseData(train=None, eval=None, info=info)
    bs = recipe.batch_size
    images = torch.randint(0, 256, (bs, 3, 32, 32), dtype=torch.uint8)
    batch = (phase.input_transform(images), torch.randint(0, 10, (bs,)))
else:
    phase = get_workload("bert_small").phases()[0]
    recipe = phase.recipe("tiny")
    data = PhaseData(train=None, eval=None, info=info, meta={"vocab_size": 128})
    bs = recipe.batch_size
    tokens = torch.randint(8, 128, (bs, 64))
    chosen = torch.rand(bs, 64) < 0.15
    batch = (tokens.masked_fill(chosen, 3), chosen, tokens[chosen])
model = phase.build_model(data, "tiny", None)
optimizer, _ = phase.build_optimizer(model, recipe)
for _ in range(warm):
    phase.train_step(model, optimizer, batch)
done = 0
guard = ContentionWindow()
guard.begin()
begin = time.perf_counter()
while done < steps:
    loss = phase.train_step(model, optimizer, batch)
    done += 1
    if time.perf_counter() - begin > cap:
        break
float(loss)
seconds = time.perf_counter() - begin
foreign = guard.end().foreign_cores
print(json.dumps({"samples_per_s": done * bs / seconds, "steps": done, "of": steps,
                  "foreign": -1.0 if foreign is None else foreign}))
"""


def _busy(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def _cell(model: str, threads: int, policy: str, cap: float) -> dict[str, float | int]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    env.update(POLICIES[policy])
    warm, steps = STEPS[model]
    out = subprocess.run([sys.executable, "-c", _CELL, model, str(threads), str(warm),
                          str(steps), str(cap)], env=env, capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "resnet", "bert"],
                        choices=sorted(STEPS))
    parser.add_argument("--loads", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--cap", type=float, default=12.0, help="seconds at most per cell")
    args = parser.parse_args()
    # SIGTERM (e.g. `timeout`) must unwind through the finally that kills the busy loops.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    print(f"cpus {os.cpu_count()}, load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[tuple[str, int, int, str], dict[str, float | int]] = {}
    begin = time.perf_counter()
    for load in args.loads:
        procs = _busy(load)
        try:
            time.sleep(0.5 if load else 0.0)  # let the busy loops get going
            for model in args.models:
                for threads in args.threads:
                    for policy in args.policies:
                        cell = _cell(model, threads, policy, args.cap)
                        results[(model, load, threads, policy)] = cell
                        print(f"  {model} busy={load} {threads}t {policy}: "
                              f"{cell['samples_per_s']:,.0f} samples/s "
                              f"(foreign {cell['foreign']:.2f})", flush=True)
        finally:
            _stop(procs)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"study took {time.perf_counter() - begin:.0f} s")
    print()
    print("training samples/s (* = stopped at the per-cell cap before the fixed step count)")
    print("busy procs: the loops this script started; foreign: other cores busy during the "
          "timed steps (theirs and anyone else's), mean over the row's cells")
    header = ["model", "busy procs", "foreign"] + [f"{t}t {p}" for t in args.threads
                                                   for p in args.policies]
    rows = []
    for model in args.models:
        for load in args.loads:
            cells = [results[(model, load, t, p)] for t in args.threads for p in args.policies]
            foreign = sum(float(c["foreign"]) for c in cells) / len(cells)
            row = [model, str(load), f"{foreign:.2f}"]
            for threads in args.threads:
                for policy in args.policies:
                    cell = results[(model, load, threads, policy)]
                    mark = "*" if cell["steps"] < cell["of"] else ""
                    row.append(f"{cell['samples_per_s']:,.0f}{mark}")
            rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
