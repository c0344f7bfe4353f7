"""The reference MLP: input -> hidden ReLU layers -> 10 classes."""

from __future__ import annotations

import torch
from torch import nn


def make_mlp(in_features: int, hidden: tuple[int, ...], classes: int = 10) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
