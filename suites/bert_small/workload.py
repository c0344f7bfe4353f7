"""BERT-small: masked-LM pre-training, then fine-tuning on agreement acceptability.

Corpus: AgreeLang-2, a procedural hidden-Markov language whose verb suffixes and
sentence-final pronouns agree with a subject across prepositional-phrase
attractors, with a latent document topic (``greenperf.suites.bert_small.corpus``).

* ``pretrain``: masked-token accuracy on 500 held-out documents (15% masked with
  a fixed seed). Baselines (benchmarks/bench_corpus.py): unigram 6.3%, left
  bigram 20.4%, left+right neighbours 26.2%, exact Bayes ceiling 48.8%. The 33%
  target sits well above every count baseline. Seeds differ in when they leave
  the 22-28% plateau: seed 0 reaches 33% at ~80k sequences, 35% only after the
  98k budget, so 33% is the tiny target that every reference seed meets.
  The long-range band (above ~41%, where only attention over the whole document
  helps, see the study's windowed ablation) is for the standard scale.
* ``finetune``: from the pre-trained encoder, classify whether a sentence's
  agreement is intact: each example is one sentence whose verb follows at least
  one prepositional-phrase attractor, and in half of them the verb suffix (and
  pronoun) is made to disagree with the subject. Majority class, bag-of-words
  and bigram models score 50-54%, and so does "agree with the nearest noun";
  the target is 85%.

Each phase is its own measured, logged time-to-accuracy span, so the result
keeps pre-training and fine-tuning apart for the amortisation account.
With ``--data-dir`` a folder of plain-text files (one document per line) is
used: MLM on it, then adjacent-word swap detection.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from greenperf.bitexact import little_endian
from greenperf.suites.bert_small.corpus import MASK_ID, SPECIAL_IDS, AgreeLang
from greenperf.suites.bert_small.model import BertConfig, BertSmall, no_decay_groups
from greenperf.suites.bert_small.tasks import (
    TRAIN_MASK_RATE,
    eval_mask,
    make_classification,
    make_swap_detection,
)
from greenperf.suites.bert_small.text_corpus import TEXT_SPECIAL_IDS, load_text_corpus
from greenperf.suites.common.classification import ClassificationPhase, adamw_warmup_linear
from greenperf.workload import DatasetInfo, Phase, PhaseData, Recipe, Workload

LANGUAGE_SEED = 0
PRETRAIN_SEEDS = (7, 10_007)  # train, eval documents
FINETUNE_SEEDS = (8, 10_008)
SIZES = {  # scale -> pretrain train/eval docs, finetune train/eval docs
    "tiny": (50_000, 500, 20_000, 1_000),
    "standard": (1_000_000, 5_000, 20_000, 5_000),
}
MODELS = {
    "tiny": {"layers": 2, "hidden": 64, "heads": 2, "ffn": 256},
    "standard": {"layers": 4, "hidden": 512, "heads": 8, "ffn": 2048},  # BERT-Small
}
ADAMW = {"opt_name": "adamw", "opt_adamw_beta_1": 0.9, "opt_adamw_beta_2": 0.98,
         "opt_adamw_epsilon": 1e-6, "opt_adamw_weight_decay": 0.01,
         "opt_learning_rate_decay_schedule": "linear warmup, linear decay to 0"}


def _recipe(batch: int, eval_every: int, budget: int, target: float, lr: float, warmup: int,
            scale: str, seconds: float, **extra: Any) -> Recipe:
    model = MODELS[scale]
    return Recipe(batch_size=batch, eval_every=eval_every, max_samples=budget,
                  max_seconds=seconds, target=target, learning_rate=lr,
                  hyperparameters={**ADAMW, "opt_learning_rate_warmup_samples": warmup,
                                   "opt_learning_rate_decay_samples": budget,
                                   "model_layers": model["layers"],
                                   "model_hidden": model["hidden"], **extra})


PRETRAIN = {
    "tiny": _recipe(32, 2_048, 98_304, 0.33, 2e-3, 3_200, "tiny", 900.0,
                    mlm_train_mask_rate=TRAIN_MASK_RATE),
    # Provisional: not yet run on a GPU; set the target from measured standard-scale runs.
    "standard": _recipe(256, 65_536, 8_000_000, 0.45, 1e-3, 160_000, "standard", 7200.0,
                        mlm_train_mask_rate=TRAIN_MASK_RATE),
}
FINETUNE = {
    # 80k sequences: a weakly pre-trained encoder (33.5%) sat at chance for 29k
    # sequences before it learned the task (reference seed 3 on a 40k schedule).
    "tiny": _recipe(32, 1_024, 81_920, 0.85, 1e-3, 1_024, "tiny", 900.0),
    # Provisional: not yet run on a GPU; set the target from measured standard-scale runs.
    "standard": _recipe(256, 16_384, 2_000_000, 0.95, 5e-4, 32_768, "standard", 7200.0),
}
REAL_DATA = {"pretrain": 0.30, "finetune": 0.75}  # plain-text corpora: not calibrated here


@functools.lru_cache(maxsize=2)
def _language() -> AgreeLang:
    return AgreeLang(seed=LANGUAGE_SEED)


@functools.lru_cache(maxsize=2)
def _text_corpus(data_dir: str) -> Any:
    return load_text_corpus(Path(data_dir))


def _config(scale: str, vocab_size: int) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, **MODELS[scale])


def _info(name: str, source: str, checksum: str, train: int, evals: int, nbytes: int,
          seed: int | None) -> DatasetInfo:
    return DatasetInfo(name=name, source=source, checksum=checksum, train_samples=train,
                       eval_samples=evals, nbytes=nbytes, seed=seed)


class _BertPhase(Phase):
    """What both phases share: recipes per scale, the optimizer, the endless batches."""

    recipes: dict[str, Recipe]

    def recipe(self, scale: str, data_dir: Path | None = None) -> Recipe:
        recipe = self.recipes[scale]
        if data_dir is not None:
            recipe = dataclasses.replace(recipe, target=REAL_DATA[self.name])
        return recipe

    def build_optimizer(self, model: Any, recipe: Recipe) -> tuple[Any, Any]:
        decay = recipe.hyperparameters["opt_adamw_weight_decay"]
        return adamw_warmup_linear(no_decay_groups(model, decay), recipe)


class Pretrain(_BertPhase):
    name = "pretrain"
    metric = "masked_token_accuracy"
    recipes = PRETRAIN

    def build_data(self, recipe: Recipe, scale: str, data_dir: Path | None) -> PhaseData:
        n_train, n_eval, _, _ = SIZES[scale]
        if data_dir is not None:
            corpus = _text_corpus(str(data_dir))
            train, held_out, special = corpus.train.tokens, corpus.eval.tokens, TEXT_SPECIAL_IDS
            vocab, name, source, seed = len(corpus.vocab), "text-corpus", f"local:{data_dir}", None
            checksum = corpus.source_checksum
        else:
            lang = _language()
            train = lang.sample(n_train, PRETRAIN_SEEDS[0]).tokens
            held_out = lang.sample(n_eval, PRETRAIN_SEEDS[1]).tokens
            special, vocab = SPECIAL_IDS, lang.vocab_size
            name, source, seed = f"agreelang2-{n_train // 1000}k", "procedural", PRETRAIN_SEEDS[0]
            checksum = _digest(lang.checksum(), train, held_out)
        masked = eval_mask(held_out, MASK_ID, special)
        eval_set = (torch.from_numpy(masked.inputs), torch.from_numpy(masked.target_positions),
                    torch.from_numpy(masked.target_ids))
        info = _info(name, source, checksum, len(train), len(held_out),
                     train.nbytes + held_out.nbytes, seed)
        return PhaseData(train=torch.from_numpy(train), eval=eval_set, info=info,
                         meta={"special": torch.tensor(special), "vocab_size": vocab})

    def build_model(self, data: PhaseData, scale: str, previous: Any | None) -> Any:
        return BertSmall(_config(scale, data.meta["vocab_size"]))

    def train_batches(self, data: PhaseData, recipe: Recipe, seed: int,
                      device: str) -> Iterator[Any]:
        tokens = data.train.to(device)
        maskable = ~torch.isin(tokens, data.meta["special"].to(device))
        rate = float(recipe.hyperparameters["mlm_train_mask_rate"])
        generator = torch.Generator().manual_seed(seed)
        n, bs = tokens.shape[0], recipe.batch_size
        while True:
            order = torch.randperm(n, generator=generator).to(device)
            for start in range(0, n - bs + 1, bs):
                idx = order[start:start + bs]
                batch, can_mask = tokens[idx], maskable[idx]
                # Bernoulli masking, as BERT's pre-training does: about `rate` of the tokens
                chosen = (torch.rand(batch.shape, generator=generator).to(device) < rate)
                chosen &= can_mask
                yield batch.masked_fill(chosen, MASK_ID), chosen, batch[chosen]

    def train_step(self, model: Any, optimizer: Any, batch: Any) -> Any:
        inputs, positions, targets = batch
        loss = F.cross_entropy(model(inputs, positions), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    @torch.inference_mode()
    def evaluate(self, model: Any, data: PhaseData, device: str) -> float:
        inputs, positions, targets = (t.to(device) for t in data.eval)
        model.eval()
        correct = 0
        chunk = 256
        for start in range(0, inputs.shape[0], chunk):
            pos = positions[start:start + chunk]
            hidden = model.encode(inputs[start:start + chunk])
            predicted = model.mlm_logits(hidden[pos]).argmax(dim=1)
            lo = int(positions[:start].sum())
            correct += int((predicted == targets[lo:lo + predicted.shape[0]]).sum())
        return correct / max(1, targets.shape[0])


class Finetune(ClassificationPhase, _BertPhase):
    name = "finetune"
    metric = "accuracy"
    recipes = FINETUNE

    def build_data(self, recipe: Recipe, scale: str, data_dir: Path | None) -> PhaseData:
        _, _, n_train, n_eval = SIZES[scale]
        if data_dir is not None:
            corpus = _text_corpus(str(data_dir))
            train = make_swap_detection(corpus.train.tokens, FINETUNE_SEEDS[0], TEXT_SPECIAL_IDS)
            held_out = make_swap_detection(corpus.eval.tokens, FINETUNE_SEEDS[1], TEXT_SPECIAL_IDS)
            vocab, name, source, seed = len(corpus.vocab), "text-swap", f"local:{data_dir}", None
            checksum = _digest(corpus.source_checksum, train.tokens, held_out.tokens)
        else:
            lang = _language()
            train = make_classification(lang.sample(n_train, FINETUNE_SEEDS[0]), FINETUNE_SEEDS[0])
            held_out = make_classification(lang.sample(n_eval, FINETUNE_SEEDS[1]),
                                           FINETUNE_SEEDS[1])
            vocab = lang.vocab_size
            name, source, seed = f"agreelang2-agreement-{n_train // 1000}k", "procedural", \
                FINETUNE_SEEDS[0]
            checksum = _digest(lang.checksum(), train.tokens, train.labels, held_out.tokens,
                               held_out.labels)
        info = _info(name, source, checksum, len(train.labels), len(held_out.labels),
                     train.tokens.nbytes + held_out.tokens.nbytes + train.labels.nbytes * 2,
                     seed)
        return PhaseData(
            train=(torch.from_numpy(train.tokens), torch.from_numpy(train.labels)),
            eval=(torch.from_numpy(held_out.tokens), torch.from_numpy(held_out.labels)),
            info=info, meta={"vocab_size": vocab})

    def build_model(self, data: PhaseData, scale: str, previous: Any | None) -> Any:
        # Fine-tuning must not change the pre-trained model the result may still refer to.
        model = copy.deepcopy(previous) if previous is not None else BertSmall(
            _config(scale, data.meta["vocab_size"]))
        model.add_classifier(2)
        # The MLM head is not trained here; frozen, it stays out of the optimizer and DDP.
        for param in [*model.mlm_transform.parameters(), model.mlm_bias]:
            param.requires_grad_(False)
        return model


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else little_endian(part).tobytes())
    return h.hexdigest()


class BertSmallWorkload(Workload):
    name = "bert_small"
    description = ("BERT (L2/H64) on AgreeLang-2: masked-LM pre-training to 33%, then "
                   "agreement-acceptability fine-tuning to 85%")

    def phases(self) -> list[Phase]:
        return [Pretrain(), Finetune()]


workload = BertSmallWorkload()
