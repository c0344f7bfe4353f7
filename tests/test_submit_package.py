"""Submission packages: ``greenperf submit`` packs MLPerf-style; ``greenperf check`` on a
package refuses unsafe or tampered archives (each built by hand here) before checking the
results inside."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error
from greenperf.package import MANIFEST, Limits, build_package, verify_package
from greenperf.progress import Progress
from greenperf.results import checksum_problem, read_result, write_result
from greenperf.runner import RunRequest, run_workload
from greenperf.workload import get_workload

SYSTEM_TOML = """
submitter = "ACME Labs"
system_name = "acme-ws-1"
host_processor_model_name = "Test CPU 9000"
[human_effort]
porting_hours = 6
tuning_hours = 2
hourly_rate = 95
currency = "EUR"
"""
BENCH = "ACME_Labs/results/acme-ws-1/toy"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real five-run result of the test workload, with a declared system description."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("submit")
    (root / "system.toml").write_text(SYSTEM_TOML)
    run_workload(RunRequest(workload=get_workload("toy"), scale="tiny", runs=5,
                            out_dir=root / "results", system_file=root / "system.toml",
                            progress=Progress(enabled=False)))
    return root / "results"


@pytest.fixture(scope="module")
def package(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "submission.tar.gz"
    summary = build_package(results, out)
    assert summary.org == "ACME_Labs" and summary.results == [f"{BENCH}/toy_tiny_training.json"]
    return out


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def test_package_mirrors_the_mlperf_layout(package: Path, tmp_path: Path) -> None:
    files = members(package)
    assert sorted(files) == sorted(
        [MANIFEST, "ACME_Labs/systems/acme-ws-1.json", f"{BENCH}/toy_tiny_training.json"]
        + [f"{BENCH}/result_{k}.txt" for k in range(1, 6)])
    manifest = json.loads(files[MANIFEST])
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(files) - {MANIFEST}
    for name, data in files.items():
        if name != MANIFEST:
            assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest()
            assert listed[name]["bytes"] == len(data)
    system = json.loads(files["ACME_Labs/systems/acme-ws-1.json"])
    assert system["submitter"] == "ACME Labs" and system["system_name"] == "acme-ws-1"
    assert system["host_processor_model_name"] == "Test CPU 9000"   # declared wins
    assert "host_processor_vcpu_count" in system["greenperf"]["fields_from_auto"]
    assert system["greenperf"]["human_effort"]["porting_hours"] == 6
    # The result's log paths follow the package layout and its checksum is valid again.
    (tmp_path / "r.json").write_bytes(files[f"{BENCH}/toy_tiny_training.json"])
    doc = read_result(tmp_path / "r.json")
    assert checksum_problem(doc) is None
    assert [r["log"]["path"] for r in doc["phases"][0]["runs"]] == [
        f"result_{k}.txt" for k in range(1, 6)]
    for run in doc["phases"][0]["runs"]:
        assert hashlib.sha256(files[f"{BENCH}/{run['log']['path']}"]).hexdigest() == \
            run["log"]["sha256"]


def test_check_accepts_the_package_and_checks_its_results(package: Path, run_cli) -> None:
    proc = run_cli("check", str(package))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"OK   {package}"
    assert f"OK   {package}:{BENCH}/toy_tiny_training.json" in lines
    assert "official compliance checker ran on 5 train log(s)" in proc.stdout


def repack(source: Path, out: Path, drop: tuple[str, ...] = (),
           change: dict[str, bytes] | None = None, add: list[tarfile.TarInfo] | None = None,
           add_data: dict[str, bytes] | None = None, manifest_too: bool = False) -> Path:
    """A copy of ``source`` with members dropped, changed or added, by hand.

    With ``manifest_too`` the manifest is rewritten to match, so only the other checks can
    catch the change.
    """
    files = {n: d for n, d in members(source).items() if n not in drop}
    files.update(change or {})
    if manifest_too:
        manifest = json.loads(files[MANIFEST])
        manifest["files"] = [{"path": n, "sha256": hashlib.sha256(d).hexdigest(),
                              "bytes": len(d)} for n, d in sorted(files.items())
                             if n != MANIFEST]
        files[MANIFEST] = json.dumps(manifest).encode()
    with tarfile.open(out, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in add or []:
            tar.addfile(info)
        for name, data in (add_data or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


REFUSALS = {
    "dot-dot path": (dict(add_data={"../evil.txt": b"x"}), "member '../evil.txt'",
                     "leaves the package root"),
    "nested dot-dot": (dict(add_data={"ACME_Labs/../../evil.txt": b"x"}),
                       "member 'ACME_Labs/../../evil.txt'", "leaves the package root"),
    "absolute path": (dict(add_data={"/tmp/evil.txt": b"x"}), "member '/tmp/evil.txt'",
                      "leaves the package root"),
    "symlink": (dict(add=[special(f"{BENCH}/link.txt", tarfile.SYMTYPE, "/etc/passwd")]),
                f"member '{BENCH}/link.txt'", "symbolic link"),
    "hard link": (dict(add=[special(f"{BENCH}/hard.txt", tarfile.LNKTYPE, "/etc/passwd")]),
                  f"member '{BENCH}/hard.txt'", "hard link"),
    "device": (dict(add=[special("dev/sda", tarfile.BLKTYPE)]), "member 'dev/sda'",
               "device or FIFO"),
    "char device": (dict(add=[special("null", tarfile.CHRTYPE)]), "member 'null'",
                    "device or FIFO"),
    "fifo": (dict(add=[special("pipe", tarfile.FIFOTYPE)]), "member 'pipe'", "device or FIFO"),
    "hash mismatch": (dict(change={f"{BENCH}/result_3.txt": b":::MLLOG forged\n"}),
                      f"member '{BENCH}/result_3.txt'", "sha256 does not match the manifest"),
    "extra file": (dict(add_data={f"{BENCH}/extra.txt": b"surprise"}),
                   f"member '{BENCH}/extra.txt'", "not in the manifest"),
    "missing file": (dict(drop=(f"{BENCH}/result_2.txt",)), f"member '{BENCH}/result_2.txt'",
                     "listed in the manifest but missing"),
    "duplicate": (dict(add_data={f"{BENCH}/result_1.txt": b"second copy"}),
                  f"member '{BENCH}/result_1.txt'", "appears twice"),
    "no manifest": (dict(drop=(MANIFEST,)), f"member '{MANIFEST}'", "missing"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_check_refuses_unsafe_or_tampered_packages(case: str, package: Path,
                                                   tmp_path: Path) -> None:
    changes, member, problem = REFUSALS[case]
    bad = repack(package, tmp_path / "bad.tar.gz", **changes)
    report = verify_package(bad, run_compliance=False)[0]
    assert not report.ok
    line = next((e for e in report.errors if member in e), None)
    assert line is not None and problem in line and "\n" not in line, report.errors
    assert line.startswith(str(bad))


def test_oversized_member_is_refused_with_a_configurable_limit(package: Path, tmp_path: Path,
                                                                run_cli) -> None:
    report = verify_package(package, Limits(member_bytes=5_000), run_compliance=False)[0]
    # Reading stops at the first member over the limit: its data is never decompressed.
    [error] = report.errors
    assert f"member '{BENCH}/result_1.txt'" in error and "over the 5,000-byte limit" in error
    proc = run_cli("check", str(package), "--no-compliance", "--max-member-bytes", "5000")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "over the 5,000-byte limit" in proc.stdout


def test_refused_package_is_never_extracted(package: Path, tmp_path: Path, run_cli) -> None:
    target = tmp_path / "evil.txt"
    bad = repack(package, tmp_path / "bad.tar.gz", add_data={str(target): b"pwned"})
    proc = run_cli("check", str(bad), "--no-compliance")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"FAIL {bad}" in proc.stdout and "leaves the package root" in proc.stdout
    assert not target.exists()


def test_a_consistent_but_edited_result_fails_the_result_checks(package: Path,
                                                                 tmp_path: Path) -> None:
    name = f"{BENCH}/toy_tiny_training.json"
    doc = json.loads(members(package)[name])
    doc["phases"][0]["runs"][0]["tta_seconds"] = 0.001  # faster than it was
    bad = repack(package, tmp_path / "bad.tar.gz", change={name: json.dumps(doc).encode()},
                 manifest_too=True)
    reports = verify_package(bad, run_compliance=False)
    assert reports[0].ok, reports[0].errors
    assert any("checksum" in e for e in reports[1].errors), reports[1].errors
    assert reports[1].path == f"{bad}:{name}"
    # Messages name the package member, never the temporary folder it was checked in.
    assert all("greenperf-package-" not in e for e in reports[1].errors)


def test_not_an_archive_is_a_clean_failure(tmp_path: Path, run_cli) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b not really gzip")
    proc = run_cli("check", str(junk))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "not a readable tar archive" in proc.stdout


def test_submit_needs_an_organisation(results: Path, tmp_path: Path, run_cli) -> None:
    anonymous = tmp_path / "anonymous"
    shutil.copytree(results, anonymous)
    path = anonymous / "toy_tiny_training.json"
    doc = json.loads(path.read_text())
    doc["system"]["declared"].pop("submitter")
    write_result(path, doc)
    proc = run_cli("submit", str(anonymous), "-o", str(tmp_path / "s.tar.gz"))
    assert_one_line_error(proc, "--org", "no result declares a submitter")
    proc = run_cli("submit", str(anonymous), "-o", str(tmp_path / "s.tar.gz"), "--org",
                   "Some Org")
    assert proc.returncode == 0, proc.stderr
    assert any(n.startswith("Some_Org/systems/") for n in members(tmp_path / "s.tar.gz"))


def test_submit_refuses_edited_results_and_changed_logs(results: Path, tmp_path: Path,
                                                        run_cli) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(results, edited)
    path = edited / "toy_tiny_training.json"
    path.write_text(path.read_text().replace('"division": "closed"', '"division": "open"', 1))
    proc = run_cli("submit", str(edited), "-o", str(tmp_path / "s.tar.gz"))
    assert_one_line_error(proc, "toy_tiny_training.json", "checksum")
    changed = tmp_path / "changed"
    shutil.copytree(results, changed)
    log = changed / "logs" / "toy_tiny" / "train" / "result_2.txt"
    log.write_text(log.read_text() + "\n")
    proc = run_cli("submit", str(changed), "-o", str(tmp_path / "s.tar.gz"))
    assert_one_line_error(proc, "runs[1].log", "changed after the run")
    assert not (tmp_path / "s.tar.gz").exists()


def test_other_compressions_of_a_package_verify(package: Path, tmp_path: Path) -> None:
    import bz2
    import gzip
    import lzma

    raw = gzip.decompress(package.read_bytes())
    for suffix, compress in ((".tar", bytes), (".tar.xz", lzma.compress),
                             (".tar.bz2", bz2.compress)):
        other = tmp_path / f"submission{suffix}"
        other.write_bytes(compress(raw))
        reports = verify_package(other, run_compliance=False)
        assert all(r.ok for r in reports), [r.errors for r in reports]


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "below a file"])
def test_submit_writes_only_regular_files_or_new_paths(kind: str, results: Path,
                                                       tmp_path: Path, run_cli) -> None:
    import os
    import stat

    out = tmp_path / "out.tar.gz"
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "device":  # /dev/full as root: os.replace would swap the node for the package
        try:
            os.mknod(out, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        except PermissionError:
            pytest.skip("creating a device node needs root")
    elif kind == "folder":
        out.mkdir()
    else:
        (tmp_path / "somefile").write_text("x")
        out = tmp_path / "somefile" / "sub.tar.gz"
    before = out.lstat().st_mode if out.exists() else None
    proc = run_cli("submit", str(results), "-o", str(out))
    assert proc.returncode == 2
    problem = {"fifo": "not a regular file", "device": "not a regular file",
               "folder": "is a folder", "below a file": "a folder on that path is a file"}[kind]
    assert_one_line_error(proc, f"-o {out}", problem)
    if before is not None:
        assert out.lstat().st_mode == before  # untouched
    assert not list(tmp_path.glob(".out.tar.gz.*.tmp"))


def test_submit_into_a_folder_it_cannot_write(results: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # chmod cannot stop root, so the refusal is simulated where the package is created.
    import tempfile

    from greenperf.cli import main

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "ro" / "sub.tar.gz"
    assert main(["submit", str(results), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"greenperf: error: -o {out}: cannot write there (Permission denied)"


def test_submit_refuses_a_package_check_would_refuse(results: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys) -> None:
    from greenperf import package as package_module
    from greenperf.cli import main

    monkeypatch.setattr(package_module, "Limits", lambda: Limits(members=3))
    out = tmp_path / "s.tar.gz"
    assert main(["submit", str(results), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the package would hold 8 files" in err and "check accepts 3 files" in err
    assert not out.exists()
