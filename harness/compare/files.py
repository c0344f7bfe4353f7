"""Result files and folders on each side of a comparison, matched by what they measured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from greenperf.compare.series import compare_docs, key_text, result_key
from greenperf.compare.verdict import DEFAULT_ALPHA, DEFAULT_THRESHOLD, Comparison
from greenperf.errors import GreenperfError, UsageError
from greenperf.results import NON_RESULT_DIRS, checksum_problem, read_result


def load_side(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The result documents of a file or folder.

    In a folder, ``NON_RESULT_DIRS`` (logs, rcps, ...) and JSON files that are no greenperf result
    at all (no ``schema_version``) are skipped; a broken result file is an error.
    """
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json")
                       if not NON_RESULT_DIRS & set(p.relative_to(path).parts[:-1])
                       and _looks_like_result(p))
        if not files:
            raise UsageError(str(path), "folder holds no result files (*.json)")
    elif path.is_file():
        files = [path]
    else:
        raise UsageError(str(path), "no such result file or folder")
    docs = []
    for file in files:
        try:
            doc = read_result(file)
        except GreenperfError as exc:
            # A broken input is a usage error (exit 2), never a "regression" (exit 1).
            raise UsageError(exc.where, exc.problem) from exc
        docs.append((file, doc))
    return docs


def _looks_like_result(path: Path) -> bool:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return True  # let read_result name the problem
    return not isinstance(raw, dict) or "schema_version" in raw


def compare_paths(baseline: Path, candidate: Path, threshold: float = DEFAULT_THRESHOLD,
                  alpha: float = DEFAULT_ALPHA, exclude_contended: bool = False) -> Comparison:
    """Compare two result files, or the matching result files of two folders."""
    if not 0 < alpha < 1:
        raise UsageError("--alpha", f"{alpha} must be between 0 and 1")
    base_docs = load_side(baseline)
    cand_docs = load_side(candidate)
    comparison = Comparison(threshold, alpha)
    for side, docs in (("baseline", base_docs), ("candidate", cand_docs)):
        for file, doc in docs:
            problem = checksum_problem(doc)
            if problem:
                comparison.notes.append(f"{side} {file}: {problem}")
    if len(base_docs) == 1 and len(cand_docs) == 1 and baseline.is_file() and candidate.is_file():
        (bfile, bdoc), (cfile, cdoc) = base_docs[0], cand_docs[0]
        if result_key(bdoc) != result_key(cdoc):
            raise UsageError(f"{cfile}", f"not comparable with {bfile}: "
                                         f"{key_text(result_key(cdoc))} vs "
                                         f"{key_text(result_key(bdoc))}")
        pairs = [(bfile, bdoc, cfile, cdoc)]
    else:
        pairs = _match(base_docs, cand_docs, comparison.notes)
        if not pairs:
            raise UsageError(f"{baseline} and {candidate}",
                             "no result in one matches a result in the other "
                             "(by workload, scale, kind and scenario)")
    for bfile, bdoc, cfile, cdoc in pairs:
        metrics, notes = compare_docs(bdoc, cdoc, threshold, alpha, exclude_contended)
        comparison.metrics.extend(metrics)
        comparison.notes.extend(notes)
        comparison.matched.append((str(bfile), str(cfile)))
    return comparison


def _match(base_docs: list[tuple[Path, dict[str, Any]]],
           cand_docs: list[tuple[Path, dict[str, Any]]],
           notes: list[str]) -> list[tuple[Path, dict[str, Any], Path, dict[str, Any]]]:
    base = _by_key(base_docs, "baseline")
    cand = _by_key(cand_docs, "candidate")
    for key in base.keys() - cand.keys():
        notes.append(f"only in the baseline: {key_text(key)} ({base[key][0]})")
    for key in cand.keys() - base.keys():
        notes.append(f"only in the candidate: {key_text(key)} ({cand[key][0]})")
    return [(*base[key], *cand[key]) for key in sorted(base.keys() & cand.keys())]


def _by_key(docs: list[tuple[Path, dict[str, Any]]],
            side: str) -> dict[tuple[str, str, str, str], tuple[Path, dict[str, Any]]]:
    found: dict[tuple[str, str, str, str], tuple[Path, dict[str, Any]]] = {}
    for file, doc in docs:
        key = result_key(doc)
        if key in found:
            raise UsageError(str(file), f"the {side} holds two results for {key_text(key)} "
                                        f"(also {found[key][0]}); compare them one by one")
        found[key] = (file, doc)
    return found

