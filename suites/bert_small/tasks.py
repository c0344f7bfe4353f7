"""Tasks built on token documents: masked-LM masking and label-free classification tasks.

* ``mask_for_mlm``: pure ``[MASK]`` replacement of an exact share of each document's ordinary
  tokens (no 80/10/10), never touching special tokens.
* ``make_classification``: agreement acceptability of single AgreeLang sentences (like CoLA).
  Half the sentences get their verb suffix (and pronoun) changed to features that disagree
  with the subject, which sits behind one or more attractor phrases. Token counts keep their
  distribution, so linear bag-of-words models cannot tell the classes apart; finding the
  subject can.
* ``make_topic_classification``: the document topic (solvable from word counts; a sanity task).
* ``make_swap_detection``: for any token sequences, e.g. real text: half the documents get two
  adjacent, different ordinary tokens swapped.

Labels: ``ACCEPTABLE`` (1) for untouched documents, ``CORRUPTED`` (0) for changed ones.

Every draw comes from ``greenperf.bitexact.Stream``, so a task built from the same documents and
seed is the same bytes on every machine.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from greenperf.bitexact import Stream
from greenperf.errors import GreenperfError
from greenperf.suites.bert_small.corpus import (
    LAYOUT,
    MASK_ID,
    N_FEATURES,
    NO_ROLE,
    PAD_ID,
    SPECIAL_IDS,
    Documents,
    Role,
)

TRAIN_MASK_RATE = 0.30
EVAL_MASK_RATE = 0.15
EVAL_MASK_SEED = 12345

ACCEPTABLE = 1
CORRUPTED = 0

# Float slack so that e.g. 0.3 * 10 = 3.0000000000000004 masks 3 tokens, not 4.
_RATE_SLACK = 1e-9


class MaskedTokens(NamedTuple):
    """MLM inputs. ``target_positions`` is bool [n, T]; ``target_ids`` lists the original tokens
    at those positions in row-major order (the order of ``hidden[target_positions]`` in torch)."""

    inputs: np.ndarray
    target_positions: np.ndarray
    target_ids: np.ndarray


class Classification(NamedTuple):
    tokens: np.ndarray  # int64 [n, T]
    labels: np.ndarray  # int64 [n]


SeedLike = int | Stream
# Stream keys (with the seed) of the tasks' draws.
MASK_STREAM, AGREEMENT_STREAM, SWAP_STREAM = 0x3A5C, 0xC01A, 0x5A9


def _stream(seed: SeedLike, key: int) -> Stream:
    return seed if isinstance(seed, Stream) else Stream(int(seed), key)


def mask_for_mlm(
    tokens: np.ndarray,
    rate: float,
    seed: SeedLike,
    mask_id: int = MASK_ID,
    special_ids: tuple[int, ...] = SPECIAL_IDS,
) -> MaskedTokens:
    """Replace ``ceil(rate * m)`` randomly chosen ordinary tokens of each row by ``mask_id``.

    ``m`` is the row's number of non-special tokens, so a full AgreeLang document (63 words)
    gets 10 masks at 15% and 19 at 30%. Rows without ordinary tokens get none.
    """
    if not 0.0 < rate <= 1.0:
        raise GreenperfError("mask rate", f"must be in (0, 1], got {rate}")
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 2:
        raise GreenperfError("mask_for_mlm tokens", f"must be 2-D [n, T], got {tokens.shape}")
    maskable = ~np.isin(tokens, np.asarray(special_ids, dtype=np.int64))
    n_maskable = maskable.sum(axis=1)
    n_masked = np.minimum(np.ceil(rate * n_maskable - _RATE_SLACK).astype(np.int64), n_maskable)
    keys = _stream(seed, MASK_STREAM).uniform(tokens.shape)
    keys[~maskable] = 2.0  # after every ordinary position
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    positions = rank < n_masked[:, None]
    inputs = np.where(positions, mask_id, tokens)
    return MaskedTokens(inputs, positions, tokens[positions])


def eval_mask(tokens: np.ndarray, mask_id: int = MASK_ID,
              special_ids: tuple[int, ...] = SPECIAL_IDS) -> MaskedTokens:
    """The fixed evaluation mask: 15% of each document, mask seed 12345."""
    return mask_for_mlm(tokens, EVAL_MASK_RATE, EVAL_MASK_SEED, mask_id, special_ids)


def _pick_corrupted_documents(
    eligible: np.ndarray, stream: Stream
) -> np.ndarray:
    """Bool [n]: half the documents (rounded down) chosen among the eligible ones."""
    n_docs = eligible.shape[0]
    candidates = np.flatnonzero(eligible)
    n_pick = min(n_docs // 2, candidates.size)
    chosen = np.zeros(n_docs, dtype=bool)
    chosen[candidates[stream.permutation(candidates.size)][:n_pick]] = True
    return chosen


def _pick_one_site(sites: np.ndarray, stream: Stream) -> np.ndarray:
    """One True column per row of the bool [n, T] ``sites``, uniformly (each row must have one)."""
    keys = np.where(sites, stream.uniform(sites.shape), -1.0)
    return keys.argmax(axis=1)


def attractor_counts(role: np.ndarray) -> np.ndarray:
    """Int [n, T]: the number of prepositional phrases seen so far in each position's sentence."""
    positions = np.arange(role.shape[1])
    sentence_start = np.maximum.accumulate(
        np.where(role == Role.SUBJ_DET, positions, 0), axis=1
    )
    preps_so_far = np.cumsum(role == Role.PREP, axis=1)
    return preps_so_far - np.take_along_axis(preps_so_far, sentence_start, axis=1)


def sentence_index(role: np.ndarray) -> np.ndarray:
    """Int [n, T]: 1-based sentence number of each position within its document (0 at [CLS])."""
    return np.cumsum(role == Role.SUBJ_DET, axis=1)


def _per_sentence_any(flags: np.ndarray, sentence: np.ndarray) -> np.ndarray:
    """Bool [n, max sentences + 1]: whether any position of each sentence has ``flags`` set."""
    n_docs = flags.shape[0]
    out = np.zeros((n_docs, int(sentence.max()) + 1), dtype=bool)
    rows = np.broadcast_to(np.arange(n_docs)[:, None], flags.shape)
    out[rows[flags], sentence[flags]] = True
    return out


def _gather_sentences(array: np.ndarray, keep: np.ndarray, fill: int) -> np.ndarray:
    """Column 0 unchanged, then each row's ``keep`` positions moved to the front, then ``fill``."""
    order = np.argsort(~keep[:, 1:], axis=1, kind="stable") + 1
    moved = np.take_along_axis(array, order, axis=1)
    moved[~np.take_along_axis(keep, order, axis=1)] = fill
    return np.concatenate([array[:, :1], moved], axis=1)


def make_classification(docs: Documents, seed: int, min_attractors: int = 1) -> Classification:
    """Agreement acceptability on single sentences (like CoLA), from AgreeLang documents.

    Each example is ``[CLS]`` + one complete sentence of a document (chosen at random among
    those whose verb follows at least ``min_attractors`` prepositional phrases) + ``[PAD]``.
    Documents without such a sentence (about 1.3% at ``min_attractors=1``) are skipped, so the
    result may have fewer rows than ``docs``. Half the examples become unacceptable: their verb
    suffix, and their sentence-final pronoun if any, get the same features, drawn uniformly
    from the five that differ from the subject's. Verb and pronoun therefore agree with each
    other in both classes, and a changed suffix matches the nearest noun no more often than a
    correct one does: the subject must be found across the attractors.
    """
    if docs.role is None or docs.subject is None:
        raise GreenperfError("agreement task", "needs AgreeLang documents with role annotations")
    if min_attractors < 0:
        raise GreenperfError("min_attractors", f"must be non-negative, got {min_attractors}")
    stream = Stream(int(seed), AGREEMENT_STREAM)
    role = docs.role
    sentence = sentence_index(role)
    long_verbs = (role == Role.VERB_SUFFIX) & (attractor_counts(role) >= min_attractors)
    eligible = _per_sentence_any(long_verbs, sentence) & _per_sentence_any(
        role == Role.PERIOD, sentence)
    eligible[:, 0] = False
    used = np.flatnonzero(eligible.any(axis=1))
    chosen = _pick_one_site(eligible[used], stream)
    keep = sentence[used] == chosen[:, None]
    keep[:, 0] = True  # [CLS]
    tokens = _gather_sentences(docs.tokens[used], keep, PAD_ID)
    roles = _gather_sentences(role[used], keep, NO_ROLE)
    subject = _gather_sentences(docs.subject[used], keep, -1).astype(np.int64)

    corrupted = _pick_corrupted_documents(np.ones(used.size, dtype=bool), stream)
    wrong = (subject[:, 1] + stream.integers(1, N_FEATURES, used.size)) % N_FEATURES
    wrong = np.broadcast_to(wrong[:, None], tokens.shape)
    changed = corrupted[:, None] & (roles == Role.VERB_SUFFIX)
    tokens[changed] = LAYOUT.verb_suffix_ids[wrong[changed]]
    changed = corrupted[:, None] & (roles == Role.PRONOUN)
    tokens[changed] = LAYOUT.pronoun_ids[wrong[changed]]
    labels = np.where(corrupted, CORRUPTED, ACCEPTABLE).astype(np.int64)
    return Classification(tokens, labels)


def make_topic_classification(docs: Documents) -> Classification:
    """Topic of each AgreeLang document (K classes); word counts alone nearly solve it."""
    if docs.topic is None:
        raise GreenperfError("topic task", "needs AgreeLang documents with topic annotations")
    return Classification(docs.tokens.copy(), docs.topic.astype(np.int64))


def make_swap_detection(
    tokens: np.ndarray, seed: int, special_ids: tuple[int, ...] = SPECIAL_IDS
) -> Classification:
    """Word-order task for any token sequences: half the rows get one adjacent pair swapped.

    Only pairs of two different ordinary tokens are swapped, so every corrupted row really
    changes; rows without such a pair stay acceptable. Word counts are unchanged by a swap.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    stream = Stream(int(seed), SWAP_STREAM)
    ordinary = ~np.isin(tokens, np.asarray(special_ids, dtype=np.int64))
    pair_starts = ordinary[:, :-1] & ordinary[:, 1:] & (tokens[:, :-1] != tokens[:, 1:])
    corrupted = _pick_corrupted_documents(pair_starts.any(axis=1), stream)
    rows = np.flatnonzero(corrupted)
    cols = _pick_one_site(pair_starts[rows], stream)
    swapped = tokens.copy()
    swapped[rows, cols], swapped[rows, cols + 1] = tokens[rows, cols + 1], tokens[rows, cols]
    labels = np.where(corrupted, CORRUPTED, ACCEPTABLE).astype(np.int64)
    return Classification(swapped, labels)
