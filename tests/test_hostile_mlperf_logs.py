"""``greenperf score`` and ``greenperf import-mlperf`` on hostile MLPerf folders: no traceback,
no hang, valid JSON without NaN or Infinity, every refusal one line naming its file, and an
import that fails leaves nothing behind.

Each case is a copy of the official fixture folder with one thing broken. Commands run in
process through ``greenperf.cli.main``. The official compliance checker is real, with its
verdicts cached by file content (an unchanged fixture log is checked once); the seeded fuzz
test stubs it, after a few real variants, to run hundreds of cases in seconds.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from greenperf import mlperf_score
from greenperf.cli import main
from greenperf.mlperf_import import _read_run_log
from greenperf.mlperf_score import _read_log_facts
from greenperf.results import checksum_problem, read_result

FIXTURE = Path(__file__).parent / "fixtures" / "mlperf_training_v4.0" / "ASUSTeK"
SYSTEM = "ESC8000A-E12-8xH100-PCIE-80GB"
OFFICIAL_SCORE = 20.743633333333335
CASE_SECONDS = 120  # per command: generous on a busy machine; only a hang reaches it

_real_compliance = mlperf_score._run_compliance
_verdicts: dict[tuple[Any, ...], tuple[bool, tuple[str, ...]]] = {}


def _cached_compliance(file: Path, usage: str, ruleset: str, config: Path | None,
                       scratch: Path) -> tuple[bool, tuple[str, ...]]:
    key = (hashlib.sha256(file.read_bytes()).hexdigest(), usage, ruleset,
           config and Path(config).read_bytes())
    if key not in _verdicts:
        _verdicts[key] = _real_compliance(file, usage, ruleset, config, scratch)
    return _verdicts[key]


@pytest.fixture(autouse=True)
def cached_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mlperf_score, "_run_compliance", _cached_compliance)


class Hang(BaseException):
    """Not an Exception: no ``except`` in the code under test can swallow it."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"over {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in JSON output")


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, Any, str]:
    """rc, the parsed JSON on stdout (None if none), stderr; fails on NaN or Infinity."""
    with time_limit(CASE_SECONDS):
        rc = main(list(argv))
    captured = capsys.readouterr()
    data = json.loads(captured.out, parse_constant=_no_constant) if captured.out.strip() \
        else None
    return rc, data, captured.err


def one_line(err: str, root: Path) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("greenperf: error: ") and str(root) in lines[0], lines[0]
    return lines[0]


def org_copy(root: Path) -> tuple[Path, Path]:
    """A fresh copy of the fixture org under a path naming training 4.0; (org, resnet)."""
    org = root / "training_results_v4.0" / "ASUSTeK"
    shutil.copytree(FIXTURE, org)
    return org, org / "results" / SYSTEM / "resnet"


def edit(path: Path, change: Callable[[str], str]) -> None:
    text = path.read_text(encoding="latin-1")
    changed = change(text)
    assert changed != text
    path.write_text(changed, encoding="latin-1")


def set_time(key: str, literal: str | Callable[[int], str]) -> Callable[[Path, Path], None]:
    """Replace the time_ms of the first ``key`` line of result_1.txt."""
    def mutate(org: Path, bench: Path) -> None:
        def change(text: str) -> str:
            lines = text.split("\n")
            i = next(k for k, line in enumerate(lines) if f'"key": "{key}"' in line)
            record = json.loads(lines[i].split(":::MLLOG ", 1)[1])
            new = literal(record["time_ms"]) if callable(literal) else literal
            lines[i] = lines[i].replace(f'"time_ms": {record["time_ms"]}', f'"time_ms": {new}')
            return "\n".join(lines)
        edit(bench / "result_1.txt", change)
    return mutate


def append(line: str) -> Callable[[Path, Path], None]:
    return lambda org, bench: edit(bench / "result_1.txt", lambda t: t + line + "\n")


def write(relative: str, text: str) -> Callable[[Path, Path], None]:
    def mutate(org: Path, bench: Path) -> None:
        target = bench / relative if relative == "scaling.json" else org / relative
        target.write_text(text, encoding="utf-8")
    return mutate


SYSTEMS = f"systems/{SYSTEM}.json"
DEEP = "[" * 100_000 + "]" * 100_000
# case: (mutation, score: rc and what stdout or stderr says, import: rc and what it says)
OBSERVED: dict[str, tuple[Callable[[Path, Path], None], tuple[int, str], tuple[int, str]]] = {
    "a line nested 100,000 deep": (
        lambda org, bench: edit(bench / "result_1.txt", lambda t: f":::MLLOG {DEEP}\n" + t),
        (1, "line 1: longer than 65,536 characters"), (0, "")),
    "a line nested 30,000 deep": (
        lambda org, bench: edit(bench / "result_1.txt",
                                lambda t: t + ":::MLLOG " + "[" * 30_000 + "]" * 30_000 + "\n"),
        (1, "line 346: JSON nested too deeply"), (0, "")),
    'time_ms "NaN"': (set_time("run_start", '"NaN"'), (1, 'time_ms "NaN" is not a time'),
                      (0, "")),
    'time_ms "1e400"': (set_time("run_start", '"1e400"'), (1, 'time_ms "1e400" is not a time'),
                        (0, "")),
    "time_ms NaN literal": (set_time("run_stop", "NaN"), (1, "time_ms NaN is not a time"),
                            (0, "")),
    "time_ms true": (set_time("run_stop", "true"), (1, "time_ms true is not a time"), (0, "")),
    "run_stop before run_start": (set_time("run_stop", lambda t: str(t - 30 * 60_000)),
                                  (1, "is not after run_start"), (0, "")),
    "NaN eval_accuracy": (
        lambda org, bench: edit(bench / "result_1.txt", lambda t: t.replace(
            '"key": "eval_accuracy", "value": 0.', '"key": "eval_accuracy", "value": NaN, '
            '"x": 0.', 1)), (0, ""), (0, "")),
    "NaN scaling_factor": (write("scaling.json", '{"scaling_factor": NaN}'),
                           (1, "field scaling_factor: NaN is not a positive finite number"),
                           (1, "field scaling_factor")),
    "1e308 scaling_factor": (write("scaling.json", '{"scaling_factor": 1e308}'),
                             (1, "times the scaling factor 1e+308 is not a finite number"),
                             (0, "")),
    "negative scaling_factor": (write("scaling.json", '{"scaling_factor": -1}'),
                                (1, "-1 is not a positive finite number"),
                                (1, "field scaling_factor")),
    "zero scaling_factor": (write("scaling.json", '{"scaling_factor": 0}'),
                            (1, "0 is not a positive finite number"),
                            (1, "field scaling_factor")),
    "scaling.json nested deep": (write("scaling.json", DEEP), (1, "nested too deeply"),
                                 (1, "nested too deeply")),
    "lone surrogate in systems JSON": (
        lambda org, bench: edit(org / SYSTEMS, lambda t: t.replace('"ASUSTeK"',
                                                                   '"ASUS\\ud800"', 1)),
        (0, ""), (1, "lone UTF-16 surrogate")),
    "systems JSON nested deep": (write(SYSTEMS, '{"a": ' + DEEP + "}"), (0, ""),
                                 (1, "nested too deeply")),
    "NaN in systems JSON": (write(SYSTEMS, '{"submitter": NaN}'), (0, ""),
                            (1, "NaN or Infinity")),
    "a non-object line": (append(":::MLLOG [1, 2]"), (1, "not a JSON object"), (0, "")),
    "a line missing a field": (append(':::MLLOG {"time_ms": 1, "key": "x", "value": 1}'),
                               (1, "no 'metadata' field"), (0, "")),
    "an over-long line": (append(":::MLLOG " + "x" * 70_000), (1, "longer than 65,536"),
                          (0, "")),
    "a benchmark name that leaves the folder": (
        lambda org, bench: [edit(log, lambda t: t.replace('"value": "resnet"',
                                                          '"value": "../../evil"', 1))
                            for log in bench.glob("result_*.txt")],
        (1, "is not a benchmark name"), (1, "is not a benchmark name")),
    "logs naming different benchmarks": (
        lambda org, bench: edit(bench / "result_2.txt", lambda t: t.replace(
            '"value": "resnet"', '"value": "bert"', 1)),
        (1, 'different benchmarks: "bert" (result_2.txt), "resnet" (result_1.txt)'),
        (1, "different benchmarks")),
    "a FIFO named like a log": (lambda org, bench: os.mkfifo(bench / "result_6.txt"),
                                (0, ""), (0, "")),
}


@pytest.mark.parametrize("case", list(OBSERVED))
def test_observed_hostile_input(case: str, tmp_path: Path, capsys) -> None:
    mutate, (score_rc, score_says), (import_rc, import_says) = OBSERVED[case]
    org, bench = org_copy(tmp_path)
    mutate(org, bench)

    rc, report, err = run(capsys, "score", str(bench), "--json")
    assert rc == score_rc, err
    if report is None:
        assert score_says in one_line(err, tmp_path)
    else:
        assert not err
        said = [report["reason"] or ""] + [r["drop_reason"] or "" for r in report["runs"]]
        assert score_says in " | ".join(said), said
        if rc == 0:
            assert report["score_minutes"] == OFFICIAL_SCORE

    out = tmp_path / "imported"
    rc, summary, err = run(capsys, "import-mlperf", str(org), "-o", str(out), "--json")
    assert rc == import_rc, err
    if rc:
        assert import_says in one_line(err, tmp_path)
        assert not [p for p in out.rglob("*") if p.is_file()]  # nothing left behind
    else:
        assert not err
        [item] = summary
        doc = read_result(Path(item["result"]))  # the reader greenperf check uses
        assert checksum_problem(doc) is None


def test_nan_eval_accuracy_is_a_null_metric(tmp_path: Path, capsys) -> None:
    org, bench = org_copy(tmp_path)
    OBSERVED["NaN eval_accuracy"][0](org, bench)
    rc, [item], _ = run(capsys, "import-mlperf", str(org), "-o", str(tmp_path / "out"),
                        "--json")
    curve = read_result(Path(item["result"]))["phases"][0]["runs"][0]["eval_curve"]
    assert curve[0]["metric"] is None and all(p["metric"] is not None for p in curve[1:])


def test_a_failed_import_keeps_the_previous_one(tmp_path: Path, capsys) -> None:
    org, bench = org_copy(tmp_path)
    out = tmp_path / "imported"
    rc, [item], _ = run(capsys, "import-mlperf", str(org), "-o", str(out), "--json")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # A second benchmark folder with the same benchmark fails the whole import.
    shutil.copytree(bench, bench.parent / "resnet-copy")
    rc, _, err = run(capsys, "import-mlperf", str(org), "-o", str(out), "--json")
    assert rc == 1 and "imports to the same result as another folder" in one_line(err, tmp_path)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    (bench / "scaling.json").write_text('{"scaling_factor": 0}')
    rc, _, err = run(capsys, "import-mlperf", str(bench.parent / "resnet-copy"), "-o",
                     str(out), "--json")
    assert rc == 0  # the copy alone imports, replacing the result and its logs
    assert read_result(Path(item["result"]))["imported"]["folder"].endswith("resnet-copy")


def test_a_log_with_too_many_evals_is_refused(tmp_path: Path, capsys,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from greenperf import mlperf_import

    monkeypatch.setattr(mlperf_import, "MAX_EVALS", 3)  # the fixture logs have 9
    org, bench = org_copy(tmp_path)
    out = tmp_path / "imported"
    rc, _, err = run(capsys, "import-mlperf", str(org), "-o", str(out))
    assert rc == 1 and "result_1.txt: more than 3 eval_accuracy lines" in one_line(err, tmp_path)
    assert not [p for p in out.rglob("*") if p.is_file()]


# -- streaming: memory, not time --------------------------------------------------------------


def test_a_50_mb_log_streams_in_bounded_memory(tmp_path: Path) -> None:
    org, bench = org_copy(tmp_path)
    log = bench / "result_1.txt"
    lines = log.read_bytes().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if b'"key": "run_start"' in line)
    filler = (b':::MLLOG {"namespace": "", "time_ms": 1715251919965, "event_type": '
              b'"POINT_IN_TIME", "key": "tracked_stats", "value": {"throughput": 12345.6}, '
              b'"metadata": {"file": "train.py", "lineno": 1, "step": 1}}\r\n')
    with open(log, "wb") as out:
        out.writelines(lines[: i + 1])
        for _ in range(50 * 2**20 // len(filler) // 1000):
            out.write(filler * 1000)
        out.writelines(lines[i + 1 :])
    assert log.stat().st_size > 50_000_000

    tracemalloc.start()
    try:
        facts = _read_log_facts(log)
        run = mlperf_score._run_score(log, facts, True, ())
        summary = _read_run_log(log, run)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Reading the file whole took 1.6x its size (and the import's event list 8x).
    assert peak < 4 * 2**20, f"peak {peak:,} bytes for a {log.stat().st_size:,}-byte log"
    assert run.minutes == (facts.run_stop_ms - facts.run_start_ms) / 60 / 1000
    assert len(summary.evals) == 9


# -- seeded fuzz ------------------------------------------------------------------------------

HOSTILE_VALUES: list[Any] = [
    math.nan, math.inf, -math.inf, 1e308, -1, 0, 2**64, -(2**63), 10**30, True, False, None,
    "", "NaN", "1e400", "12", [], {}, [1, [2, [3]]], {"a": {"b": None}}, "x" * 3000,
    "\ud800", "é\x00\x1b", 0.5,
]
KEYS = ["run_start", "run_stop", "eval_accuracy", "submission_benchmark", "seed",
        "train_samples", "global_batch_size", "init_start", "init_stop", "eval_start",
        "eval_stop", "opt_base_learning_rate", "submission_division", "submission_org"]
FIELDS = ["time_ms", "key", "value", "metadata", "event_type", "namespace"]
META = ["status", "samples_count", "epoch_num", "file", "lineno"]
SCALING = ['{"scaling_factor": NaN}', '{"scaling_factor": 0}', '{"scaling_factor": -2}',
           '{"scaling_factor": 1e308}', '{"scaling_factor": "2"}', "[]", "{}", "not json",
           '{"scaling_factor": true}', '{"scaling_factor": 1.5}', "\ufeff{}"]
SYSTEMS_TEXT = ['{"submitter": NaN}', '{"system_name": "\\ud800"}', "[" * 5000, "[]", '"x"',
                '{"division": {"x": 1}}', '{"system_name": 5, "division": "open"}',
                '{"system_name": "../../etc"}', '{"other_software_stack": {"a": Infinity}}']


def _mutate_line(line: str, rng: random.Random) -> str | None:
    """One hostile change to one line; None deletes it."""
    token = ":::MLLOG "
    if token not in line or rng.random() < 0.15:
        choice = rng.randrange(5)
        if choice == 0:
            return None
        if choice == 1:
            return token + rng.choice(["[1, 2]", "3", '"text"', "null", "{", "{}"])
        if choice == 2:
            return token + "[" * rng.randint(10, 5000) + "]" * rng.randint(0, 5000)
        if choice == 3:
            return "".join(chr(rng.randrange(256)) for _ in range(rng.randint(1, 200)))
        return token + "x" * rng.choice([10, 70_000])
    head, body = line.split(token, 1)
    try:
        record = json.loads(body)
    except ValueError:
        return line[: rng.randrange(len(line) + 1)]
    if not isinstance(record, dict):
        return line
    choice = rng.randrange(6)
    if choice == 0:
        record[rng.choice(FIELDS)] = rng.choice(HOSTILE_VALUES)
    elif choice == 1:
        record.pop(rng.choice(FIELDS), None)
    elif choice == 2:
        record["key"] = rng.choice(KEYS)
    elif choice == 3 and isinstance(record.get("metadata"), dict):
        record["metadata"][rng.choice(META)] = rng.choice(HOSTILE_VALUES)
    elif choice == 4 and isinstance(record.get("time_ms"), int | float):
        record["time_ms"] = record["time_ms"] + rng.choice([-1, 1]) * 10 ** rng.randint(0, 13)
    else:
        return (head + token + body)[: rng.randrange(len(line) + 1)]
    return head + token + json.dumps(record)


def _mutate_folder(org: Path, bench: Path, rng: random.Random) -> None:
    logs = sorted(bench.glob("result_*.txt"))
    for log in rng.sample(logs, rng.randint(1, 3)):
        lines = log.read_text(encoding="latin-1").split("\n")
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(lines))
            op = rng.random()
            if op < 0.7:
                new = _mutate_line(lines[i], rng)
                if new is None:
                    del lines[i]
                else:
                    lines[i] = new
            elif op < 0.85:
                lines.insert(rng.randrange(len(lines)), lines[i])
            else:
                j = rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
        log.write_text("\n".join(lines), encoding="latin-1")
    if rng.random() < 0.1:
        (bench / "scaling.json").write_text(rng.choice(SCALING), encoding="utf-8")
    if rng.random() < 0.1:
        (org / SYSTEMS).write_text(rng.choice(SYSTEMS_TEXT), encoding="utf-8")
    if rng.random() < 0.05:
        rng.choice(logs).write_bytes(b"")


def _stub_compliance(file: Path, usage: str, ruleset: str, config: Path | None,
                     scratch: Path) -> tuple[bool, tuple[str, ...]]:
    """A verdict that depends only on the file's bytes: about one log in five fails."""
    digest = hashlib.sha256(file.read_bytes()).digest()
    return (digest[0] % 5 != 0), (() if digest[0] % 5 else ("stub: fails",))


VARIANTS = 220
REAL_CHECKER_VARIANTS = 6


def test_fuzzed_folders_never_crash(tmp_path: Path, capsys, monkeypatch) -> None:
    rng = random.Random(20240509)
    pristine = tmp_path / "pristine"
    org_copy(pristine)
    outcomes: dict[str, int] = {}
    for n in range(VARIANTS):
        if n == REAL_CHECKER_VARIANTS:
            monkeypatch.setattr(mlperf_score, "_run_compliance", _stub_compliance)
        root = tmp_path / f"v{n}"
        shutil.copytree(pristine, root)
        org = root / "training_results_v4.0" / "ASUSTeK"
        bench = org / "results" / SYSTEM / "resnet"
        _mutate_folder(org, bench, rng)

        rc, report, err = run(capsys, "score", str(bench), "--json")
        assert rc in (0, 1, 2), (n, err)
        if report is None:
            one_line(err, root)
        else:
            assert not err, (n, err)
            assert rc != 0 or report["score_minutes"] > 0
        outcomes[f"score {rc}"] = outcomes.get(f"score {rc}", 0) + 1

        out = root / "imported"
        rc, summary, err = run(capsys, "import-mlperf", str(org), "-o", str(out), "--json")
        assert rc in (0, 1, 2), (n, err)
        if rc:
            one_line(err, root)
            assert not [p for p in out.rglob("*") if p.is_file()], n
        else:
            for item in summary:
                assert checksum_problem(read_result(Path(item["result"]))) is None
        outcomes[f"import {rc}"] = outcomes.get(f"import {rc}", 0) + 1
        shutil.rmtree(root)
    # The mutations reach both sides: accepted folders and refused ones.
    assert outcomes.get("score 0", 0) and outcomes.get("score 1", 0), outcomes
    assert outcomes.get("import 0", 0) and outcomes.get("import 1", 0), outcomes
