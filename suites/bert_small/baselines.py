"""Count-based baselines that a trained model must beat for its targets to mean anything.

Masked-LM (scored on the masked positions of an eval ``MaskedTokens``):
* unigram: always the most frequent ordinary token of the training documents;
* left bigram: argmax P(w | left neighbour);
* left+right: argmax P(w | left, right neighbours), backing off to the left bigram, then a right
  bigram, then the unigram when a context is masked or unseen.
Counts come from unmasked training documents; ties go to the smallest token id.

Classification: the majority class, and a softmax regression on bag-of-n-gram counts
(n = 1: bag of words; n = 2: words + adjacent pairs), written in numpy.
"""

from __future__ import annotations

import numpy as np
from greenperf.suites.bert_small.corpus import (
    LAYOUT,
    MASK_ID,
    N_FEATURES,
    N_ROLES,
    NEW_NOUN_ROLES,
    PAD_ID,
    SPECIAL_IDS,
    AgreeLang,
    Role,
)
from greenperf.suites.bert_small.tasks import ACCEPTABLE, CORRUPTED, MaskedTokens


def _ordinary(tokens: np.ndarray, special_ids: tuple[int, ...]) -> np.ndarray:
    return ~np.isin(tokens, np.asarray(special_ids, dtype=np.int64))


def most_frequent_token(train_tokens: np.ndarray,
                        special_ids: tuple[int, ...] = SPECIAL_IDS) -> int:
    """The most frequent non-special token (smallest id on ties)."""
    tokens = np.asarray(train_tokens, dtype=np.int64)
    counts = np.bincount(tokens[_ordinary(tokens, special_ids)])
    return int(counts.argmax())


class _ContextArgmax:
    """For each integer context seen in training, the most frequent following target."""

    def __init__(self, contexts: np.ndarray, targets: np.ndarray, n_targets: int) -> None:
        keys = contexts.astype(np.int64) * n_targets + targets
        unique, counts = np.unique(keys, return_counts=True)
        context, target = unique // n_targets, unique % n_targets
        order = np.lexsort((target, -counts, context))
        context, target = context[order], target[order]
        first = np.r_[True, context[1:] != context[:-1]]
        self.contexts = context[first]
        self.best = target[first]

    def predict(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, best target); ``best`` is meaningless where ``found`` is False."""
        if self.contexts.size == 0:
            return np.zeros(contexts.shape, dtype=bool), np.zeros(contexts.shape, dtype=np.int64)
        index = np.minimum(np.searchsorted(self.contexts, contexts), self.contexts.size - 1)
        return self.contexts[index] == contexts, self.best[index]


def _neighbours(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left and right neighbour of every position; ``[PAD]`` beyond either end."""
    padded = np.pad(tokens, ((0, 0), (1, 1)), constant_values=PAD_ID)
    return padded[:, :-2], padded[:, 2:]


def masked_lm_predictions(
    train_tokens: np.ndarray,
    masked: MaskedTokens,
    special_ids: tuple[int, ...] = SPECIAL_IDS,
    mask_id: int = MASK_ID,
) -> dict[str, np.ndarray]:
    """Predictions of each count baseline at ``masked.target_positions`` (row-major order)."""
    train = np.asarray(train_tokens, dtype=np.int64)
    vocab_size = int(max(train.max(), masked.inputs.max(), masked.target_ids.max())) + 1
    is_target = _ordinary(train, special_ids)
    target = train[is_target]
    left, right = _neighbours(train)
    left, right = left[is_target], right[is_target]
    left_model = _ContextArgmax(left, target, vocab_size)
    right_model = _ContextArgmax(right, target, vocab_size)
    pair_model = _ContextArgmax(left * vocab_size + right, target, vocab_size)

    eval_left, eval_right = _neighbours(masked.inputs)
    eval_left = eval_left[masked.target_positions]
    eval_right = eval_right[masked.target_positions]
    unigram = np.full(eval_left.shape, most_frequent_token(train, special_ids), dtype=np.int64)

    left_found, left_best = left_model.predict(eval_left)
    left_found &= eval_left != mask_id
    bigram = np.where(left_found, left_best, unigram)

    right_found, right_best = right_model.predict(eval_right)
    right_found &= eval_right != mask_id
    pair_found, pair_best = pair_model.predict(eval_left * vocab_size + eval_right)
    pair_found &= (eval_left != mask_id) & (eval_right != mask_id)
    left_right = np.where(right_found, right_best, unigram)
    left_right = np.where(left_found, left_best, left_right)
    left_right = np.where(pair_found, pair_best, left_right)
    return {"unigram": unigram, "left_bigram": bigram, "left_right": left_right}


def masked_lm_baselines(
    train_tokens: np.ndarray,
    masked: MaskedTokens,
    special_ids: tuple[int, ...] = SPECIAL_IDS,
    mask_id: int = MASK_ID,
) -> dict[str, float]:
    """Masked-token accuracy of each count baseline: {'unigram', 'left_bigram', 'left_right'}."""
    predictions = masked_lm_predictions(train_tokens, masked, special_ids, mask_id)
    return {name: float(np.mean(pred == masked.target_ids)) for name, pred in predictions.items()}


def majority_class_accuracy(train_labels: np.ndarray, eval_labels: np.ndarray) -> float:
    """Accuracy of always answering the training set's most frequent label."""
    majority = np.bincount(np.asarray(train_labels, dtype=np.int64)).argmax()
    return float(np.mean(np.asarray(eval_labels) == majority))


class _NgramFeatures:
    """Sparse n-gram count features as an index matrix: row i holds the feature ids of doc i.

    Feature ids: a token's own id for unigrams, then one id per adjacent pair seen in training.
    Unseen pairs and ``[PAD]`` map to ``self.n_features`` (a zero-weight slot).
    """

    def __init__(self, train_tokens: np.ndarray, order: int) -> None:
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        self.order = order
        self.vocab_size = int(train_tokens.max()) + 1
        self.pairs = np.unique(self._pair_keys(train_tokens)) if order == 2 else np.empty(0, int)
        self.n_features = self.vocab_size + self.pairs.size

    def _pair_keys(self, tokens: np.ndarray) -> np.ndarray:
        return tokens[:, :-1] * self.vocab_size + tokens[:, 1:]

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.asarray(tokens, dtype=np.int64)
        unseen = self.n_features
        unigrams = np.where((tokens == PAD_ID) | (tokens >= self.vocab_size), unseen, tokens)
        if self.order == 1:
            return unigrams
        keys = self._pair_keys(np.minimum(tokens, self.vocab_size - 1))
        index = np.minimum(np.searchsorted(self.pairs, keys), self.pairs.size - 1)
        known = (self.pairs[index] == keys) & (tokens[:, :-1] < self.vocab_size)
        known &= (tokens[:, 1:] < self.vocab_size) & (tokens[:, 1:] != PAD_ID)
        pairs = np.where(known, self.vocab_size + index, unseen)
        return np.concatenate([unigrams, pairs], axis=1)


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


def ngram_logistic_accuracy(
    train_tokens: np.ndarray,
    train_labels: np.ndarray,
    eval_tokens: np.ndarray,
    eval_labels: np.ndarray,
    order: int = 1,
    steps: int = 300,
    lr: float = 0.05,
    l2: float = 1e-4,
) -> float:
    """Held-out accuracy of softmax regression on bag-of-n-gram counts (full-batch Adam)."""
    featurise = _NgramFeatures(np.asarray(train_tokens, dtype=np.int64), order)
    x_train, x_eval = featurise(train_tokens), featurise(eval_tokens)
    y_train = np.asarray(train_labels, dtype=np.int64)
    n_classes = int(max(y_train.max(), np.max(eval_labels))) + 1
    n_slots = featurise.n_features + 1  # the last slot is the always-zero "unseen" feature
    weights = np.zeros((n_slots, n_classes))
    bias = np.zeros(n_classes)
    onehot = np.eye(n_classes)[y_train]
    flat = x_train.ravel()
    moments = [np.zeros_like(weights), np.zeros_like(weights), np.zeros(n_classes),
               np.zeros(n_classes)]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        grad_scores = (_softmax(weights[x_train].sum(axis=1) + bias) - onehot) / len(y_train)
        per_entry = np.repeat(grad_scores, x_train.shape[1], axis=0)
        grad_w = np.stack(
            [np.bincount(flat, weights=per_entry[:, c], minlength=n_slots)
             for c in range(n_classes)], axis=1,
        ) + l2 * weights
        grad_w[-1] = 0.0
        for (m, v), grad, param in (((moments[0], moments[1]), grad_w, weights),
                                    ((moments[2], moments[3]), grad_scores.sum(0), bias)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad**2
            param -= lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
    predictions = (weights[x_eval].sum(axis=1) + bias).argmax(axis=1)
    return float(np.mean(predictions == np.asarray(eval_labels)))


# -- the exact ceiling for AgreeLang ----------------------------------------------------------


class _FeatureTransitions:
    """The hidden chain over (role, subject features, noun features), applied to a batch of
    distributions [n, roles, 6, 6] without building the 684 x 684 matrix.

    A role step follows ``transition_probs``; entering SUBJ_DET draws fresh subject features
    (noun features = subject's); entering PREP or OBJ_DET draws fresh noun features.
    """

    def __init__(self, lang: AgreeLang) -> None:
        self.trans = lang.transition_probs
        self.new_sentence = int(Role.SUBJ_DET)
        self.new_noun = [int(r) for r in NEW_NOUN_ROLES]
        self.diagonal = np.eye(N_FEATURES) / N_FEATURES

    def _roles(self, matrix: np.ndarray, dist: np.ndarray) -> np.ndarray:
        n_docs = dist.shape[0]
        flat = np.matmul(matrix, dist.reshape(n_docs, N_ROLES, -1))
        return flat.reshape(dist.shape)

    def forward(self, dist: np.ndarray) -> np.ndarray:
        out = self._roles(self.trans.T, dist)
        q = self.new_sentence
        out[:, q] = out[:, q].sum(axis=(1, 2))[:, None, None] * self.diagonal
        for q in self.new_noun:
            out[:, q] = out[:, q].sum(axis=2, keepdims=True) / N_FEATURES
        return out

    def backward(self, weights: np.ndarray) -> np.ndarray:
        """The adjoint of ``forward``: sum over successors of transition prob x weight."""
        held = weights.copy()
        q = self.new_sentence
        held[:, q] = np.einsum("nss->n", weights[:, q])[:, None, None] / N_FEATURES
        for q in self.new_noun:
            held[:, q] = weights[:, q].sum(axis=2, keepdims=True) / N_FEATURES
        return self._roles(self.trans, held)


def _topic_posterior(chain: _FeatureTransitions, state_row: np.ndarray, lang: AgreeLang,
                     masked: MaskedTokens) -> tuple[np.ndarray, np.ndarray]:
    """For one topic (``state_row``: the emission row of each of the 684 states): the
    log-likelihood of each document's visible tokens [n], and P(token | visible, topic) at each
    masked position [m, V]."""
    emit = lang.emission_probs[state_row]  # [684, V]
    # Many states share an emission row: sum the posterior per row before mixing rows.
    state_to_row = np.zeros((state_row.size, lang.emission_probs.shape[0]))
    state_to_row[np.arange(state_row.size), state_row] = 1.0
    tokens, positions = masked.inputs, masked.target_positions
    n_docs, seq_len = tokens.shape
    state_shape = (N_ROLES, N_FEATURES, N_FEATURES)

    def likelihood(t: int) -> np.ndarray:
        seen = emit[:, tokens[:, t]].T  # [n, 684]
        seen[positions[:, t]] = 1.0  # a masked token is not observed
        return seen.reshape(n_docs, *state_shape)

    # Forward pass; keep P(state_t | tokens before t) for documents masked at t.
    start = np.zeros(state_shape)
    start[Role.SUBJ_DET] = chain.diagonal
    dist = np.broadcast_to(start, (n_docs, *state_shape)).copy()
    log_likelihood = np.zeros(n_docs)
    prior_at_mask: dict[int, np.ndarray] = {}
    for t in range(1, seq_len):
        if t > 1:
            dist = chain.forward(dist)
        prior_at_mask[t] = dist[positions[:, t]]
        dist = dist * likelihood(t)
        scale = dist.sum(axis=(1, 2, 3))
        log_likelihood += np.log(scale)
        dist /= scale[:, None, None, None]

    # Backward pass; beta is P(tokens after t | state_t) up to a per-document scale.
    target_rows, target_cols = np.nonzero(positions)
    posterior = np.zeros((target_rows.size, emit.shape[1]))
    beta = np.ones((n_docs, *state_shape))
    for t in range(seq_len - 1, 0, -1):
        here = np.flatnonzero(target_cols == t)  # ascending rows, as in prior_at_mask[t]
        if here.size:
            gamma = (prior_at_mask[t] * beta[target_rows[here]]).reshape(here.size, -1)
            row_mass = (gamma / gamma.sum(axis=1, keepdims=True)) @ state_to_row
            posterior[here] = row_mass @ lang.emission_probs
        if t > 1:
            beta = chain.backward(beta * likelihood(t))
            beta /= beta.sum(axis=(1, 2, 3), keepdims=True)
    return log_likelihood, posterior


def bayes_masked_lm_posterior(lang: AgreeLang, masked: MaskedTokens) -> np.ndarray:
    """P(token | all unmasked tokens) at each masked position, float [m, V] (row-major order).

    Exact forward-backward over the language's hidden chain for every topic, mixed by each
    topic's posterior. Column 0 must be ``[CLS]`` (outside the chain); masks elsewhere only.
    """
    chain = _FeatureTransitions(lang)
    target_rows, _ = np.nonzero(masked.target_positions)
    log_likelihood = np.zeros((lang.topics, masked.inputs.shape[0]))
    mixed = np.zeros((target_rows.size, lang.vocab_size))
    per_topic = []
    for topic in range(lang.topics):
        state_row = lang.emission_row[..., topic].reshape(-1)
        log_likelihood[topic], posterior = _topic_posterior(chain, state_row, lang, masked)
        per_topic.append(posterior)
    topic_weight = np.exp(log_likelihood - log_likelihood.max(axis=0))
    topic_weight /= topic_weight.sum(axis=0)
    for topic, posterior in enumerate(per_topic):
        mixed += topic_weight[topic, target_rows, None] * posterior
    return mixed


def bayes_masked_lm_accuracy(lang: AgreeLang, masked: MaskedTokens) -> float:
    """Masked-token accuracy of the Bayes-optimal (argmax posterior) predictor: the ceiling."""
    posterior = bayes_masked_lm_posterior(lang, masked)
    return float(np.mean(posterior.argmax(axis=1) == masked.target_ids))


# -- rule-based references for the agreement task ---------------------------------------------


def agreement_rule_accuracies(tokens: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy of three hand-written rules on single-sentence acceptability examples.

    * ``feature_presence`` (order-free, a bag-of-features shortcut): acceptable iff some noun
      suffix in the sentence has the verb suffix's features;
    * ``nearest_noun`` (a local shortcut): acceptable iff the closest noun suffix before the
      verb has its features;
    * ``subject`` (the grammar): acceptable iff the first noun suffix (the subject's) has them.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    vocab_size = int(tokens.max()) + 1
    noun_feature = np.full(max(vocab_size, int(LAYOUT.verb_suffix_ids.max()) + 1), -1)
    verb_feature = noun_feature.copy()
    noun_feature[LAYOUT.noun_suffix_ids] = np.arange(N_FEATURES)
    verb_feature[LAYOUT.verb_suffix_ids] = np.arange(N_FEATURES)
    nouns, verbs = noun_feature[tokens], verb_feature[tokens]
    verb_pos = (verbs >= 0).argmax(axis=1)
    verb = verbs[np.arange(len(tokens)), verb_pos]
    columns = np.arange(tokens.shape[1])
    is_noun = nouns >= 0
    before = is_noun & (columns < verb_pos[:, None])
    nearest = nouns[np.arange(len(tokens)), np.where(before, columns, -1).argmax(axis=1)]
    subject = nouns[np.arange(len(tokens)), is_noun.argmax(axis=1)]
    predictions = {
        "feature_presence": (nouns == verb[:, None]).any(axis=1),
        "nearest_noun": nearest == verb,
        "subject": subject == verb,
    }
    labels = np.asarray(labels)
    return {name: float(np.mean(np.where(ok, ACCEPTABLE, CORRUPTED) == labels))
            for name, ok in predictions.items()}
