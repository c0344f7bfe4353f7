"""AgreeLang: a procedural language with topics and long-range agreement, for masked-LM training.

The language is an explicit hidden Markov source. Its hidden state is
(grammar role, subject features, current-noun features) plus a per-document topic; each state has
one emission distribution over the vocabulary. Features are number (singular/plural) x noun class
(3 classes), six values, and agreement is carried by frequent suffix tokens:

    SUBJ_DET [SUBJ_ADJ] SUBJ_NOUN SUBJ_SUFFIX (PREP PP_DET [PP_ADJ] PP_NOUN PP_SUFFIX)*
    [ADVERB] VERB VERB_SUFFIX [OBJ_DET [OBJ_ADJ] OBJ_NOUN OBJ_SUFFIX] [COMMA PRONOUN] PERIOD

The subject determiner (partly), the subject noun suffix, the verb suffix and the sentence-final
pronoun agree with the subject's features. Prepositional phrases between subject and verb draw
their own features and use the same noun-suffix tokens: they are agreement attractors, so the verb
suffix can only be predicted well by finding the subject across them. Adjective, noun and verb
lemmas follow a Zipf profile permuted per topic, so content words reveal the document's topic.

Sentences run on until the document holds ``seq_len - 1`` tokens (the last one is cut), and
``[CLS]`` is prepended. Sampling is vectorised over documents with inverse-CDF lookups, and every
draw comes from a local stream, so a (language seed, sample seed) pair fixes the documents.

**The same bytes on every machine.** Draws come from ``greenperf.bitexact.Stream`` (raw
bit-generator words), the Zipf weights from its series ``power``, normalising sums from
``math.fsum`` and cumulative sums in one fixed order, so the probability tables, and with them
every token, are identical whatever the CPU's instruction set or the numpy version.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np
from greenperf import bitexact
from greenperf.errors import GreenperfError

# Keys of the random streams (with the seeds): the language's tables, and document samples.
LANGUAGE_STREAM = 0xA62EE
SAMPLE_STREAM = 0xD0C5

# Special tokens come first in every vocabulary of this workload (procedural or plain text),
# so a model and the masking code can rely on the same ids.
PAD_ID, CLS_ID, SEP_ID, MASK_ID = 0, 1, 2, 3
SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
SPECIAL_IDS: tuple[int, ...] = (PAD_ID, CLS_ID, SEP_ID, MASK_ID)
SEQ_LEN = 64

N_FEATURES = 6  # number (2) x noun class (3); feature index = number * 3 + noun_class
N_CLASSES = 3
NUMBER_NAMES = ("sg", "pl")

N_DETERMINERS_PER_GROUP = 4  # neutral, singular-only, plural-only
N_PREPOSITIONS = 20
N_ADVERBS = 40
N_ADJECTIVES = 250
N_NOUNS_PER_CLASS = 200
N_VERBS = 300
# A determiner carries number only part of the time, so it is a weak cue to the subject.
NUMBER_MARKED_DETERMINER_PROB = 0.5


class Role(IntEnum):
    """Grammar role of a position (the grammar part of the hidden state)."""

    SUBJ_DET = 0
    SUBJ_ADJ = 1
    SUBJ_NOUN = 2
    SUBJ_SUFFIX = 3
    PREP = 4
    PP_DET = 5
    PP_ADJ = 6
    PP_NOUN = 7
    PP_SUFFIX = 8
    ADVERB = 9
    VERB = 10
    VERB_SUFFIX = 11
    OBJ_DET = 12
    OBJ_ADJ = 13
    OBJ_NOUN = 14
    OBJ_SUFFIX = 15
    COMMA = 16
    PRONOUN = 17
    PERIOD = 18


N_ROLES = len(Role)
NO_ROLE = -1  # [CLS] and padding positions

# Role transitions. Attractor chains are geometric: after the subject noun a PP follows with
# probability 0.55, after each PP another one with probability 0.4.
_TRANSITIONS: dict[Role, dict[Role, float]] = {
    Role.SUBJ_DET: {Role.SUBJ_ADJ: 0.3, Role.SUBJ_NOUN: 0.7},
    Role.SUBJ_ADJ: {Role.SUBJ_NOUN: 1.0},
    Role.SUBJ_NOUN: {Role.SUBJ_SUFFIX: 1.0},
    Role.SUBJ_SUFFIX: {Role.PREP: 0.55, Role.ADVERB: 0.1, Role.VERB: 0.35},
    Role.PREP: {Role.PP_DET: 1.0},
    Role.PP_DET: {Role.PP_ADJ: 0.25, Role.PP_NOUN: 0.75},
    Role.PP_ADJ: {Role.PP_NOUN: 1.0},
    Role.PP_NOUN: {Role.PP_SUFFIX: 1.0},
    Role.PP_SUFFIX: {Role.PREP: 0.4, Role.ADVERB: 0.1, Role.VERB: 0.5},
    Role.ADVERB: {Role.VERB: 1.0},
    Role.VERB: {Role.VERB_SUFFIX: 1.0},
    Role.VERB_SUFFIX: {Role.OBJ_DET: 0.6, Role.COMMA: 0.2, Role.PERIOD: 0.2},
    Role.OBJ_DET: {Role.OBJ_ADJ: 0.3, Role.OBJ_NOUN: 0.7},
    Role.OBJ_ADJ: {Role.OBJ_NOUN: 1.0},
    Role.OBJ_NOUN: {Role.OBJ_SUFFIX: 1.0},
    Role.OBJ_SUFFIX: {Role.COMMA: 0.4, Role.PERIOD: 0.6},
    Role.COMMA: {Role.PRONOUN: 1.0},
    Role.PRONOUN: {Role.PERIOD: 1.0},
    Role.PERIOD: {Role.SUBJ_DET: 1.0},
}
# Roles at which fresh noun features are drawn (the subject's are drawn at SUBJ_DET).
NEW_NOUN_ROLES = (Role.PREP, Role.OBJ_DET)


def feature_name(feature: int) -> str:
    """Readable name of a feature index, e.g. ``sg.1``."""
    return f"{NUMBER_NAMES[feature // N_CLASSES]}.{feature % N_CLASSES}"


@dataclass(frozen=True)
class Documents:
    """A batch of token documents; the annotation arrays exist only for procedural corpora.

    ``tokens`` is int64 [n, T] with ``[CLS]`` in column 0 (padding is ``[PAD]``).
    ``topic`` is int64 [n]. ``role``, ``subject`` and ``feature`` are int8 [n, T]: the grammar
    role of each position, the features of its sentence's subject, and the features of the noun
    phrase it belongs to; -1 where they do not apply ([CLS], padding, or no noun phrase).
    """

    tokens: np.ndarray
    topic: np.ndarray | None = None
    role: np.ndarray | None = None
    subject: np.ndarray | None = None
    feature: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.tokens.shape[1])

    def take(self, index: np.ndarray | slice) -> Documents:
        """The documents selected by ``index`` (rows), annotations included."""
        return Documents(
            **{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[index])
               for f in fields(self)}
        )

    def checksum(self) -> str:
        """sha256 of the tokens as C-ordered little-endian int64 bytes."""
        return tokens_checksum(self.tokens)


def tokens_checksum(tokens: np.ndarray) -> str:
    """sha256 hex digest of a token array as C-ordered little-endian int64 bytes."""
    data = np.ascontiguousarray(tokens, dtype="<i8")
    return hashlib.sha256(data.tobytes()).hexdigest()


def _zipf_profile(size: int, exponent: float) -> np.ndarray:
    weights = [bitexact.power(rank, -exponent) for rank in range(1, size + 1)]
    total = math.fsum(weights)
    return np.array([weight / total for weight in weights])


class _InverseCdf:
    """Vectorised sampling from many categorical rows at once.

    All rows are stored as one flat, non-decreasing array ``row + cdf(row)`` so that one
    ``searchsorted`` call serves a whole batch whose members each use a different row.
    """

    def __init__(self, probs: np.ndarray) -> None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or (probs < 0).any() or (probs.sum(axis=1) <= 0).any():
            raise ValueError("probs must be a 2-D array of non-negative rows with positive mass")
        self.n_rows, self.width = probs.shape
        cdf = bitexact.cumsum_rows(probs)
        cdf /= cdf[:, -1:]
        self.last_nonzero = np.array([np.flatnonzero(row)[-1] for row in probs], dtype=np.int64)
        for r, last in enumerate(self.last_nonzero):
            cdf[r, last:] = 1.0  # exact top so rounding can never pick a zero-probability tail
        self._flat = (cdf + np.arange(self.n_rows)[:, None]).ravel()

    def sample(self, rows: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """One draw per element: a column sampled from ``probs[rows[i]]`` with ``uniforms[i]``."""
        flat_index = np.searchsorted(self._flat, rows + uniforms, side="right")
        # rows + u can round up to rows + 1 when u is within an ulp of 1; clamp into the row.
        return np.minimum(flat_index - rows * self.width, self.last_nonzero[rows])


@dataclass(frozen=True)
class VocabLayout:
    """Where each word class sits in the AgreeLang vocabulary (the same for every seed).

    Feature-indexed arrays (``pronoun_ids``, ``noun_suffix_ids``, ``verb_suffix_ids``) map a
    feature index to its token, so agreement can be checked or corrupted without string parsing.
    """

    words: tuple[str, ...]
    comma_id: int
    period_id: int
    determiner_ids: np.ndarray  # [3 groups: any, sg, pl, 4]
    pronoun_ids: np.ndarray  # [6] by feature
    noun_suffix_ids: np.ndarray  # [6] by feature
    verb_suffix_ids: np.ndarray  # [6] by feature
    preposition_ids: np.ndarray
    adverb_ids: np.ndarray
    adjective_ids: np.ndarray
    noun_ids: np.ndarray  # [3 classes, 200]
    verb_ids: np.ndarray

    @staticmethod
    def build() -> VocabLayout:
        words: list[str] = list(SPECIAL_TOKENS)

        def add(new_words: list[str]) -> np.ndarray:
            start = len(words)
            words.extend(new_words)
            ids = np.arange(start, len(words), dtype=np.int64)
            ids.flags.writeable = False  # LAYOUT is shared module state
            return ids

        comma_id = int(add([","])[0])
        period_id = int(add(["."])[0])
        groups = ("any", "sg", "pl")
        determiner_ids = add(
            [f"det.{g}.{i}" for g in groups for i in range(N_DETERMINERS_PER_GROUP)]
        ).reshape(len(groups), N_DETERMINERS_PER_GROUP)
        feats = range(N_FEATURES)
        pronoun_ids = add([f"pron.{feature_name(f)}" for f in feats])
        noun_suffix_ids = add([f"##n.{feature_name(f)}" for f in feats])
        verb_suffix_ids = add([f"##v.{feature_name(f)}" for f in feats])
        preposition_ids = add([f"prep{i:02d}" for i in range(N_PREPOSITIONS)])
        adverb_ids = add([f"adv{i:02d}" for i in range(N_ADVERBS)])
        adjective_ids = add([f"adj{i:03d}" for i in range(N_ADJECTIVES)])
        noun_ids = add(
            [f"noun{c}.{i:03d}" for c in range(N_CLASSES) for i in range(N_NOUNS_PER_CLASS)]
        ).reshape(N_CLASSES, N_NOUNS_PER_CLASS)
        verb_ids = add([f"verb{i:03d}" for i in range(N_VERBS)])
        return VocabLayout(
            words=tuple(words), comma_id=comma_id, period_id=period_id,
            determiner_ids=determiner_ids, pronoun_ids=pronoun_ids,
            noun_suffix_ids=noun_suffix_ids, verb_suffix_ids=verb_suffix_ids,
            preposition_ids=preposition_ids, adverb_ids=adverb_ids, adjective_ids=adjective_ids,
            noun_ids=noun_ids, verb_ids=verb_ids,
        )


LAYOUT = VocabLayout.build()


class AgreeLang:
    """The AgreeLang language: vocabulary, hidden Markov source and sampler.

    ``seed`` fixes the language itself (the per-topic lemma permutations); ``sample(n, seed)``
    fixes a set of documents. Vocabulary: 4 specials + 1,242 words = 1,246 tokens.
    """

    def __init__(self, seed: int = 0, topics: int = 8, zipf: float = 1.1) -> None:
        if topics < 1:
            raise GreenperfError("AgreeLang topics", f"must be at least 1, got {topics}")
        if not zipf > 0:
            raise GreenperfError("AgreeLang zipf", f"must be positive, got {zipf}")
        if seed < 0:
            raise GreenperfError("AgreeLang seed", f"must be non-negative, got {seed}")
        self.seed = int(seed)
        self.topics = int(topics)
        self.zipf = float(zipf)
        self.layout = LAYOUT
        self.vocab: list[str] = list(LAYOUT.words)
        self.special_ids: tuple[int, ...] = SPECIAL_IDS
        self.pad_id, self.cls_id, self.sep_id, self.mask_id = SPECIAL_IDS
        self._build_emissions(bitexact.Stream(self.seed, LANGUAGE_STREAM))
        self._build_transitions()

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # -- the hidden Markov source -------------------------------------------------------------

    def _build_emissions(self, stream: bitexact.Stream) -> None:
        """One row per distinct emission distribution, and the lookup (role, subj, feat, topic)."""
        vocab_size = len(self.vocab)
        lay = self.layout
        rows: list[np.ndarray] = []

        def new_row(ids: np.ndarray, probs: np.ndarray) -> int:
            row = np.zeros(vocab_size)
            row[ids] = probs
            rows.append(row)
            return len(rows) - 1

        def one_hot(token_id: int) -> int:
            return new_row(np.array([token_id]), np.array([1.0]))

        det_profile = _zipf_profile(N_DETERMINERS_PER_GROUP, 1.0)
        det_rows = []
        for number in range(2):
            ids = np.concatenate([lay.determiner_ids[0], lay.determiner_ids[1 + number]])
            marked = NUMBER_MARKED_DETERMINER_PROB
            det_rows.append(
                new_row(ids, np.concatenate([(1 - marked) * det_profile, marked * det_profile]))
            )
        prep_row = new_row(lay.preposition_ids, _zipf_profile(N_PREPOSITIONS, 1.0))
        adverb_row = new_row(lay.adverb_ids, _zipf_profile(N_ADVERBS, 1.0))
        comma_row, period_row = one_hot(lay.comma_id), one_hot(lay.period_id)
        noun_suffix_rows = [one_hot(int(t)) for t in lay.noun_suffix_ids]
        verb_suffix_rows = [one_hot(int(t)) for t in lay.verb_suffix_ids]
        pronoun_rows = [one_hot(int(t)) for t in lay.pronoun_ids]

        # Each topic ranks the lemmas of each open class by its own permutation of one profile.
        def topic_rows(ids: np.ndarray) -> list[int]:
            profile = _zipf_profile(len(ids), self.zipf)
            return [new_row(ids[stream.permutation(len(ids))], profile)
                    for _ in range(self.topics)]

        adjective_rows = topic_rows(lay.adjective_ids)
        noun_rows = [topic_rows(lay.noun_ids[c]) for c in range(N_CLASSES)]
        verb_rows = topic_rows(lay.verb_ids)

        lookup = np.full((N_ROLES, N_FEATURES, N_FEATURES, self.topics), -1, dtype=np.int64)
        for subj in range(N_FEATURES):
            for feat in range(N_FEATURES):
                for topic in range(self.topics):
                    number, noun_class = divmod(feat, N_CLASSES)
                    per_role = {
                        Role.SUBJ_DET: det_rows[number],
                        Role.PP_DET: det_rows[number],
                        Role.OBJ_DET: det_rows[number],
                        Role.SUBJ_ADJ: adjective_rows[topic],
                        Role.PP_ADJ: adjective_rows[topic],
                        Role.OBJ_ADJ: adjective_rows[topic],
                        Role.SUBJ_NOUN: noun_rows[noun_class][topic],
                        Role.PP_NOUN: noun_rows[noun_class][topic],
                        Role.OBJ_NOUN: noun_rows[noun_class][topic],
                        Role.SUBJ_SUFFIX: noun_suffix_rows[feat],
                        Role.PP_SUFFIX: noun_suffix_rows[feat],
                        Role.OBJ_SUFFIX: noun_suffix_rows[feat],
                        Role.PREP: prep_row,
                        Role.ADVERB: adverb_row,
                        Role.VERB: verb_rows[topic],
                        Role.VERB_SUFFIX: verb_suffix_rows[subj],
                        Role.COMMA: comma_row,
                        Role.PRONOUN: pronoun_rows[subj],
                        Role.PERIOD: period_row,
                    }
                    for role, row in per_role.items():
                        lookup[role, subj, feat, topic] = row
        assert (lookup >= 0).all()
        self.emission_probs = np.stack(rows)  # [distinct rows, vocab]
        self.emission_row = lookup
        self._emission_sampler = _InverseCdf(self.emission_probs)

    def _build_transitions(self) -> None:
        trans = np.zeros((N_ROLES, N_ROLES))
        for src, targets in _TRANSITIONS.items():
            for dst, prob in targets.items():
                trans[src, dst] = prob
        assert np.allclose(trans.sum(axis=1), 1.0)
        self.transition_probs = trans
        self._transition_sampler = _InverseCdf(trans)
        self._draws_new_noun = np.zeros(N_ROLES, dtype=bool)
        self._draws_new_noun[list(NEW_NOUN_ROLES)] = True

    def checksum(self) -> str:
        """sha256 identifying the language definition (vocabulary and both probability tables)."""
        digest = hashlib.sha256()
        digest.update("\n".join(self.vocab).encode())
        for table in (self.emission_probs, self.transition_probs):
            digest.update(np.ascontiguousarray(table, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(self.emission_row, dtype="<i8").tobytes())
        return digest.hexdigest()

    # -- sampling -----------------------------------------------------------------------------

    def sample(self, n_docs: int, seed: int, seq_len: int = SEQ_LEN) -> Documents:
        """``n_docs`` documents of ``seq_len`` tokens (``[CLS]`` + ``seq_len - 1`` words)."""
        if n_docs < 1:
            raise GreenperfError("AgreeLang.sample n_docs", f"must be at least 1, got {n_docs}")
        if seq_len < 2:
            raise GreenperfError("AgreeLang.sample seq_len", f"must be at least 2, got {seq_len}")
        if seed < 0:
            raise GreenperfError("AgreeLang.sample seed", f"must be non-negative, got {seed}")
        stream = bitexact.Stream(self.seed, int(seed), SAMPLE_STREAM)
        topic = stream.below(self.topics, n_docs)
        tokens = np.empty((n_docs, seq_len), dtype=np.int64)
        roles = np.full((n_docs, seq_len), NO_ROLE, dtype=np.int8)
        subjects = np.full((n_docs, seq_len), -1, dtype=np.int8)
        features = np.full((n_docs, seq_len), -1, dtype=np.int8)
        tokens[:, 0] = CLS_ID

        role = np.full(n_docs, int(Role.SUBJ_DET), dtype=np.int64)
        subj = stream.below(N_FEATURES, n_docs)
        feat = subj.copy()
        for pos in range(1, seq_len):
            rows = self.emission_row[role, subj, feat, topic]
            tokens[:, pos] = self._emission_sampler.sample(rows, stream.uniform(n_docs))
            roles[:, pos] = role
            subjects[:, pos] = subj
            features[:, pos] = feat

            role = self._transition_sampler.sample(role, stream.uniform(n_docs))
            fresh = stream.below(N_FEATURES, n_docs)
            new_sentence = role == Role.SUBJ_DET
            subj = np.where(new_sentence, fresh, subj)
            feat = np.where(new_sentence | self._draws_new_noun[role], fresh, feat)

        # Only noun phrases carry noun features; elsewhere -1 keeps the annotation honest.
        in_noun_phrase = np.isin(
            roles,
            [r for r in Role if r.name.startswith(("SUBJ_", "PP_", "OBJ_")) or r == Role.PREP],
        )
        features[~in_noun_phrase] = -1
        return Documents(tokens=tokens, topic=topic.astype(np.int64), role=roles,
                         subject=subjects, feature=features)

    def decode(self, tokens: np.ndarray) -> str:
        """Readable text of one document (suffix pieces glued to their lemma)."""
        text = " ".join(self.vocab[int(t)] for t in tokens if int(t) != PAD_ID)
        return text.replace(" ##", "##")
