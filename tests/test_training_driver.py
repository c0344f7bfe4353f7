"""The training driver on the third-party ``toy`` workload, end to end through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import assert_one_line_error, greenperf


def _result(out):
    return json.loads((out / "toy_tiny_training.json").read_text())


def test_toy_workload_registers_through_its_entry_point(run_cli):
    proc = run_cli("list", "--json")
    assert proc.returncode == 0, proc.stderr
    names = [w["name"] for w in json.loads(proc.stdout)["workloads"]]
    assert "toy" in names and "mlp" in names


def test_run_records_tta_rules_and_check_accepts(tmp_path, run_cli):
    proc = run_cli("run", "toy", "--runs", "3", "--out", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    doc = _result(tmp_path)
    assert doc["status"] == "complete"
    runs = doc["phases"][0]["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    for run in runs:
        assert run["status"] == "success"
        assert run["samples_to_target"] == run["eval_curve"][-1]["samples"]
        assert run["eval_curve"][-1]["metric"] >= doc["phases"][0]["target"]
        # TTA includes evaluation; throughput excludes it
        assert run["tta_seconds"] >= run["eval_seconds"]
        assert abs(run["train_seconds"] - (run["tta_seconds"] - run["eval_seconds"])) < 1e-9
        assert run["peak_rss_bytes"] > 0
        assert "foreign_cores" in run["contention"]
        assert (tmp_path / run["log"]["path"]).is_file()
    assert doc["phases"][0]["score"]["method"] == "olympic_mean"
    assert all(f["passed"] for f in doc["compliance"]["findings"])
    check = run_cli("check", str(tmp_path / "toy_tiny_training.json"))
    assert check.returncode == 0, check.stdout + check.stderr


def test_nan_loss_aborts_the_run_and_the_next_run_continues(tmp_path, run_cli):
    # Step counts are per process: the NaN starts at step 20, inside run 1 only
    # if run 1 has not reached the target yet, so we lower it out of reach.
    proc = run_cli("run", "toy", "--runs", "2", "--out", str(tmp_path), "--quiet",
                   "--set", "target=1.01", "--set", "max_samples=1280",
                   env={"GP_TOY_NAN_AT_STEP": "20"})
    doc = _result(tmp_path)
    first, second = doc["phases"][0]["runs"]
    assert first["status"] == "aborted" and "diverged" in first["abort_reason"]
    assert second["status"] == "aborted"  # the run went on, and aborted in its turn
    assert doc["division"] == "open"
    assert doc["phases"][0]["score"]["value"] is None
    assert proc.returncode == 1  # no score


def test_sample_budget_aborts_with_reason(tmp_path, run_cli):
    proc = run_cli("run", "toy", "--runs", "1", "--out", str(tmp_path), "--quiet",
                   "--set", "target=1.01", "--set", "max_samples=512")
    run = _result(tmp_path)["phases"][0]["runs"][0]
    assert run["status"] == "aborted"
    assert "sample budget of 512" in run["abort_reason"]
    assert run["samples_seen"] == 512
    assert proc.returncode == 1


def _wait_for(proc: subprocess.Popen, ready, what: str, limit_s: float = 600) -> None:
    """Poll until ``ready()``; the limit is a hang guard, not a speed expectation."""
    deadline = time.monotonic() + limit_s
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}: "
                                 f"{proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no sign of {what} after {limit_s:g} s")
        time.sleep(0.05)


def test_ctrl_c_during_run_3_keeps_runs_1_and_2_marked_incomplete(tmp_path):
    # 128 steps of at least 10 ms: run 3 lasts over a second after it has started, however
    # loaded the machine (load only makes it longer).
    env = dict(os.environ, GP_TOY_STEP_SLEEP="0.01")
    cmd = [sys.executable, "-m", "greenperf.cli", "run", "toy", "--runs", "5", "--out",
           str(tmp_path), "--quiet", "--no-compliance", "--threads", "1", "--set",
           "target=0.999", "--set", "eval_every=1024", "--set", "max_samples=4096"]
    # SIGINT's default action in the child, so that its Python turns Ctrl-C into
    # KeyboardInterrupt as it does in a terminal: under a background job (`pytest &`,
    # nohup, some CI runners) SIGINT arrives ignored and the run would go on to the end.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    path = tmp_path / "toy_tiny_training.json"
    run_3_log = tmp_path / "logs" / "toy_tiny" / "train" / "result_3.txt"

    def runs_recorded() -> int:
        try:
            return len(json.loads(path.read_text())["phases"][0]["runs"])
        except (OSError, json.JSONDecodeError, KeyError, IndexError):
            return 0

    def run_3_training() -> bool:
        # Observable events, no fixed delay: runs 1 and 2 are in the result file, and run
        # 3's own MLLOG has logged its run_start.
        try:
            return runs_recorded() >= 2 and '"run_start"' in run_3_log.read_text()
        except OSError:
            return False

    _wait_for(proc, run_3_training, "run 3 training")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    doc = json.loads(path.read_text())
    assert doc["status"] == "incomplete"
    assert [r["index"] for r in doc["phases"][0]["runs"]] == [1, 2]
    assert "interrupted during run 3" in doc["status_reason"]
    check = greenperf("check", str(path), "--no-compliance")
    assert check.returncode == 1 and "incomplete" in check.stdout


def test_crash_mid_run_keeps_completed_runs(tmp_path, run_cli):
    # Run 1 takes 8 steps (target out of reach, budget 256 samples); step 12 is in run 2.
    proc = run_cli("run", "toy", "--runs", "3", "--out", str(tmp_path), "--quiet",
                   "--no-compliance", "--set", "target=1.01", "--set", "max_samples=256",
                   env={"GP_TOY_CRASH_AT_STEP": "12"})
    assert proc.returncode == 3
    doc = _result(tmp_path)
    assert doc["status"] == "incomplete"
    assert [r["index"] for r in doc["phases"][0]["runs"]] == [1]


def test_unknown_workload_is_one_line(run_cli):
    assert_one_line_error(run_cli("run", "nosuch"), "nosuch", "unknown workload")


def test_unknown_scale_is_one_line(run_cli):
    assert_one_line_error(run_cli("run", "toy", "--scale", "huge"), "--scale huge",
                          "unknown scale")


def test_bad_config_values_are_one_line(run_cli, tmp_path):
    assert_one_line_error(run_cli("run", "toy", "--set", "learning_rate=fast", "--out",
                                  str(tmp_path)), "--set learning_rate", "not a valid float")
    assert_one_line_error(run_cli("run", "toy", "--set", "warp=9", "--out", str(tmp_path)),
                          "--set warp", "unknown setting")
    assert_one_line_error(run_cli("run", "toy", "--runs", "0", "--out", str(tmp_path)),
                          "--runs")
    assert_one_line_error(run_cli("run", "toy", "--batch-size", "-4", "--out", str(tmp_path)),
                          "--batch-size")
    assert_one_line_error(run_cli("run", "toy", "--seeds", "1,1", "--runs", "2", "--out",
                                  str(tmp_path)), "--seeds", "distinct")


def test_bad_system_description_is_one_line(run_cli, tmp_path):
    system = tmp_path / "system.toml"
    system.write_text('submitter = "me"\ncolour = "blue"\n')
    assert_one_line_error(run_cli("run", "toy", "--system", str(system), "--out",
                                  str(tmp_path / "o")), "system.toml: field colour",
                          "unknown field")
    system.write_text('submitter = "me"\n[human_effort]\nporting_hours = -3\n')
    assert_one_line_error(run_cli("run", "toy", "--system", str(system), "--out",
                                  str(tmp_path / "o")), "human_effort.porting_hours")


def test_unwritable_output_folder_is_one_line(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_one_line_error(run_cli("run", "toy", "--out", str(blocker / "sub")),
                          "output folder", "not writable")


def test_declared_system_fields_are_recorded(tmp_path, run_cli):
    system = tmp_path / "system.toml"
    system.write_text('submitter = "ACME"\nsystem_name = "acme-box"\n'
                      'host_processor_model_name = "Some CPU"\n'
                      '[human_effort]\nporting_hours = 3\nhourly_rate = 90\n')
    out = tmp_path / "out"
    proc = run_cli("run", "toy", "--runs", "1", "--out", str(out), "--quiet", "--system",
                   str(system), "--no-compliance")
    assert proc.returncode == 0, proc.stderr
    doc = _result(out)
    assert doc["system"]["name"] == "acme-box"
    assert doc["system"]["declared"]["submitter"] == "ACME"
    assert doc["system"]["auto"]["logical_cpus"] >= 1
    log = (out / doc["phases"][0]["runs"][0]["log"]["path"]).read_text()
    assert '"key": "submission_org", "value": "ACME"' in log
