"""Data-parallel training through torchrun on CPU (gloo), 2 processes."""

from __future__ import annotations

import json

from conftest import greenperf


def test_mlp_tiny_on_two_processes_reaches_target_and_passes_check(tmp_path):
    proc = greenperf("run", "mlp", "--scale", "tiny", "--runs", "1", "--nproc-per-node", "2",
                     "--out", str(tmp_path), "--quiet", "--no-energy", timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "mlp_tiny_training.json").read_text())
    assert doc["config"]["world_size"] == 2 and doc["config"]["backend"] == "gloo"
    phase = doc["phases"][0]
    assert phase["recipe"]["batch_size"] == 2 * 256  # global = per-rank x world size
    assert phase["recipe"]["learning_rate"] == 2 * 3e-3  # the linear scaling rule
    run = phase["runs"][0]
    assert run["status"] == "success" and run["world_size"] == 2
    assert len(run["peak_rss_bytes_per_rank"]) == 2
    assert doc["division"] == "closed"
    log = (tmp_path / run["log"]["path"]).read_text()
    assert '"key": "global_batch_size", "value": 512' in log
    check = greenperf("check", str(tmp_path / "mlp_tiny_training.json"))
    assert check.returncode == 0, check.stdout  # includes the official compliance checker


def test_killing_one_rank_aborts_the_run_and_keeps_earlier_runs(tmp_path):
    # No hang: a survivor stuck in a collective would outlive the subprocess timeout (a hang
    # guard well above the 30 s collective timeout plus start-up on a loaded machine). How
    # long the run took is not asserted: load only makes it longer.
    proc = greenperf("run", "toy", "--runs", "3", "--nproc-per-node", "2", "--out",
                     str(tmp_path), "--quiet", "--no-energy", "--no-compliance",
                     "--collective-timeout", "30",
                     env={"GP_TOY_CRASH_RANK": "1", "GP_TOY_CRASH_IN_RUN": "2"}, timeout=600)
    assert proc.returncode != 0
    doc = json.loads((tmp_path / "toy_tiny_training.json").read_text())
    runs = doc["phases"][0]["runs"]
    assert [r["index"] for r in runs] == [1, 2]
    assert runs[0]["status"] == "success"
    assert runs[1]["status"] == "aborted"
    assert "rank" in runs[1]["abort_reason"]
    assert doc["status"] == "incomplete"
