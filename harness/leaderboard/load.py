"""Find result files under the given folders and load each one once, skipping bad ones."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from greenperf.errors import UsageError
from greenperf.leaderboard.records import BadField, Record, parse_record
from greenperf.results import NON_RESULT_DIRS, compute_checksum

# A result file is tens of kilobytes; anything far larger is not one we should parse.
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
REFERENCE_FOLDER = "reference_results"


@dataclass
class Loaded:
    """A result file that parsed, passed its checksum and the typed reading."""

    source: Path
    raw: bytes
    record: Record
    reference: bool
    identity: tuple[int, int] = (0, 0)  # (st_dev, st_ino) of the file that was read
    slug: str = ""


class Refused(Exception):
    """A file that must not be read: not a regular file, or too large."""


def open_regular(path: Path, max_bytes: int) -> tuple[BinaryIO, os.stat_result]:
    """Open ``path`` for reading, only if it is a regular file of at most ``max_bytes``.

    Non-blocking, so that a FIFO planted under a stranger's folder cannot hang us; every
    check is made on the open file, which is then the one read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    handle = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        handle.close()
        raise Refused("not a regular file")
    if info.st_size > max_bytes:
        handle.close()
        raise Refused(f"{info.st_size:,} bytes, over the {max_bytes:,}-byte limit")
    return handle, info


@dataclass(frozen=True)
class Skipped:
    source: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}"


def _is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def find_result_files(paths: Iterable[Path], exclude: Path | None = None) -> list[Path]:
    """Every ``*.json`` under the folders (``logs/`` folders and ``exclude`` left out).

    Raises a one-line ``UsageError`` for a path that does not exist.
    """
    skip = os.path.realpath(exclude) if exclude is not None else None
    found: list[Path] = []
    seen: set[tuple[int, int] | str] = set()
    for path in paths:
        if path.is_file():
            candidates = [path]
        elif path.is_dir():
            candidates = []
            top = str(path)
            # os.walk follows no links below ``top``, so a folder's real path is the real path
            # of ``top`` plus its path relative to ``top``: no system call per folder.
            real_top = os.path.realpath(top)
            watch = skip if skip and _is_within(skip, real_top) else None
            for folder, dirs, files in os.walk(top):
                real_folder = real_top + folder[len(top):]
                dirs[:] = sorted(d for d in dirs if d not in NON_RESULT_DIRS and not (
                    watch and _is_within(os.path.join(real_folder, d), watch)))
                candidates.extend(Path(folder, f) for f in sorted(files) if f.endswith(".json"))
        else:
            raise UsageError(str(path), "no such file or folder")
        for candidate in candidates:
            try:
                info = os.stat(candidate)
                key: tuple[int, int] | str = (info.st_dev, info.st_ino)
            except OSError:  # a dangling link: keep it, loading will say what is wrong
                key = str(candidate)
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def load_one(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Loaded | Skipped:
    """Read, checksum and type one result file; a bad file gives ``Skipped``, never raises."""
    try:
        handle, info = open_regular(path, max_bytes)
        with handle:
            raw = handle.read()
    except Refused as exc:
        return Skipped(path, f"{exc} (for a result file)")
    except OSError as exc:
        return Skipped(path, f"cannot read ({exc.strerror or exc})")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        return Skipped(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
    except UnicodeDecodeError:
        return Skipped(path, "not UTF-8 text")
    except RecursionError:
        return Skipped(path, "JSON nested too deeply")
    if not isinstance(doc, dict) or "schema_version" not in doc:
        return Skipped(path, "not a greenperf result (no schema_version)")
    checksum = doc.get("checksum")
    stored = checksum.get("value") if isinstance(checksum, dict) else None
    try:
        actual = compute_checksum(doc)
    except (ValueError, TypeError, RecursionError):
        return Skipped(path, "holds NaN, Infinity or nesting that a result file cannot have")
    if stored != actual:
        return Skipped(path, "field checksum: does not match the content (edited after "
                             "greenperf wrote it)")
    try:
        record = parse_record(doc)
    except BadField as exc:
        return Skipped(path, str(exc))
    return Loaded(path, raw, record, reference=REFERENCE_FOLDER in path.parts,
                  identity=(info.st_dev, info.st_ino))
