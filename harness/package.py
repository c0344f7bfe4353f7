"""Submission packages: pack a result folder MLPerf-style, and verify a package safely.

Layout inside the archive (no top-level folder)::

    greenperf-manifest.json                       sha256 and size of every other member
    <org>/systems/<system>.json                   MLCommons system-description fields
    <org>/results/<system>/<workload>/result_N.txt   the MLLOG logs (<phase>/result_N.txt
                                                  when a workload has several phases)
    <org>/results/<system>/<workload>/<result>.json  the greenperf result, beside its logs

The result files' log paths are rewritten to the new layout and the results are sealed again;
the manifest keeps each source file's original checksum.

Verification never trusts the archive: every member is checked (inside the package root, a
regular file or folder, under a size limit, listed in the manifest with a matching sha256)
and only then are the results extracted, by us and not by ``tarfile``, into a temporary
folder for the normal result checks.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from harness import __version__
from harness.checker import CheckReport, check_result
from harness.errors import CheckFailed, GreenperfError, UsageError
from harness.leaderboard.load import find_result_files
from harness.results import checksum_problem, file_sha256, read_result, seal
from harness.sysinfo import GREENPERF_SECTIONS, MLCOMMONS_FIELDS

MANIFEST = "greenperf-manifest.json"
FORMAT = "greenperf-submission"
FORMAT_VERSION = 1
DEFAULT_MAX_MEMBER_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 8 * 1024 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 100_000
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def safe_name(text: str, what: str) -> str:
    """``text`` as one path component: letters, digits, '.', '_', '-' (no leading dot)."""
    name = _UNSAFE.sub("_", text).strip("._")[:100]
    if not name:
        raise UsageError(what, f"{text!r} gives an empty name once unsafe characters are removed")
    return name


# --- packing -----------------------------------------------------------------------------


@dataclass
class PackSummary:
    path: Path
    org: str
    results: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


@dataclass
class _Planned:
    """One result to pack: where it goes and the logs that go with it."""

    source: Path
    doc: dict[str, Any]
    system: str
    folder: str = ""
    logs: list[tuple[Path, str]] = field(default_factory=list)  # (source file, package name)


def _inside(folder: Path, rel: str, where: str) -> Path:
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts:
        raise CheckFailed(where, f"log path {rel!r} is absolute or leaves the result's folder")
    path = folder / pure
    real, base = os.path.realpath(path), os.path.realpath(folder)
    if not real.startswith(base.rstrip(os.sep) + os.sep):
        raise CheckFailed(where, f"log path {rel!r} leads outside the result's folder")
    if not os.path.isfile(real):
        raise CheckFailed(where, f"MLLOG file {path} is missing")
    return Path(real)


def _load(path: Path) -> dict[str, Any]:
    doc = read_result(path)
    problem = checksum_problem(doc)
    if problem:
        raise CheckFailed(str(path), problem)
    if doc["status"] != "complete":
        raise CheckFailed(f"{path}: field status", "the result is incomplete; finish the runs "
                                                   "before submitting")
    return doc


def _org(docs: list[dict[str, Any]], org: str | None) -> str:
    if org is not None:
        return safe_name(org, "--org")
    names = {str(d["system"]["declared"].get("submitter") or "").strip() for d in docs}
    names.discard("")
    if len(names) > 1:
        raise UsageError("--org", f"the results declare different submitters "
                                  f"({', '.join(sorted(names))}); pass --org")
    if not names:
        raise UsageError("--org", "no result declares a submitter (system description field "
                                  "'submitter'); pass --org ORG")
    return safe_name(names.pop(), "submitter")


def _plan(paths: list[Path]) -> list[_Planned]:
    planned = [_Planned(p, d, safe_name(d["system"]["name"], f"{p}: field system.name"))
               for p, d in ((p, _load(p)) for p in paths)]
    # A workload's folder is its name; the scale, then the kind, are added only when two
    # results of one system would otherwise share a folder.
    for extra in ((), ("scale",), ("scale", "kind")):
        def folder(p: _Planned, extra: tuple[str, ...] = extra) -> str:
            parts = [p.doc["workload"]] + [p.doc[k] for k in extra]
            if not extra and p.doc["kind"] != "training":
                parts.append(p.doc["kind"])
            return safe_name("_".join(parts), f"{p.source}: field workload")

        keys = [(p.system, folder(p)) for p in planned]
        if len(set(keys)) == len(keys):
            for p, (_, name) in zip(planned, keys, strict=True):
                p.folder = name
            break
    else:
        raise UsageError(str(planned[0].source.parent), "two results share a system, workload, "
                                                        "scale and kind; pack them separately")
    for p in planned:
        phases = p.doc["phases"]
        for i, phase in enumerate(phases):
            for run in phase["runs"]:
                where = f"{p.source}: field phases[{i}].runs[{run['index'] - 1}].log"
                source = _inside(p.source.parent, run["log"]["path"], where)
                if file_sha256(source) != run["log"]["sha256"]:
                    raise CheckFailed(where, f"MLLOG file {source} was changed after the run")
                name = f"result_{run['index']}.txt"
                if len(phases) > 1:
                    name = f"{safe_name(phase['name'], where)}/{name}"
                p.logs.append((source, name))
    return planned


def _system_description(doc: dict[str, Any], org: str) -> dict[str, Any]:
    """MLCommons fields (declared, else what greenperf saw), plus greenperf's own sections."""
    declared, auto = doc["system"]["declared"], doc["system"]["auto"]
    software = doc.get("software") or {}
    gpus = (auto.get("gpus") or {}).get("devices") or []
    seen = {
        "submitter": org,
        "division": doc["division"],
        "system_name": doc["system"]["name"],
        "number_of_nodes": 1,
        "host_processor_model_name": auto.get("cpu_model"),
        "host_processor_vcpu_count": auto.get("logical_cpus"),
        "host_memory_capacity": (f"{auto['memory_bytes'] / 2 ** 30:.0f} GB"
                                 if isinstance(auto.get("memory_bytes"), int) else None),
        "accelerators_per_node": len(gpus),
        "accelerator_model_name": gpus[0].get("name") if gpus else "none",
        "framework": f"PyTorch {software['torch']}" if software.get("torch") else None,
        "operating_system": auto.get("os"),
    }
    out: dict[str, Any] = {}
    from_auto = []
    for name in MLCOMMONS_FIELDS:
        if declared.get(name) not in (None, ""):
            out[name] = declared[name]
        elif seen.get(name) is not None:
            out[name] = seen[name]
            if name not in ("submitter", "division", "system_name"):
                from_auto.append(name)
        else:
            out[name] = ""
    out["greenperf"] = {
        "auto": auto,
        "fields_from_auto": from_auto,
        **{k: declared[k] for k in GREENPERF_SECTIONS if k in declared},
    }
    return out


def _rewritten(p: _Planned) -> dict[str, Any]:
    """The result with log paths for the package layout, sealed again."""
    doc = copy.deepcopy(p.doc)
    renamed: dict[str, str] = {}
    names = iter(name for _, name in p.logs)
    for phase in doc["phases"]:
        for run in phase["runs"]:
            new = next(names)
            renamed[run["log"]["path"]] = new
            run["log"]["path"] = new
    for finding in doc.get("compliance", {}).get("findings", []):
        if isinstance(finding, dict) and finding.get("log") in renamed:
            finding["log"] = renamed[finding["log"]]
    return seal(doc)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def build_package(folder: Path, out: Path, org: str | None = None) -> PackSummary:
    """Pack every result under ``folder`` (with logs and system descriptions) into ``out``."""
    if not folder.is_dir():
        raise UsageError(str(folder), "not a folder")
    paths = find_result_files([folder])
    if not paths:
        raise UsageError(str(folder), "folder holds no result files (*.json)")
    planned = _plan(paths)
    org_name = _org([p.doc for p in planned], org)
    members: dict[str, bytes | Path] = {}
    manifest_results = []
    for p in planned:
        bench = f"{org_name}/results/{p.system}/{p.folder}"
        for source, name in p.logs:
            members[f"{bench}/{name}"] = source
        result_name = f"{bench}/{safe_name(p.source.name, str(p.source))}"
        members[result_name] = (json.dumps(_rewritten(p), indent=1, ensure_ascii=False)
                                + "\n").encode("utf-8")
        system_json = f"{org_name}/systems/{p.system}.json"
        if system_json not in members:
            members[system_json] = (json.dumps(_system_description(p.doc, org_name), indent=1,
                                               ensure_ascii=False, default=str)
                                    + "\n").encode("utf-8")
        manifest_results.append({"path": result_name, "source": str(p.source),
                                 "source_checksum": p.doc["checksum"]["value"]})
    now = dt.datetime.now(dt.timezone.utc)
    files = []
    for name in sorted(members):
        data = members[name]
        digest = file_sha256(data) if isinstance(data, Path) else hashlib.sha256(data).hexdigest()
        size = data.stat().st_size if isinstance(data, Path) else len(data)
        files.append({"path": name, "sha256": digest, "bytes": size})
    manifest = {"format": FORMAT, "version": FORMAT_VERSION,
                "created_utc": now.isoformat(timespec="seconds"),
                "generator": {"name": "greenperf", "version": __version__}, "org": org_name,
                "files": files, "results": manifest_results}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz",
                                                      format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode(),
                       now.timestamp())
            for name in sorted(members):
                data = members[name]
                _add_bytes(tar, name, data.read_bytes() if isinstance(data, Path) else data,
                           now.timestamp())
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise GreenperfError(str(out), f"cannot write the package ({exc.strerror or exc})") from exc
    return PackSummary(out, org_name, [r["path"] for r in manifest_results], len(files) + 1,
                       out.stat().st_size)


# --- verifying ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    members: int = DEFAULT_MAX_MEMBERS


def _member_problem(member: tarfile.TarInfo, limits: Limits) -> str | None:
    name = member.name
    pure = PurePosixPath(name)
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or (
            "\\" in name) or ".." in pure.parts or "\x00" in name:
        return "path is absolute or leaves the package root"
    if member.issym():
        return f"symbolic link (to {member.linkname!r}) refused"
    if member.islnk():
        return f"hard link (to {member.linkname!r}) refused"
    if member.ischr() or member.isblk() or member.isfifo():
        return "device or FIFO refused"
    if not (member.isfile() or member.isdir()):
        return f"member type {member.type!r} refused"
    if member.size > limits.member_bytes:
        return f"{member.size:,} bytes, over the {limits.member_bytes:,}-byte limit"
    return None


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> str:
    """Copy one checked regular member to ``dest``; returns its sha256."""
    source = tar.extractfile(member)
    if source is None:
        raise CheckFailed(member.name, "cannot be read")
    digest = hashlib.sha256()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source, open(dest, "xb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _unpack(archive: Path, root: Path, limits: Limits,
            report: CheckReport) -> dict[str, tuple[str, int]]:
    """Check every member and write the regular ones under ``root``; {name: (sha256, size)}."""
    where = str(archive)
    hashes: dict[str, tuple[str, int]] = {}
    seen: set[str] = set()
    total = count = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                count += 1
                if count > limits.members:
                    report.errors.append(f"{where}: more than {limits.members:,} members; "
                                         "refused")
                    break
                problem = _member_problem(member, limits)
                name = "/".join(PurePosixPath(member.name).parts)
                if problem is None and name in seen:
                    problem = "appears twice"
                if problem:
                    report.errors.append(f"{where}: member {member.name!r}: {problem}")
                    continue
                seen.add(name)
                total += member.size
                if total > limits.total_bytes:
                    report.errors.append(f"{where}: members add up to more than "
                                         f"{limits.total_bytes:,} bytes; refused")
                    break
                if member.isfile():
                    try:
                        hashes[name] = (_write_member(tar, member, root / name), member.size)
                    except (FileExistsError, NotADirectoryError, IsADirectoryError):
                        report.errors.append(f"{where}: member {member.name!r}: clashes with "
                                             "another member's path")
                    except (tarfile.TarError, EOFError, zlib.error):
                        raise
                    except OSError as exc:
                        report.errors.append(f"{where}: member {member.name!r}: cannot be "
                                             f"extracted ({exc.strerror or exc})")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        report.errors.append(f"{where}: not a readable tar archive ({exc})")
    return hashes


def _manifest_files(root: Path, hashes: dict[str, tuple[str, int]], where: str,
                    report: CheckReport) -> list[str]:
    """Compare the manifest with the members; the result files it lists."""
    if MANIFEST not in hashes:
        report.errors.append(f"{where}: member {MANIFEST!r} is missing: not a greenperf package")
        return []
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        report.errors.append(f"{where}: member {MANIFEST!r}: not valid JSON ({exc})")
        return []
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or not isinstance(files, list)):
        report.errors.append(f"{where}: member {MANIFEST!r}: not a {FORMAT} manifest")
        return []
    listed: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(files):
        ok = (isinstance(entry, dict) and isinstance(entry.get("path"), str)
              and isinstance(entry.get("sha256"), str) and _HEX64.match(entry["sha256"])
              and isinstance(entry.get("bytes"), int))
        if not ok:
            report.errors.append(f"{where}: member {MANIFEST!r}: field files[{i}] needs path, "
                                 "sha256 (64 hex digits) and bytes")
            continue
        listed["/".join(PurePosixPath(entry["path"]).parts)] = entry
    for name, (digest, size) in sorted(hashes.items()):
        if name == MANIFEST:
            continue
        entry = listed.get(name)
        if entry is None:
            report.errors.append(f"{where}: member {name!r} is not in the manifest")
        elif entry["sha256"] != digest or entry["bytes"] != size:
            report.errors.append(f"{where}: member {name!r}: sha256 does not match the manifest "
                                 "(changed after packing)")
    for name in sorted(set(listed) - set(hashes)):
        report.errors.append(f"{where}: member {name!r} is listed in the manifest but missing")
    return sorted(n for n in hashes if n.endswith(".json") and "/results/" in f"/{n}")


def verify_package(archive: Path, limits: Limits | None = None, run_compliance: bool = True,
                   submission: bool = False) -> list[CheckReport]:
    """The package's own report, then one report per result file in it."""
    limits = limits or Limits()
    if not archive.is_file():
        raise UsageError(str(archive), "no such file")
    report = CheckReport(str(archive))
    reports = [report]
    with tempfile.TemporaryDirectory(prefix="greenperf-package-") as tmp:
        root = Path(tmp)
        hashes = _unpack(archive, root, limits, report)
        if report.errors:
            return reports
        results = _manifest_files(root, hashes, str(archive), report)
        if report.errors:
            return reports
        if not results:
            report.errors.append(f"{archive}: holds no result files under <org>/results/")
        prefix = str(root) + os.sep
        for name in results:
            parts = PurePosixPath(name).parts
            system_json = f"{parts[0]}/systems/{parts[2]}.json" if len(parts) > 3 else None
            if system_json and system_json not in hashes:
                report.errors.append(f"{archive}: member {system_json!r} (the system "
                                     f"description of {name}) is missing")
            inner = check_result(root / name, run_compliance=run_compliance,
                                 submission=submission)
            inner.path = f"{archive}:{name}"
            for lines in (inner.errors, inner.warnings, inner.notes):
                lines[:] = [line.replace(prefix, f"{archive}:") for line in lines]
            reports.append(inner)
    return reports
