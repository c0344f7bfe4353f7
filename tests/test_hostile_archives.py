"""``greenperf check`` on hostile submission archives: every shape is refused with one line
naming the archive, in bounded time, writing nothing (or at most the byte budget) to disk.

The archives are built by hand, byte by byte where tarfile would not write them. Bombs are
concatenated gzip members of one compressed MiB of zeros, so they cost nothing to build.
"""

from __future__ import annotations

import gzip
import lzma
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from greenperf import package
from greenperf.cli import main
from greenperf.errors import UsageError
from greenperf.package import MANIFEST, Limits, verify_package

MIB = 1 << 20
END = bytes(1024)  # two zero blocks: the end of a tar archive
_ZEROS_GZ = gzip.compress(bytes(MIB), compresslevel=9, mtime=0)


def header(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, linkname: str = "",
           fmt: int = tarfile.GNU_FORMAT, pax: dict[str, str] | None = None) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mode = size, kind, linkname, 0o644
    info.pax_headers = pax or {}
    return info.tobuf(format=fmt, encoding="utf-8", errors="surrogateescape")


def member(name: str, data: bytes = b"", **kwargs) -> bytes:
    return header(name, len(data), **kwargs) + data + bytes(-len(data) % 512)


def gz(*parts: bytes) -> bytes:
    return gzip.compress(b"".join(parts), mtime=0)


def zeros_member_gz(name: str, mib: int) -> bytes:
    """A gzip stream of a member of ``mib`` MiB of zeros: a few kB for any size."""
    return gz(header(name, mib * MIB)) + _ZEROS_GZ * mib


def sparse(name: str, realsize: int) -> bytes:
    """An old-GNU sparse member: one stored byte at the end of ``realsize`` bytes."""
    info = tarfile.TarInfo(name)
    info.type, info.size = tarfile.GNUTYPE_SPARSE, 1
    buf = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    buf[386:398] = b"%011o\0" % (realsize - 1)           # sparse[0].offset
    buf[398:410] = b"%011o\0" % 1                        # sparse[0].numbytes
    buf[483:495] = b"\x80" + realsize.to_bytes(11, "big")  # realsize, base-256
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf) + b"x" + bytes(511)


def negative_size(name: str) -> bytes:
    buf = bytearray(header(name))
    buf[124:136] = b"\xff" * 12  # base-256 -1
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf)


def chain(kind: bytes, count: int) -> bytes:
    """``count`` extended headers in a row: tarfile reads them recursively."""
    if kind == tarfile.XHDTYPE:
        record = b"12 path=ab\n"
        one = header("pax", len(record), kind) + record + bytes(512 - len(record))
    else:
        one = header("././@LongLink", 5, kind) + b"abcd\0" + bytes(507)
    return one * count + member("x")


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty file": (lambda: b"", "not a readable tar archive (empty file)"),
    "gzip of text": (lambda: gz(b"not a tar\n" * 100), "not a readable tar archive"),
    "truncated gzip": (lambda: gz(member("a", os.urandom(4000)), END)[:1500],
                       "not a readable tar archive"),
    "truncated tar": (lambda: (member("a", b"x" * 5000) + END)[:3000],
                      "not a readable tar archive (unexpected end of data)"),
    "plain tar named .tar.gz": (lambda: member("a", b"x") + END,
                                f"member {MANIFEST!r} is missing"),
    "zero-length members": (lambda: gz(member(MANIFEST), member("a"), END),
                            f"member {MANIFEST!r}: not valid JSON"),
    "dot-dot": (lambda: gz(member("../x", b"x"), END), "leaves the package root"),
    "absolute": (lambda: gz(member("/tmp/greenperf-x", b"x"), END), "leaves the package root"),
    "NUL in a PAX path": (lambda: gz(member("x", b"x", fmt=tarfile.PAX_FORMAT,
                                            pax={"path": "a\x00b"}), END),
                          "leaves the package root"),
    "control character": (lambda: gz(member("a\x1b[2Jb", b"x"), END),
                          "characters a package never uses"),
    "undecodable name": (lambda: gz(member("a\udcffb", b"x"), END),
                         "characters a package never uses"),
    "hard link to an earlier member": (
        lambda: gz(member("a.txt", b"hi"), header("b.txt", 0, tarfile.LNKTYPE, "a.txt"), END),
        "hard link (to 'a.txt') refused"),
    "symbolic link": (lambda: gz(header("s", 0, tarfile.SYMTYPE, "/etc/passwd"), END),
                      "symbolic link"),
    "FIFO member": (lambda: gz(header("p", 0, tarfile.FIFOTYPE), END), "device or FIFO"),
    "device member": (lambda: gz(header("d", 0, tarfile.CHRTYPE), END), "device or FIFO"),
    "small sparse member": (lambda: gz(sparse("s", 4096), END), "sparse file refused"),
    "huge sparse member": (lambda: gz(sparse("s", 1 << 40), END),
                           "1,099,511,627,776 bytes, over the"),
    "negative size": (lambda: gz(negative_size("n"), END), "negative size"),
    "PAX header of 2 GiB": (lambda: gz(header("pax", 2048 * MIB, tarfile.XHDTYPE)) + _ZEROS_GZ,
                            "a tar header asks for 2,147,483,648 bytes"),
    "PAX size record of 1e20": (
        lambda: gz(member("x", fmt=tarfile.PAX_FORMAT, pax={"size": "9" * 20}), END),
        "99,999,999,999,999,999,999 bytes, over the"),
    "GNU long name of 1 GiB": (lambda: gz(header("L", 1024 * MIB, tarfile.GNUTYPE_LONGNAME))
                               + _ZEROS_GZ, "a tar header asks for 1,073,741,824 bytes"),
    "5000 chained long names": (lambda: gz(chain(tarfile.GNUTYPE_LONGNAME, 5000), END),
                                "chained too deep"),
    "5000 chained PAX headers": (lambda: gz(chain(tarfile.XHDTYPE, 5000), END),
                                 "chained too deep"),
    "folder then a file of that name": (lambda: gz(header("a", 0, tarfile.DIRTYPE),
                                                   member("a", b"x"), END), "appears twice"),
    "file then a file below it": (lambda: gz(member("a", b"x"), member("a/b", b"y"), END),
                                  "clashes with another member's path"),
    "file where a folder was": (lambda: gz(member("a/b", b"y"), member("a", b"x"), END),
                                "clashes with another member's path"),
    "nested archive": (lambda: gz(member("inner.tar.gz", gz(member(MANIFEST, b"{}"), END)),
                                  END), f"member {MANIFEST!r} is missing"),
    "1001 members": (lambda: gz(b"".join(member(f"m/{i}") for i in range(1001)), END),
                     "more than 1,000 members; refused"),
    "a member over 128 MiB": (lambda: zeros_member_gz("big.txt", 200),
                              "209,715,200 bytes, over the 134,217,728-byte limit"),
    "a compression bomb": (lambda: zeros_member_gz("a", 10) + zeros_member_gz("b", 10),
                           "members add up to more than 16,777,216 bytes (the limit for a"),
    "xz of zeros": (lambda: lzma.compress(bytes(8 * MIB)), f"member {MANIFEST!r} is missing"),
}


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes of every member written to disk while checking."""
    sizes: list[int] = []
    copy = package._copy_member

    def recording(source, dest, name):
        digest = copy(source, dest, name)
        sizes.append(dest.stat().st_size)
        return digest

    monkeypatch.setattr(package, "_copy_member", recording)
    return sizes


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_in_one_line(case: str, tmp_path: Path,
                                               written: list[int]) -> None:
    build, expected = HOSTILE[case]
    archive = tmp_path / "hostile.tar.gz"
    archive.write_bytes(build())
    report = verify_package(archive, run_compliance=False)[0]
    assert not report.ok
    assert any(expected in e for e in report.errors), report.errors
    assert all(e.startswith(f"{archive}: ") and "\n" not in e for e in report.errors)
    # Refused on its headers, before anything is written; a refused member is never written.
    if "missing" not in expected and "not valid JSON" not in expected:
        assert written == []


def test_cli_check_refuses_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(zeros_member_gz("a", 200))
    assert main(["check", str(archive), "--no-compliance"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL {archive}") and "over the 134,217,728-byte limit" in out


def test_writes_stop_at_the_byte_budget(tmp_path: Path, written: list[int]) -> None:
    limits = Limits(total_bytes=4 * MIB, ratio_floor=4 * MIB)
    under = tmp_path / "under.tar.gz"
    under.write_bytes(b"".join(zeros_member_gz(f"m{i}", 1) for i in range(3)) + gz(END))
    report = verify_package(under, limits, run_compliance=False)[0]
    assert any("is missing: not a greenperf package" in e for e in report.errors)
    assert sum(written) == 3 * MIB  # valid headers: written, within the budget
    written.clear()
    over = tmp_path / "over.tar.gz"
    over.write_bytes(b"".join(zeros_member_gz(f"m{i}", 1) for i in range(5)) + gz(END))
    report = verify_package(over, limits, run_compliance=False)[0]
    assert report.errors == [f"{over}: members add up to more than 4,194,304 bytes (the limit "
                             f"for a {over.stat().st_size:,}-byte archive); refused"]
    assert written == []


def test_headers_past_the_allowance_are_refused(tmp_path: Path) -> None:
    # Each PAX header is small, but together they exceed what a package's headers need.
    record = b"%d comment=%s\n" % (len(b"comment=") + 1 + 4 + 600_000, b"x" * 600_000)
    one = header("pax", len(record), tarfile.XHDTYPE) + record + bytes(-len(record) % 512)
    archive = tmp_path / "headers.tar.gz"
    archive.write_bytes(gz(b"".join(one + member(f"m{i}") for i in range(50)), END))
    report = verify_package(archive, run_compliance=False)[0]
    assert any("expands to more than" in e for e in report.errors), report.errors


def test_reading_stops_at_the_time_limit(tmp_path: Path) -> None:
    archive = tmp_path / "slow.tar.gz"
    archive.write_bytes(gz(member("a", b"x"), END))
    report = verify_package(archive, Limits(seconds=1e-6), run_compliance=False)[0]
    assert any("took over 1e-06 s; refused" in e for e in report.errors), report.errors


def _finishes(call: Callable[[], object], seconds: float = 60) -> BaseException | None:
    """Run ``call`` in a thread; the exception it raised. Fails if it does not finish."""
    box: list[BaseException | None] = [None]

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box[0] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hangs"
    return box[0]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero symlink", "folder", "missing"])
def test_archive_path_that_is_not_a_regular_file(kind: str, tmp_path: Path) -> None:
    archive = tmp_path / "x.tar.gz"
    if kind == "fifo":
        os.mkfifo(archive)
    elif kind == "dev-zero symlink":
        archive.symlink_to("/dev/zero")
    elif kind == "folder":
        archive.mkdir()
    error = _finishes(lambda: verify_package(archive, run_compliance=False))
    assert isinstance(error, UsageError) and error.exit_code == 2
    assert str(error).startswith(f"{archive}: ")
    assert ("no such file" if kind == "missing" else "not a regular file") in str(error)


@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_check_refuses_an_archive_name_that_is_not_a_regular_file(tmp_path, kind):
    path = tmp_path / "submission.tar.gz"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    proc = subprocess.run([sys.executable, "-m", "greenperf.cli", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "not a regular file" in proc.stderr and "Traceback" not in proc.stderr
