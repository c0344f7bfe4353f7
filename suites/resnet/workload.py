"""ResNet on Shapes-10: 32x32 RGB procedural shapes, time to 88% top-1 (tiny).

Shapes-10 separates its classes by geometry alone (colour carries no label),
so a small convolutional net learns it and an MLP of similar cost does not
(benchmarks/test_bench_resnet_vs_mlp.py). With ``--data-dir`` a local
CIFAR-10 (binary version) is used instead, with published-quality targets.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from greenperf.suites.common.classification import ClassificationPhase, adamw_warmup_linear
from greenperf.suites.resnet.data import checksum, load_cifar10_binary, make_shapes, normalize
from greenperf.suites.resnet.model import parameter_groups, resnet
from greenperf.workload import DatasetInfo, Phase, PhaseData, Recipe, Workload

TRAIN_SEED, EVAL_SEED = 1, 10_001
SIZES = {"tiny": (50_000, 2_000), "standard": (500_000, 10_000)}
ARCH = {"tiny": {"depth": 8, "stem_stride": 2}, "standard": {"depth": 20, "stem_stride": 1}}
ADAMW = {"opt_name": "adamw", "opt_adamw_beta_1": 0.9, "opt_adamw_beta_2": 0.999,
         "opt_adamw_epsilon": 1e-8, "opt_adamw_weight_decay": 1e-4,
         "opt_learning_rate_decay_schedule": "linear warmup, linear decay to 0"}

RECIPES = {
    # 192k samples (1,536 steps): on the 98k schedule of the prototype study the
    # generated set here plateaued at 83-89% (seeds 0-2), too close to the target.
    "tiny": Recipe(batch_size=128, eval_every=8_192, max_samples=196_608, max_seconds=600.0,
                   target=0.88, learning_rate=4e-3,
                   hyperparameters={**ADAMW, "opt_learning_rate_warmup_samples": 6_400,
                                    "opt_learning_rate_decay_samples": 196_608,
                                    "model_depth": 8, "model_stem_stride": 2}),
    # Provisional: not yet run on a GPU; set the target from measured standard-scale runs.
    "standard": Recipe(batch_size=512, eval_every=50_000, max_samples=2_000_000,
                       max_seconds=3600.0, target=0.97, learning_rate=4e-3,
                       hyperparameters={**ADAMW, "opt_learning_rate_warmup_samples": 51_200,
                                        "opt_learning_rate_decay_samples": 2_000_000,
                                        "model_depth": 20, "model_stem_stride": 1}),
}
# Real CIFAR-10: 94% is the airbench speedrun's published target; the tiny
# ResNet-8 with its short schedule is held to a lower, published-quality bar.
REAL_DATA_TARGETS = {"tiny": 0.80, "standard": 0.94}


class ResNetTrain(ClassificationPhase):
    name = "train"

    def recipe(self, scale: str, data_dir: Path | None = None) -> Recipe:
        recipe = RECIPES[scale]
        if data_dir is not None:
            recipe = dataclasses.replace(recipe, target=REAL_DATA_TARGETS[scale])
        return recipe

    def build_data(self, recipe: Recipe, scale: str, data_dir: Path | None) -> PhaseData:
        if data_dir is not None:
            x_train, y_train, x_eval, y_eval = load_cifar10_binary(data_dir)
            name, source, seed = "cifar10-binary", f"local:{data_dir}", None
        else:
            n_train, n_eval = SIZES[scale]
            x_train, y_train = make_shapes(n_train, seed=TRAIN_SEED)
            x_eval, y_eval = make_shapes(n_eval, seed=EVAL_SEED)
            name, source, seed = f"shapes10-{n_train // 1000}k", "procedural", TRAIN_SEED
        digest = checksum(torch.cat([x_train, x_eval]), torch.cat([y_train, y_eval]))
        nbytes = sum(t.numel() * t.element_size() for t in (x_train, y_train, x_eval, y_eval))
        info = DatasetInfo(name=name, source=source, checksum=digest,
                           train_samples=int(y_train.shape[0]), eval_samples=int(y_eval.shape[0]),
                           nbytes=nbytes, seed=seed)
        return PhaseData(train=(x_train, y_train), eval=(x_eval, y_eval), info=info)

    def input_transform(self, x: torch.Tensor) -> torch.Tensor:
        # channels_last is 1.1-1.5x faster for these convs on CPU (workloads.md, 2b)
        return normalize(x).contiguous(memory_format=torch.channels_last)

    def build_model(self, data: PhaseData, scale: str, previous: Any | None) -> Any:
        arch = ARCH[scale]
        return resnet(arch["depth"], stem_stride=arch["stem_stride"]).to(
            memory_format=torch.channels_last)

    def build_optimizer(self, model: Any, recipe: Recipe) -> tuple[Any, Any]:
        decay = recipe.hyperparameters["opt_adamw_weight_decay"]
        return adamw_warmup_linear(parameter_groups(model, decay), recipe)


class ResNetWorkload(Workload):
    name = "resnet"
    description = "CIFAR-style ResNet-8 on Shapes-10 (procedural), time to 88% top-1"

    def phases(self) -> list[Phase]:
        return [ResNetTrain()]


workload = ResNetWorkload()
