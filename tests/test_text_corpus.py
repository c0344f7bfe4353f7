"""Plain-text corpus loader and tokenizer, on small corpora written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from greenperf.errors import GreenperfError
from greenperf.suites.bert_small.corpus import CLS_ID, MASK_ID, PAD_ID
from greenperf.suites.bert_small.tasks import CORRUPTED, eval_mask, make_swap_detection
from greenperf.suites.bert_small.text_corpus import (
    TEXT_SPECIAL_IDS,
    TEXT_SPECIAL_TOKENS,
    UNK_ID,
    Tokenizer,
    load_text_corpus,
    read_documents,
)

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "ran", "to", "a", "big", "red", "house"]


def write_corpus(folder: Path, n_lines: int, seed: int = 0, files: int = 2) -> list[str]:
    """``files`` .txt files of random sentences; returns all lines in file order."""
    rng = np.random.default_rng(seed)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(3, 12))) + f" n{i}."
             for i in range(n_lines)]
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        chunk = lines[k::files]
        (folder / f"part{k}.txt").write_text("\n".join(chunk) + "\n", encoding="utf-8")
    return lines


def test_tokenizer_vocabulary_is_frequency_ranked_with_alphabetical_ties() -> None:
    tokenizer = Tokenizer.fit(["b a c", "a b", "a, d"], vocab_size=8)
    assert tokenizer.vocab == [*TEXT_SPECIAL_TOKENS, "a", "b", ","]
    assert tokenizer.vocab[UNK_ID] == "[UNK]" and TEXT_SPECIAL_IDS == (0, 1, 2, 3, 4)
    row = tokenizer.encode("A b zebra!", seq_len=6)
    assert row.tolist() == [CLS_ID, 5, 6, UNK_ID, UNK_ID, PAD_ID]
    assert tokenizer.encode("a " * 20, seq_len=4).tolist() == [CLS_ID, 5, 5, 5]
    assert tokenizer.decode(row) == "[CLS] a b [UNK] [UNK]"


def test_tokenizer_rejects_a_vocabulary_without_room_for_words() -> None:
    with pytest.raises(GreenperfError, match="vocab_size"):
        Tokenizer.fit(["a b"], vocab_size=5)


def test_load_splits_deterministically_and_builds_documents(tmp_path: Path) -> None:
    lines = write_corpus(tmp_path / "corpus", 400)
    corpus = load_text_corpus(tmp_path / "corpus", vocab_size=30, eval_fraction=0.2)
    assert corpus.files == ("part0.txt", "part1.txt")
    assert len(corpus.train) + len(corpus.eval) == 400
    assert 40 <= len(corpus.eval) <= 120
    for docs in (corpus.train, corpus.eval):
        assert docs.tokens.dtype == np.int64 and docs.tokens.shape[1] == 64
        assert (docs.tokens[:, 0] == CLS_ID).all()
        assert docs.tokens.max() < 30
    # The 12 words and "." occur in every few lines; each "n<i>" label once (ties: alphabetical).
    assert len(corpus.vocab) == 30 and set(corpus.vocab[5:18]) == {*WORDS, "."}
    assert corpus.vocab[18:] == sorted(corpus.vocab[18:])
    # The same lines in one file, in another order, give the same split and vocabulary.
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    (shuffled / "all.txt").write_text("\n".join(reversed(lines)), encoding="utf-8")
    again = load_text_corpus(shuffled, vocab_size=30, eval_fraction=0.2)
    assert again.vocab == corpus.vocab
    assert {corpus.tokenizer.decode(r) for r in corpus.eval.tokens} == {
        again.tokenizer.decode(r) for r in again.eval.tokens}
    assert again.source_checksum != corpus.source_checksum


def test_train_and_eval_never_share_a_line(tmp_path: Path) -> None:
    lines = write_corpus(tmp_path, 100)
    (tmp_path / "dupes.txt").write_text("\n".join(lines[:50]), encoding="utf-8")
    corpus = load_text_corpus(tmp_path, eval_fraction=0.3)
    train = {corpus.tokenizer.decode(r) for r in corpus.train.tokens}
    evaluation = {corpus.tokenizer.decode(r) for r in corpus.eval.tokens}
    assert train and evaluation and not train & evaluation
    assert len(corpus.train) + len(corpus.eval) == 150


def test_long_lines_are_truncated_blank_lines_skipped_and_bom_ignored(tmp_path: Path) -> None:
    long_line = " ".join(["cat"] * 100)
    data = "\ufeff" + "\n".join([long_line, "", "   ", "dog sat"] * 20) + "\r\n"
    (tmp_path / "a.txt").write_text(data, encoding="utf-8")
    documents, files, _ = read_documents(tmp_path)
    assert len(documents) == 40 and documents[0] == long_line and files[0].name == "a.txt"
    corpus = load_text_corpus(tmp_path, seq_len=16, eval_fraction=0.5)
    assert corpus.train.tokens.shape[1] == corpus.eval.tokens.shape[1] == 16
    all_rows = np.concatenate([corpus.train.tokens, corpus.eval.tokens])
    assert {int((r != PAD_ID).sum()) for r in all_rows} == {16, 3}


def test_nested_folders_are_read_in_sorted_path_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("second line\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first line\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored\n", encoding="utf-8")
    documents, files, _ = read_documents(tmp_path)
    assert documents == ["first line", "second line"]
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.txt", "b/x.txt"]


def test_masking_and_swap_task_work_on_padded_text(tmp_path: Path) -> None:
    write_corpus(tmp_path, 300)
    corpus = load_text_corpus(tmp_path, eval_fraction=0.2)
    tokens = corpus.train.tokens
    masked = eval_mask(tokens, special_ids=corpus.special_ids)
    ordinary = ~np.isin(tokens, corpus.special_ids)
    assert not masked.target_positions[~ordinary].any()
    expected = np.ceil(0.15 * ordinary.sum(axis=1) - 1e-9)
    assert (masked.target_positions.sum(axis=1) == expected).all()
    assert (masked.inputs[masked.target_positions] == MASK_ID).all()
    task = make_swap_detection(tokens, seed=0, special_ids=corpus.special_ids)
    assert np.sum(task.labels == CORRUPTED) == len(tokens) // 2
    assert (task.tokens[tokens == PAD_ID] == PAD_ID).all()


# -- errors -----------------------------------------------------------------------------------


def test_missing_folder_and_folder_without_txt_files(tmp_path: Path) -> None:
    with pytest.raises(GreenperfError, match="not a directory") as err:
        load_text_corpus(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)
    (tmp_path / "readme.md").write_text("hello\n", encoding="utf-8")
    with pytest.raises(GreenperfError, match="no .txt files") as err:
        load_text_corpus(tmp_path)
    assert err.value.where == str(tmp_path)


def test_undecodable_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    write_corpus(tmp_path, 50)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nanother fine line\nbroken \xff byte here\n")
    with pytest.raises(GreenperfError, match="not valid UTF-8") as err:
        load_text_corpus(tmp_path)
    assert err.value.where == f"{bad}:3"
    assert "0xff" in str(err.value) and "column 8" in str(err.value)


def test_empty_and_too_small_corpora_are_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(GreenperfError, match="no non-blank lines"):
        load_text_corpus(empty)
    small = tmp_path / "small"
    write_corpus(small, 3, files=1)
    with pytest.raises(GreenperfError, match="too small to split") as err:
        load_text_corpus(small, eval_fraction=0.01)
    assert err.value.where == str(small)
    with pytest.raises(GreenperfError, match="eval_fraction"):
        load_text_corpus(small, eval_fraction=1.0)
