"""Result files: the versioned JSON Schema, canonical sha256, and safe I/O.

A result file is written again after every completed run (atomically, through
a temporary file and ``os.replace``), so a crash or Ctrl-C loses no completed
run: the file on disk is always valid, marked ``incomplete`` until the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from greenperf.errors import CheckFailed, GreenperfError, UsageError

SCHEMA_VERSION = "1.0"
# Folders greenperf writes beside result files that hold no result files: MLLOG logs,
# RCP files, LoadGen logs (mlperf_log_accuracy.json is JSON too) and model checkpoints.
NON_RESULT_DIRS = frozenset({"logs", "rcps", "loadgen", "checkpoints"})
CHECKSUM_ALGORITHM = "sha256-canonical-json"


# No circular-reference check: a parsed JSON document cannot hold a cycle, and skipping it
# makes the encoder a tenth faster (the leaderboard checks ten thousand files at a time).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False, check_circular=False)


def canonical_json(doc: Any) -> bytes:
    """The byte string the checksum covers: sorted keys, no whitespace, UTF-8."""
    return _CANONICAL.encode(doc).encode("utf-8")


def compute_checksum(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """Set ``doc['checksum']`` from the rest of the document; returns ``doc``."""
    doc["checksum"] = {"algorithm": CHECKSUM_ALGORITHM, "value": compute_checksum(doc)}
    return doc


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and prove we can write there, with a one-line error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".greenperf-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise UsageError(f"output folder {path}", f"not writable ({exc.strerror or exc})") from exc
    return path


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    data = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide results from other users
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_result(path: Path, doc: dict[str, Any]) -> None:
    """Seal and atomically write ``doc``."""
    try:
        write_json_atomic(path, seal(doc))
    except OSError as exc:
        raise GreenperfError(str(path), f"cannot write result ({exc.strerror or exc})") from exc


@lru_cache(maxsize=4)
def load_schema(version: str = SCHEMA_VERSION) -> dict[str, Any]:
    text = resources.files("greenperf.schema").joinpath(f"result-{version}.schema.json").read_text()
    return json.loads(text)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _field_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def schema_problems(doc: Any) -> list[str]:
    """Every schema violation, each as 'field X: problem'."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    problems = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        problems.append(f"field {_field_path(err.absolute_path)}: {err.message}")
    return problems


def read_result(path: Path) -> dict[str, Any]:
    """Parse a result file and check its schema version and schema.

    Raises a one-line ``GreenperfError`` naming the file and the field at fault.
    The checksum is verified separately (``checksum_problem``) so that
    ``greenperf check`` can report it alongside the other findings.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UsageError(str(path), "no such result file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckFailed(str(path), f"cannot read result file ({exc})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckFailed(str(path), f"not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                     f"{exc.msg})") from exc
    if not isinstance(doc, dict):
        raise CheckFailed(str(path), "not a greenperf result (top level is not an object)")
    version = doc.get("schema_version")
    if not isinstance(version, str):
        raise CheckFailed(f"{path}: field schema_version", "missing or not a string")
    try:
        newer = _version_tuple(version) > _version_tuple(SCHEMA_VERSION)
    except ValueError as exc:
        raise CheckFailed(f"{path}: field schema_version", f"{version!r} is not N.N") from exc
    if newer:
        raise CheckFailed(f"{path}: field schema_version",
                          f"{version} is newer than this greenperf reads ({SCHEMA_VERSION}); "
                          "upgrade greenperf")
    problems = schema_problems(doc)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckFailed(str(path), f"{problems[0]}{more}")
    return doc


def checksum_problem(doc: dict[str, Any]) -> str | None:
    stored = doc.get("checksum", {}).get("value")
    actual = compute_checksum(doc)
    if stored != actual:
        return ("field checksum: sha256 of the content does not match the stored checksum "
                "(the file was edited after greenperf wrote it)")
    return None
