"""Every built-in data set is the same bytes on every machine.

Each data set is generated in fresh subprocesses under the variants that used to change it: the
torch CPU capability (``ATEN_CPU_CAPABILITY``), numpy's SIMD dispatch
(``NPY_DISABLE_CPU_FEATURES``), and the thread count. Every variant must give the pinned
checksums. The full tiny-scale data sets of the three workloads are pinned too, as the result
files and the reference results record them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Small sets through the same code paths as the full ones: several Shapes-10 chunks (and a
# partial one), MNIST-1D with its standardisation, the AgreeLang language, documents and tasks.
_PROBE = r"""
import hashlib, json
import numpy as np
import torch  # the workloads import it; its CPU dispatch must not matter
from greenperf.suites.mlp.data import make_mnist1d
from greenperf.suites.resnet.data import make_shapes, checksum as shapes_checksum
from greenperf.suites.bert_small.corpus import AgreeLang
from greenperf.suites.bert_small.tasks import (eval_mask, make_classification, make_swap_detection,
                                     mask_for_mlm)

lang = AgreeLang(seed=0, topics=8, zipf=1.1)
docs = lang.sample(300, seed=7)
masked = eval_mask(docs.tokens)
task = make_classification(lang.sample(300, seed=8), seed=8)
swap = make_swap_detection(docs.tokens, seed=3)
train_mask = mask_for_mlm(docs.tokens, 0.3, seed=5)

def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()

print(json.dumps({
    "mnist1d": make_mnist1d(1500, 500, seed=42).checksum(),
    "shapes10": shapes_checksum(*make_shapes(300, seed=10001)),
    "agreelang_language": lang.checksum(),
    "agreelang_documents": docs.checksum(),
    "agreelang_masks": digest(masked.inputs, train_mask.inputs),
    "agreelang_agreement": digest(task.tokens, task.labels),
    "agreelang_swap": digest(swap.tokens, swap.labels),
    "torch_capability": torch.backends.cpu.get_cpu_capability(),
}))
"""

PINNED = {
    "mnist1d": "bd6c6936c4f5129a",
    "shapes10": "cc07f1c19fe59369",
    "agreelang_language": "72d6e0abd937faee",
    "agreelang_documents": "a499728f08b3b8de",
    "agreelang_masks": "0f09bca11f866b10",
    "agreelang_agreement": "5c37f3be3294373d",
    "agreelang_swap": "7eca22c337988d64",
}

# What the workloads record as their tiny-scale data sets (result files, reference results).
PINNED_TINY = {
    ("mlp", "train"): "7750f9c9bdfa783f",
    ("resnet", "train"): "c2a75992a1dc6768",
    ("bert_small", "pretrain"): "6080ef5c66d0ad9a",
    ("bert_small", "finetune"): "93b9e91143a7a880",
}


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def _numpy_dispatch_targets() -> list[str]:
    """numpy's SIMD dispatch targets this CPU supports (names differ between numpy versions)."""
    code = ("import json, numpy._core._multiarray_umath as m; "
            "print(json.dumps([t for t in m.__cpu_dispatch__ if m.__cpu_features__.get(t)]))")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, check=True).stdout
    except subprocess.CalledProcessError:  # numpy 1.x keeps it in numpy.core
        code = code.replace("numpy._core", "numpy.core")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, check=True).stdout
    return json.loads(out)


def _variants() -> list[tuple[str, dict[str, str]]]:
    flags = _cpu_flags()
    variants = [("as installed", {}),
                ("torch default (no SIMD)", {"ATEN_CPU_CAPABILITY": "default"}),
                ("1 thread", {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}),
                ("2 threads", {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"})]
    if "avx2" in flags:
        variants.append(("torch avx2", {"ATEN_CPU_CAPABILITY": "avx2"}))
    if "avx512f" in flags:
        variants.append(("torch avx512", {"ATEN_CPU_CAPABILITY": "avx512"}))
    targets = _numpy_dispatch_targets()
    if targets:
        # Every dispatched SIMD target off at once, and each one off alone.
        variants.append(("numpy baseline only", {"NPY_DISABLE_CPU_FEATURES": " ".join(targets)}))
        variants += [(f"numpy without {t}", {"NPY_DISABLE_CPU_FEATURES": t}) for t in targets[1:]]
    return variants


def _probe(extra_env: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra_env, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_data_set_is_identical_under_every_cpu_and_thread_variant():
    seen: dict[str, dict[str, str]] = {}
    for name, env in _variants():
        seen[name] = _probe(env)
    capabilities = {name: out.pop("torch_capability") for name, out in seen.items()}
    # The variants really ran differently, or the test proves nothing.
    assert capabilities["torch default (no SIMD)"] == "DEFAULT"
    for name, checksums in seen.items():
        short = {key: value[:16] for key, value in checksums.items()}
        assert short == PINNED, f"{name} ({capabilities[name]}) generated other data"


@pytest.mark.slow
@pytest.mark.parametrize(("workload", "phase"), sorted(PINNED_TINY))
def test_tiny_scale_data_sets_are_pinned(workload, phase):
    from greenperf.workload import get_workload

    chosen = next(p for p in get_workload(workload).phases() if p.name == phase)
    data = chosen.build_data(chosen.recipe("tiny"), "tiny", None)
    assert data.info.checksum[:16] == PINNED_TINY[(workload, phase)]
