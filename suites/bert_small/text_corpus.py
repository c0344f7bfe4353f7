"""A user's plain-text corpus for the BERT-small workload: a folder of UTF-8 ``.txt`` files,
one document per line.

Documents are split into train and eval by a hash of their text, so the split does not depend
on file order and duplicate lines never straddle it. A word-level vocabulary (the most frequent
words of the training split, plus the workload's specials and ``[UNK]``) is built
deterministically. Each document becomes ``[CLS]`` + its first ``seq_len - 1`` tokens, padded
with ``[PAD]``: the same ``Documents`` layout as the procedural AgreeLang corpus, so masking and
the swap-detection task work unchanged.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from greenperf.errors import GreenperfError
from greenperf.suites.bert_small.corpus import CLS_ID, PAD_ID, SEQ_LEN, SPECIAL_TOKENS, Documents

UNK_ID = len(SPECIAL_TOKENS)
TEXT_SPECIAL_TOKENS: tuple[str, ...] = (*SPECIAL_TOKENS, "[UNK]")
TEXT_SPECIAL_IDS: tuple[int, ...] = tuple(range(len(TEXT_SPECIAL_TOKENS)))
DEFAULT_VOCAB_SIZE = 8192
DEFAULT_EVAL_FRACTION = 0.05

# Words are runs of letters/digits/underscore; every other non-space character stands alone.
_WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


class Tokenizer:
    """Word-level tokenizer over a fixed vocabulary whose first entries are the specials."""

    def __init__(self, vocab: Sequence[str], lowercase: bool = True) -> None:
        if tuple(vocab[: len(TEXT_SPECIAL_TOKENS)]) != TEXT_SPECIAL_TOKENS:
            raise GreenperfError("tokenizer vocab", f"must start with {TEXT_SPECIAL_TOKENS}")
        self.vocab: list[str] = list(vocab)
        self.lowercase = lowercase
        self._ids = {word: i for i, word in enumerate(self.vocab)}

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE,
            lowercase: bool = True) -> Tokenizer:
        """The ``vocab_size - 5`` most frequent words (ties in alphabetical order) + specials."""
        if vocab_size <= len(TEXT_SPECIAL_TOKENS):
            raise GreenperfError(
                "vocab_size", f"must exceed the {len(TEXT_SPECIAL_TOKENS)} special tokens, "
                f"got {vocab_size}")
        counts: Counter[str] = Counter()
        probe = cls(TEXT_SPECIAL_TOKENS, lowercase)
        for text in texts:
            counts.update(probe.split(text))
        for special in TEXT_SPECIAL_TOKENS:
            counts.pop(special, None)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        words = [word for word, _ in ranked[: vocab_size - len(TEXT_SPECIAL_TOKENS)]]
        return cls([*TEXT_SPECIAL_TOKENS, *words], lowercase)

    def split(self, text: str) -> list[str]:
        return _WORD_PATTERN.findall(text.lower() if self.lowercase else text)

    def encode(self, text: str, seq_len: int = SEQ_LEN) -> np.ndarray:
        """int64 [seq_len]: ``[CLS]``, the first ``seq_len - 1`` token ids, then ``[PAD]``."""
        ids = [self._ids.get(word, UNK_ID) for word in self.split(text)[: seq_len - 1]]
        row = np.full(seq_len, PAD_ID, dtype=np.int64)
        row[0] = CLS_ID
        row[1 : 1 + len(ids)] = ids
        return row

    def encode_batch(self, texts: Sequence[str], seq_len: int = SEQ_LEN) -> np.ndarray:
        tokens = np.full((len(texts), seq_len), PAD_ID, dtype=np.int64)
        for i, text in enumerate(texts):
            tokens[i] = self.encode(text, seq_len)
        return tokens

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.vocab[int(i)] for i in ids if int(i) != PAD_ID)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


@dataclass(frozen=True)
class TextCorpus:
    """A tokenised local corpus. ``source_checksum`` covers every file's path and bytes."""

    tokenizer: Tokenizer
    train: Documents
    eval: Documents
    files: tuple[str, ...]
    source_checksum: str

    @property
    def vocab(self) -> list[str]:
        return self.tokenizer.vocab

    @property
    def special_ids(self) -> tuple[int, ...]:
        return TEXT_SPECIAL_IDS


def _text_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise GreenperfError(str(folder), "is not a directory (expected a folder of .txt files)")
    files = sorted(p for p in folder.rglob("*.txt") if p.is_file())
    if not files:
        raise GreenperfError(str(folder), "contains no .txt files (expected one document per line)")
    return files


def _decode(path: Path, data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]  # one byte sequence, not a line: numbering unchanged
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise GreenperfError(
            f"{path}:{line}",
            f"is not valid UTF-8 (byte 0x{data[err.start]:02x} at column {column})",
        ) from None


def read_documents(folder: str | Path) -> tuple[list[str], list[Path], str]:
    """Non-blank lines of every ``.txt`` file under ``folder`` (sorted paths), the files, and a
    sha256 over each file's relative path and bytes."""
    folder = Path(folder)
    files = _text_files(folder)
    digest = hashlib.sha256()
    documents: list[str] = []
    for path in files:
        data = path.read_bytes()
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(data).digest())
        for line in _decode(path, data).split("\n"):
            line = line.strip()
            if line:
                documents.append(line)
    return documents, files, digest.hexdigest()


def _in_eval_split(text: str, eval_fraction: float) -> bool:
    bucket = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return bucket < eval_fraction * 2**64


def load_text_corpus(
    folder: str | Path,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    seq_len: int = SEQ_LEN,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    lowercase: bool = True,
) -> TextCorpus:
    """Read, split, build the vocabulary on the train split, and tokenise both splits."""
    if not 0.0 < eval_fraction < 1.0:
        raise GreenperfError("eval_fraction", f"must be in (0, 1), got {eval_fraction}")
    if seq_len < 2:
        raise GreenperfError("seq_len", f"must be at least 2, got {seq_len}")
    folder = Path(folder)
    documents, files, checksum = read_documents(folder)
    if not documents:
        raise GreenperfError(str(folder), f"its {len(files)} .txt file(s) hold no non-blank lines")
    in_eval = [_in_eval_split(text, eval_fraction) for text in documents]
    train_texts = [t for t, e in zip(documents, in_eval, strict=True) if not e]
    eval_texts = [t for t, e in zip(documents, in_eval, strict=True) if e]
    if not train_texts or not eval_texts:
        raise GreenperfError(
            str(folder),
            f"corpus too small to split: {len(documents)} documents gave {len(train_texts)} "
            f"train and {len(eval_texts)} eval at eval_fraction {eval_fraction} "
            "(add lines or raise eval_fraction)",
        )
    tokenizer = Tokenizer.fit(train_texts, vocab_size, lowercase)
    return TextCorpus(
        tokenizer=tokenizer,
        train=Documents(tokens=tokenizer.encode_batch(train_texts, seq_len)),
        eval=Documents(tokens=tokenizer.encode_batch(eval_texts, seq_len)),
        files=tuple(path.relative_to(folder).as_posix() for path in files),
        source_checksum=checksum,
    )
