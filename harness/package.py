"""Submission packages: pack a result folder MLPerf-style, and verify a package safely.

Layout inside the archive (no top-level folder)::

    greenperf-manifest.json                       sha256 and size of every other member
    <org>/systems/<system>.json                   MLCommons system-description fields
    <org>/results/<system>/<workload>/result_N.txt   the MLLOG logs (<phase>/result_N.txt
                                                  when a workload has several phases)
    <org>/results/<system>/<workload>/<result>.json  the greenperf result, beside its logs

The result files' log paths are rewritten to the new layout and the results are sealed again;
the manifest keeps each source file's original checksum.

Verification never trusts the archive. A first pass reads only the tar headers and writes
nothing: every member must be inside the package root, a regular file or folder, named as
greenperf names members, under the size and count limits (``Limits``); a size or count over
a limit stops reading at that header. Only then does a second pass extract the members, by
us and not by ``tarfile``, into a temporary folder, where they are compared with the
manifest's sha256 before the normal result checks. Both passes count every decompressed
byte and watch the clock, so a compression bomb, in a member or in a header, is refused
while it is being decompressed.
"""

from __future__ import annotations

import bz2
import copy
import datetime as dt
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import stat
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from greenperf import __version__
from greenperf.checker import CheckReport, check_result
from greenperf.errors import CheckFailed, GreenperfError, UsageError
from greenperf.leaderboard.load import find_result_files
from greenperf.results import checksum_problem, file_sha256, read_result, seal
from greenperf.sysinfo import GREENPERF_SECTIONS, MLCOMMONS_FIELDS

MANIFEST = "greenperf-manifest.json"
FORMAT = "greenperf-submission"
FORMAT_VERSION = 1
MIB = 1 << 20
# Limits sized from real packages. `greenperf submit reference_results/` (three tiny results,
# 10 runs each) holds 45 members that expand to 1.6 MB from a 112 kB archive (14x); its
# largest member is a 222 kB result file. The largest member a package could hold is a
# standard-scale checkpoint: BERT-Small, 13.5 M float32 parameters, 52 MiB (MLP 8 MiB,
# ResNet-20 1 MiB), so a standard-scale package with its checkpoints is about 65 MB.
DEFAULT_MAX_MEMBER_BYTES = 128 * MIB    # 2.5x the BERT-Small checkpoint
DEFAULT_MAX_TOTAL_BYTES = 256 * MIB     # 4x a standard-scale package with checkpoints
DEFAULT_MAX_MEMBERS = 1_000             # 20x the reference package
DEFAULT_MAX_RATIO = 100.0               # 7x the reference package's 14x (text); zeros: 1000x
DEFAULT_RATIO_FLOOR = 16 * MIB          # small archives may still hold a 10 MB checkpoint
DEFAULT_MAX_SECONDS = 300.0             # checking the reference package takes 20 s on 2 busy
#                                         cores; reading an archive at the limits, about 6 s
_HEADER_ALLOWANCE = 8 * MIB             # tar headers, PAX records and padding beyond the data
_MAX_READ = MIB                         # tarfile reads a PAX or long-name header in one go
_CHUNK = 256 * 1024
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
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


def _check_target(out: Path) -> None:
    """``-o`` names a regular file or a new path: os.replace would swap a device node (say
    /dev/full, as root) or a FIFO for the package, so those are refused."""
    where = f"-o {out}"
    try:
        mode = os.stat(out).st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError as exc:
        raise UsageError(where, "a folder on that path is a file") from exc
    except OSError as exc:
        raise UsageError(where, f"cannot use this path ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(mode):
        raise UsageError(where, "is a folder; name the package file (submission.tar.gz)")
    if not stat.S_ISREG(mode):
        raise UsageError(where, "is not a regular file (a device, FIFO or socket); refusing "
                                "to replace it")


def build_package(folder: Path, out: Path, org: str | None = None) -> PackSummary:
    """Pack every result under ``folder`` (with logs and system descriptions) into ``out``."""
    if not folder.is_dir():
        raise UsageError(str(folder), "not a folder")
    _check_target(out)
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
    limits = Limits()  # a package that check would refuse is not written
    largest, total = max(f["bytes"] for f in files), sum(f["bytes"] for f in files)
    if len(files) + 1 > limits.members or largest > limits.member_bytes or \
            total > limits.total_bytes:
        raise UsageError(str(folder), f"the package would hold {len(files) + 1} files, "
                                      f"{total:,} bytes (largest {largest:,}); check accepts "
                                      f"{limits.members:,} files, {limits.member_bytes:,} "
                                      f"bytes each, {limits.total_bytes:,} in all")
    manifest = {"format": FORMAT, "version": FORMAT_VERSION,
                "created_utc": now.isoformat(timespec="seconds"),
                "generator": {"name": "greenperf", "version": __version__}, "org": org_name,
                "files": files, "results": manifest_results}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except (FileExistsError, NotADirectoryError) as exc:
        raise UsageError(f"-o {out}", "a folder on that path is a file") from exc
    except OSError as exc:
        raise UsageError(f"-o {out}", f"cannot write there ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz",
                                                      format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode(),
                       now.timestamp())
            for name in sorted(members):
                data = members[name]
                _add_bytes(tar, name, data.read_bytes() if isinstance(data, Path) else data,
                           now.timestamp())
        _check_target(out)  # again: it may have changed while the package was written
        os.replace(tmp, out)
    except UsageError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise GreenperfError(str(out), f"cannot write the package ({exc.strerror or exc})") from exc
    return PackSummary(out, org_name, [r["path"] for r in manifest_results], len(files) + 1,
                       out.stat().st_size)


# --- verifying ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What a package may hold before ``check`` refuses it, unread.

    ``ratio`` caps the expanded bytes at that many times the archive's own size (at least
    ``ratio_floor``), so that a small archive cannot make a large write: a compression bomb.
    ``seconds`` bounds the whole check: reading the archive, then checking its results.
    """

    member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    members: int = DEFAULT_MAX_MEMBERS
    ratio: float = DEFAULT_MAX_RATIO
    ratio_floor: int = DEFAULT_RATIO_FLOOR
    seconds: float = DEFAULT_MAX_SECONDS

    def expanded_bytes(self, archive_bytes: int) -> int:
        """How many bytes the members of an archive of this size may add up to."""
        return min(self.total_bytes, max(self.ratio_floor, int(self.ratio * archive_bytes)))


class _Refused(Exception):
    """The archive broke a limit; reading stops at once. The message says which."""


class _Metered:
    """The decompressed archive as tarfile sees it: forward only, every byte counted.

    Skipping a member (a forward seek) decompresses it too, so it counts like a read. A
    single read over ``_MAX_READ`` can only be a PAX or long-name header of absurd size,
    which tarfile would hold in memory: it is refused before a byte of it is decompressed.
    """

    def __init__(self, stream: BinaryIO, budget: int, deadline: float, seconds: float) -> None:
        self._stream, self._budget = stream, budget
        self._deadline, self._seconds = deadline, seconds
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > _MAX_READ:
            asked = "everything" if size is None or size < 0 else f"{size:,} bytes"
            raise _Refused(f"a tar header asks for {asked} at offset {self._pos:,}; refused")
        if self._pos + size > self._budget:
            raise _Refused(f"expands to more than {self._budget:,} bytes; refused")
        if time.monotonic() > self._deadline:
            raise _Refused(f"reading it took over {self._seconds:g} s; refused")
        data = self._stream.read(size)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or offset < self._pos:
            raise _Refused("a member points backwards in the archive; refused")
        while self._pos < offset:
            if not self.read(min(_CHUNK, offset - self._pos)):
                break  # past the end: tarfile reports the truncation itself
        return self._pos


def _open_regular(archive: Path) -> BinaryIO:
    """The archive opened for reading, if it is a regular file (after symbolic links).

    O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
    """
    try:
        fd = os.open(archive, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise UsageError(str(archive), "no such file") from exc
    except OSError as exc:
        raise UsageError(str(archive), f"cannot open ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(str(archive), "not a regular file (a folder, FIFO or device); refused")
    return os.fdopen(fd, "rb")


def _decompressed(raw: BinaryIO) -> BinaryIO:
    """The tar stream inside ``raw``, by the compression its first bytes name."""
    raw.seek(0)
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw


def _member_problem(member: tarfile.TarInfo, name: str) -> str | None:
    raw = member.name
    if not raw or raw.startswith(("/", "\\")) or ".." in PurePosixPath(raw).parts or (
            "\\" in raw) or "\x00" in raw or re.match(r"^[A-Za-z]:", raw):
        return "path is absolute or leaves the package root"
    if not name and not member.isdir():
        return "path is empty"
    # greenperf names every member from safe_name() parts; anything else (control
    # characters, undecodable bytes, spaces) is not from a package, and could not be printed.
    if name and not _SAFE_PATH.match(name):
        return "name has characters a package never uses (only letters, digits, '._-' and '/')"
    if member.issym():
        return f"symbolic link (to {member.linkname!r}) refused"
    if member.islnk():
        return f"hard link (to {member.linkname!r}) refused"
    if member.ischr() or member.isblk() or member.isfifo():
        return "device or FIFO refused"
    if member.issparse():
        return "sparse file refused"
    if not (member.isfile() or member.isdir()):
        return f"member type {member.type!r} refused"
    if member.size < 0:
        return "negative size"
    return None


def _clash(name: str, is_file: bool, files: set[str], folders: set[str]) -> bool:
    """Whether ``name`` is a file below another file, or a file where a folder is."""
    parts = name.split("/")
    above = ["/".join(parts[:i]) for i in range(1, len(parts))]
    if any(a in files for a in above) or (is_file and name in folders):
        return True
    folders.update(above)
    if is_file:
        files.add(name)
    return False


def _copy_member(source: BinaryIO, dest: Path, name: str) -> str:
    """Copy one member's data to ``dest``; returns its sha256.

    A write that fails (a full disk) stops the check as a refusal, not as a broken archive.
    """
    digest = hashlib.sha256()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = open(dest, "xb")
    except OSError as exc:
        raise _Refused(f"member {name!r}: cannot be extracted ({exc.strerror or exc})") from exc
    with out:
        for block in iter(lambda: source.read(_CHUNK), b""):
            digest.update(block)
            try:
                out.write(block)
            except OSError as exc:
                raise _Refused(f"member {name!r}: cannot be extracted "
                               f"({exc.strerror or exc})") from exc
    return digest.hexdigest()


def _scan(raw: BinaryIO, root: Path | None, limits: Limits, deadline: float, where: str,
          report: CheckReport) -> dict[str, tuple[str, int]]:
    """One pass over the archive: every member checked, and with ``root`` written there.

    Without ``root`` nothing is written and member data is only skipped, so a package is
    refused for its headers (names, types, sizes, count) before anything reaches the disk.
    A size or count over a limit stops the pass at that header, before its data is read.
    """
    archive_bytes = os.fstat(raw.fileno()).st_size
    expanded = limits.expanded_bytes(archive_bytes)
    hashes: dict[str, tuple[str, int]] = {}
    seen: set[str] = set()
    files: set[str] = set()
    folders: set[str] = set()
    total = count = 0
    stream = raw
    try:
        stream = _decompressed(raw)
        metered = _Metered(stream, expanded + _HEADER_ALLOWANCE, deadline, limits.seconds)
        with tarfile.TarFile(fileobj=metered, mode="r") as tar:  # type: ignore[call-overload]
            while (member := tar.next()) is not None:
                count += 1
                if count > limits.members:
                    raise _Refused(f"more than {limits.members:,} members; refused")
                if member.size > limits.member_bytes:
                    raise _Refused(f"member {member.name!r}: {member.size:,} bytes, over the "
                                   f"{limits.member_bytes:,}-byte limit; refused")
                total += max(member.size, 0)
                if total > expanded:
                    raise _Refused(f"members add up to more than {expanded:,} bytes (the limit "
                                   f"for a {archive_bytes:,}-byte archive); refused")
                name = "/".join(PurePosixPath(member.name).parts)
                problem = _member_problem(member, name)
                if problem is None and name in seen:
                    problem = "appears twice"
                if problem is None and _clash(name, member.isfile(), files, folders):
                    problem = "clashes with another member's path"
                if problem:
                    report.errors.append(f"{where}: member {member.name!r}: {problem}")
                    continue
                seen.add(name)
                if member.isfile() and root is not None:
                    source = tar.extractfile(member)
                    if source is None:
                        raise _Refused(f"member {member.name!r} cannot be read")
                    with source:
                        digest = _copy_member(source, root / name, member.name)
                    hashes[name] = (digest, member.size)
    except _Refused as exc:
        report.errors.append(f"{where}: {exc}")
    except RecursionError:
        report.errors.append(f"{where}: not a readable tar archive (extended headers chained "
                             "too deep)")
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError) as exc:
        # OSError: gzip.BadGzipFile and bz2's invalid data are OSErrors.
        report.errors.append(f"{where}: not a readable tar archive ({exc})")
    finally:
        if stream is not raw:
            stream.close()  # the decompressor only: raw is read again by the next pass
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
    deadline = time.monotonic() + limits.seconds
    report = CheckReport(str(archive))
    reports = [report]
    with _open_regular(archive) as raw, tempfile.TemporaryDirectory(
            prefix="greenperf-package-") as tmp:
        # Headers first, writing nothing; then, only for a package that passed, the data.
        _scan(raw, None, limits, deadline, str(archive), report)
        if report.errors:
            return reports
        root = Path(tmp)
        hashes = _scan(raw, root, limits, deadline, str(archive), report)
        if report.errors:
            return reports
        results = _manifest_files(root, hashes, str(archive), report)
        if report.errors:
            return reports
        if not results:
            report.errors.append(f"{archive}: holds no result files under <org>/results/")
        prefix = str(root) + os.sep
        for i, name in enumerate(results):
            if time.monotonic() > deadline:
                report.errors.append(f"{archive}: checking stopped after {limits.seconds:g} s "
                                     f"(the limit); {len(results) - i} result(s) unchecked")
                break
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
