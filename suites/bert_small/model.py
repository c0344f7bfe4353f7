"""A BERT encoder built from ``torch.nn`` Transformer layers (pre-LN, GELU).

Sizes follow the published small BERTs (Turc et al. 2019): BERT-Tiny is L=2/H=128,
BERT-Small L=4/H=512. The tiny scale uses L=2/H=64 so that 2 CPU cores train it
at ~600 sequences/s (shared/research/workloads.md, section 3c).

The MLM decoder is tied to the token embedding, as in BERT, and logits are only
computed at masked positions, which is where nearly all the MLM cost would go.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    seq_len: int = 64
    layers: int = 2
    hidden: int = 64
    heads: int = 2
    ffn: int = 256
    pad_id: int = 0


class BertSmall(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.position_embedding = nn.Embedding(cfg.seq_len, cfg.hidden)
        # BERT normalises the summed embeddings; without it some seeds stall near 27%
        # masked-token accuracy on AgreeLang at the tiny scale.
        self.embedding_norm = nn.LayerNorm(cfg.hidden)
        layer = nn.TransformerEncoderLayer(cfg.hidden, cfg.heads, cfg.ffn, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(cfg.hidden)
        self.mlm_transform = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(),
                                           nn.LayerNorm(cfg.hidden))
        self.mlm_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.classifier: nn.Module | None = None
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embedding_norm(self.token_embedding(tokens) + self.position_embedding(positions))
        padding = tokens == self.cfg.pad_id
        mask = padding if bool(padding.any()) else None
        return self.final_norm(self.encoder(x, src_key_padding_mask=mask))

    def mlm_logits(self, hidden_at_masks: torch.Tensor) -> torch.Tensor:
        h = self.mlm_transform(hidden_at_masks)
        return F.linear(h, self.token_embedding.weight, self.mlm_bias)

    def add_classifier(self, classes: int) -> None:
        """A fresh [CLS] head for fine-tuning (pooler dense + tanh, then linear), as in BERT."""
        self.classifier = nn.Sequential(nn.Linear(self.cfg.hidden, self.cfg.hidden), nn.Tanh(),
                                        nn.Linear(self.cfg.hidden, classes))

    def classify(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise RuntimeError("add_classifier() first")
        return self.classifier(self.encode(tokens)[:, 0])

    def forward(self, tokens: torch.Tensor,
                mlm_positions: torch.Tensor | None = None) -> torch.Tensor:
        """MLM logits at ``mlm_positions`` (bool [n, T]) when given, else classification
        logits. Training goes through ``forward`` so DistributedDataParallel sees it."""
        if mlm_positions is not None:
            return self.mlm_logits(self.encode(tokens)[mlm_positions])
        return self.classify(tokens)


def no_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on embeddings, LayerNorm and biases (BERT's rule)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        skip = param.ndim <= 1 or "embedding" in name or name.endswith("bias")
        (no_decay if skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]
