"""The thread default, the visible budgets, the live "machine busy" warning and the
suite's early stop. Readings are faked: nothing here depends on speed or wall time."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from greenperf import contention, training
from greenperf.progress import Budget, Progress, progress_line, seconds_left
from greenperf.training import early_stop_reason

# /proc/stat's first line: user nice system idle iowait irq softirq steal guest guest_nice
_STAT = "cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n"


def _stat(busy_ticks: int, idle_ticks: int) -> str:
    return _STAT.format(busy=busy_ticks, idle=idle_ticks)


def _reading(busy_ticks: int, own_seconds: float, wall: float = 1.0) -> float:
    """Foreign cores from two fake /proc/stat texts, ``wall`` seconds apart."""
    before = contention.busy_seconds_of(_stat(1000, 5000))
    after = contention.busy_seconds_of(_stat(1000 + busy_ticks, 5000))
    assert before is not None and after is not None
    return contention.foreign_cores(after - before, own_seconds, wall)


def test_fake_proc_stat_reads_as_foreign_cores():
    ticks = contention._TICKS
    # 1.8 cores busy over 1 s, of which this process used 0.2 s: 1.6 foreign cores
    assert _reading(int(1.8 * ticks), 0.2) == pytest.approx(1.6, abs=0.02)
    assert contention.busy_seconds_of("intr 1 2 3\n") is None
    assert contention.busy_seconds_of("") is None


@pytest.mark.parametrize(("busy", "own", "threads", "idle"), [
    (0.05, 0.0, 2, 2),   # quiet: daemons below the contention threshold
    (1.0, 0.0, 1, 1),    # one busy process takes a core
    (1.6, 0.0, 1, 0),    # two busy processes: no idle core, still one thread
    (2.0, 0.0, 1, 0),
    (0.3, 0.0, 1, 1),    # just over the threshold: the core counts as taken
])
def test_threads_follow_the_idle_cores_of_a_fake_reading(busy, own, threads, idle):
    foreign = _reading(round(busy * contention._TICKS), own)
    choice = contention.choose_threads(2, foreign)
    assert choice.threads == threads
    assert choice.reason.startswith(f"auto: {idle} of 2 cores idle")
    assert choice.foreign_cores == pytest.approx(foreign)


def test_thread_choice_is_capped_and_survives_an_unreadable_stat():
    assert contention.choose_threads(16, 0.0, limit=8).threads == 8  # torch's default cap
    assert contention.choose_threads(16, 3.2, limit=8).threads == 8
    assert contention.choose_threads(4, 2.9).threads == 1
    unknown = contention.choose_threads(2, None)
    assert unknown.threads == 2 and "unknown" in unknown.reason


def test_config_hash_ignores_the_thread_reason_only():
    from greenperf.runner import config_hash

    base = {"workload": "mlp", "threads": 1, "threads_reason": "auto: 1 of 2 cores idle"}
    assert config_hash(base) == config_hash({**base, "threads_reason": "--threads"})
    assert config_hash(base) != config_hash({**base, "threads": 2})


def test_list_shows_sample_and_time_budgets(run_cli):
    proc = run_cli("list")
    assert proc.returncode == 0, proc.stderr
    assert "budget (time)" in proc.stdout and "budget (samples)" in proc.stdout
    pretrain = next(line for line in proc.stdout.splitlines()
                    if line.startswith("bert_small") and "pretrain" in line and "tiny" in line)
    assert "98,304" in pretrain and "900 s" in pretrain
    data = json.loads(run_cli("list", "--json").stdout)
    bert = next(w for w in data["workloads"] if w["name"] == "bert_small")
    tiny = next(p for p in bert["phases"] if p["phase"] == "pretrain" and p["scale"] == "tiny")
    assert tiny["max_samples"] == 98_304 and tiny["max_seconds"] == 900.0


def test_time_left_is_a_bound_from_the_rate_so_far():
    budget = Budget(max_samples=98_304, max_seconds=900.0)
    # half the samples in 100 s: 100 s more to the sample budget
    assert seconds_left(49_152, 100.0, budget) == pytest.approx(100.0)
    # 70 samples/s would need 1,404 s to the sample budget: the time budget ends first
    assert seconds_left(2_100, 30.0, budget) == pytest.approx(870.0)
    assert seconds_left(0, 0.0, budget) is None


def test_progress_line_shows_budget_time_left_and_busy_flag():
    line = progress_line("bert_small/pretrain", 1, 1, 49_152, 0.25, 0.33, 100.0,
                         Budget(98_304, 900.0), busy_cores=1.6)
    assert "samples 49,152/98,304" in line
    assert "100.0s of 900s budget" in line
    assert "≤100s left at 492 samples/s" in line
    assert "BUSY: 1.6 other cores" in line
    plain = progress_line("mlp/train", 1, 1, 20_000, None, 0.88, 1.0, le="<=")
    assert "budget" not in plain and "BUSY" not in plain and "<=" not in plain


class _FakeLoad:
    def __init__(self, foreign: float | None) -> None:
        self.foreign = foreign

    def read(self) -> float | None:
        return self.foreign


def _status(foreign: float | None, threads: int,
            busy_warned: bool = False) -> tuple[training._LiveStatus, io.StringIO]:
    from greenperf.workload import Recipe

    stream = io.StringIO()
    ctx = training.RunContext(workload=type("W", (), {"name": "mlp"})(), scale="tiny",
                              division="closed", device="cpu", submitter="x", platform="x",
                              submission_status="onprem", progress=Progress(stream),
                              run_index=1, run_count=1, threads=threads,
                              busy_warned=busy_warned)
    recipe = Recipe(batch_size=256, eval_every=20_000, max_samples=1_200_000,
                    max_seconds=300.0, target=0.88, learning_rate=1e-3)
    status = training._LiveStatus(ctx, "mlp/train", recipe)
    status.load = _FakeLoad(foreign)  # type: ignore[assignment]
    return status, stream


def test_busy_machine_is_reported_once_with_what_to_do():
    status, stream = _status(1.6, threads=2)
    status.show(40_000, 20.0)
    status.show(60_000, 30.0)
    lines = stream.getvalue().splitlines()
    advice = [line for line in lines if "machine busy" in line]
    assert len(advice) == 1
    assert ("machine busy: 1.6 other cores in use - results will be flagged contended; "
            "use --threads 1 or --wait-quiet") in advice[0]
    assert sum("BUSY: 1.6 other cores" in line for line in lines) == 2
    # with one thread already, the advice is to wait for a quiet machine
    status, stream = _status(1.2, threads=1)
    status.show(40_000, 20.0)
    assert "use --wait-quiet, or a quiet machine" in stream.getvalue()
    # warned at the start of the workload already: only the status line's flag
    status, stream = _status(1.2, threads=1, busy_warned=True)
    status.show(40_000, 20.0)
    assert "machine busy" not in stream.getvalue() and "BUSY: 1.2" in stream.getvalue()


def test_quiet_machine_gets_no_warning_and_heartbeats_stay_off_logs():
    status, stream = _status(0.1, threads=2)
    status.show(40_000, 20.0)
    status.show(50_000, 25.0, heartbeat=True)  # not a terminal: no line every few seconds
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "machine busy" not in lines[0] and "BUSY" not in lines[0]


def test_early_stop_when_the_sample_budget_cannot_fit_the_time_budget():
    budget = Budget(max_samples=98_304, max_seconds=900.0)
    reason = early_stop_reason("bert_small/pretrain", 2_100, 30.0, budget, 1.8, threads=1)
    assert reason == ("bert_small/pretrain would need ~1404 s at the current 70 samples/s, "
                      "over its 900 s budget; the machine is busy (1.8 other cores). Run with "
                      "--wait-quiet, or on a quiet machine")
    with_two = early_stop_reason("bert_small/pretrain", 2_100, 30.0, budget, 1.8, threads=2)
    assert with_two is not None and "--threads 1 or --wait-quiet" in with_two
    quiet = early_stop_reason("bert_small/pretrain", 2_100, 30.0, budget, 0.0)
    assert quiet is not None and "too slow" in quiet and "max_seconds" in quiet


def test_no_early_stop_when_it_fits_or_too_soon_to_tell():
    budget = Budget(max_samples=98_304, max_seconds=900.0)
    assert early_stop_reason("p", 12_000, 30.0, budget, 1.8) is None  # 400/s fits
    assert early_stop_reason("p", 100, 10.0, budget, 1.8) is None  # under 15 s: too soon
    assert early_stop_reason("p", 100, 20.0, budget, 1.8) is None  # under 3% of 900 s
    assert early_stop_reason("p", 0, 100.0, budget, 1.8) is None


def test_suite_stop_keeps_the_result_file_and_says_why(tmp_path, monkeypatch):
    from greenperf.progress import Progress as P
    from greenperf.runner import EarlyStop, RunRequest, run_workload
    from greenperf.workload import get_workload

    monkeypatch.setattr(training, "EARLY_STOP_MIN_SECONDS", 0.0)
    monkeypatch.setattr(training, "EARLY_STOP_MIN_SHARE", 0.0)
    # An unreachable target and a sample budget no machine can train through in 60 s.
    request = RunRequest(workload=get_workload("toy"), scale="tiny", runs=1, out_dir=tmp_path,
                         overrides={"target": "1.01", "max_samples": str(10**12)},
                         check_compliance=False, progress=P(enabled=False), stop_early=True,
                         threads=1)
    with pytest.raises(EarlyStop, match="would need ~.* over its 60 s budget"):
        run_workload(request)
    doc = json.loads(Path(tmp_path / "toy_tiny_training.json").read_text())
    assert doc["status"] == "incomplete"
    assert "stopped early" in doc["status_reason"]
    run = doc["phases"][0]["runs"][0]
    assert run["status"] == "aborted" and run["stopped_early"] is True
    assert doc["config"]["threads"] == 1 and doc["config"]["threads_reason"] == "--threads"


def test_auto_threads_are_recorded_with_their_reason(tmp_path, run_cli):
    proc = run_cli("run", "toy", "--runs", "1", "--out", str(tmp_path), "--no-compliance")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "toy_tiny_training.json").read_text())["config"]
    assert config["threads_reason"].startswith("auto: ")
    assert config["threads"] >= 1
    plural = "" if config["threads"] == 1 else "s"
    assert (f"{config['threads']} torch thread{plural} ({config['threads_reason']})"
            in proc.stderr)


def test_resolve_threads_uses_the_reading_and_waits_first_with_wait_quiet(monkeypatch, tmp_path):
    import torch
    from greenperf import runner
    from greenperf.workload import get_workload

    calls: list[str] = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(contention, "usable_cpus", lambda: 2)
    monkeypatch.setattr(contention, "wait_until_quiet", lambda: calls.append("wait"))
    monkeypatch.setattr(contention, "foreign_cores_now",
                        lambda: calls.append("read") or 1.6)
    monkeypatch.setattr(runner, "_torch_default_threads", 2)
    before = torch.get_num_threads()
    try:
        request = runner.RunRequest(workload=get_workload("toy"), scale="tiny", runs=1,
                                    out_dir=tmp_path, auto_threads=True)
        choice = runner.resolve_threads(request)
        assert (choice.threads, calls) == (1, ["read"])
        assert choice.reason == "auto: 0 of 2 cores idle, 1.60 used by other processes"
        assert torch.get_num_threads() == 1
        calls.clear()
        request.wait_quiet = True
        runner.resolve_threads(request)
        assert calls == ["wait", "read"]
        calls.clear()
        request.threads = 2  # --threads wins and reads nothing
        assert runner.resolve_threads(request).reason == "--threads" and calls == []
    finally:
        torch.set_num_threads(before)
