"""The HTML leaderboard: loading strangers' result files, tables, plots, pages, safety.

``synthetic_result`` writes a sealed result file (with its MLLOG logs) in the shape greenperf
writes; the browser test and the scale benchmark use it too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_one_line_error
from greenperf.errors import GreenperfError
from greenperf.labels import combine
from greenperf.leaderboard import render_site
from greenperf.leaderboard import site as site_module
from greenperf.leaderboard.plots import pareto_frontier
from greenperf.leaderboard.rows import energy_figure
from greenperf.leaderboard.svg import Bar, Point, Series, bars, lines, scatter
from greenperf.results import seal

LOG_TEXT = ":::MLLOG {\"key\": \"run_start\"}\n:::MLLOG {\"key\": \"run_stop\"}\n"


def _run(index: int, tta: float, joules: float | None, label: str = "estimated",
         status: str = "success", contended: bool = False) -> dict[str, Any]:
    curve = [{"samples": 256 * (i + 1), "seconds": tta * (i + 1) / 4,
              "metric": 0.7 + 0.06 * (i + 1)} for i in range(4)]
    energy = None if joules is None else {
        "name": f"train-run{index}", "seconds": tta, "total_joules": joules, "label": label,
        "lower_bound": False, "joules_by_component": {"cpu": joules},
        "readings": [{"component": "cpu", "source": "estimate-tdp", "label": label,
                      "joules": joules, "seconds": tta, "per_device": {"cpu": joules},
                      "formula": "12 W x CPU-seconds", "notes": [],
                      "power_trace": [[0.0, 10.0], [tta / 2, 12.0], [tta, 11.0]],
                      "details": {}, "lower_bound": False}],
        "notes": []}
    return {
        "index": index, "seed": index - 1, "status": status,
        "abort_reason": None if status == "success" else "budget",
        "init_seconds": 0.5, "tta_seconds": tta, "samples_seen": 1024,
        "samples_to_target": 1024 if status == "success" else None, "epochs": 0.5,
        "train_seconds": tta * 0.9, "eval_seconds": tta * 0.1, "train_throughput": 1024 / tta,
        "evals": 4, "final_metric": 0.94, "eval_curve": curve, "peak_rss_bytes": 300 << 20,
        "cuda_max_allocated_bytes": None,
        "contention": {"foreign_cores": 0.9 if contended else 0.01, "threshold": 0.25,
                       "contended": contended},
        "energy": energy,
        "log": {"path": f"logs/train/result_{index}.txt",
                "sha256": hashlib.sha256(LOG_TEXT.encode()).hexdigest()},
    }


def synthetic_doc(system: str = "box-a", workload: str = "toy", ttas: tuple = (1, 2, 3, 4, 5),
                  joules: float | None = 100.0, label: str = "estimated",
                  declared: dict[str, Any] | None = None, origin: str = "greenperf",
                  sustainability: dict[str, Any] | None = None,
                  contended_runs: int = 0) -> dict[str, Any]:
    """A valid training result document (not sealed)."""
    runs = [_run(i + 1, float(t), None if joules is None else joules * t, label,
                 contended=i < contended_runs) for i, t in enumerate(ttas)]
    kept = sorted(ttas)[1:-1] if len(ttas) >= 3 else list(ttas)
    return {
        "schema_version": "1.0", "kind": "training",
        "generator": {"name": "greenperf", "version": "0.1.0"},
        "created_utc": "2026-01-01T00:00:00+00:00", "status": "complete", "status_reason": None,
        "workload": workload, "scale": "tiny", "division": "closed", "origin": origin,
        "system": {"name": system, "auto": {"hostname": "h", "cpu_model": "Test CPU",
                                            "logical_cpus": 2, "gpus": {"devices": []}},
                   "declared": declared or {}, "declared_source": None},
        "software": {"python": "3.11", "torch": "2.13.0"},
        "config": {"workload": workload}, "config_hash": "0" * 64,
        "phases": [{
            "name": "train", "metric": "accuracy", "target": 0.9,
            "recipe": {"batch_size": 32, "eval_every": 256, "max_samples": 20000,
                       "target": 0.9},
            "dataset": {"name": "blobs", "source": "procedural", "checksum": "0" * 64,
                        "train_samples": 2000, "eval_samples": 400, "nbytes": 96000},
            "runs": runs,
            "score": {"method": "olympic_mean", "value": sum(kept) / len(kept), "unit": "s",
                      "n_runs": len(runs), "n_success": len(runs), "reason": None,
                      "median": float(sorted(ttas)[len(ttas) // 2]), "std": 1.0,
                      "ci95": [float(min(kept)), float(max(kept))], "dropped_runs": [1, 5]},
        }],
        "sustainability": sustainability,
        "compliance": {"rulesets": ["6.0.0"], "findings": [
            {"log": r["log"]["path"], "ruleset": "6.0.0", "passed": True, "messages": [],
             "run": r["index"], "phase": "train"} for r in runs]},
    }


def synthetic_result(folder: Path, name: str = "result.json", **kwargs: Any) -> Path:
    """Write a sealed synthetic result and its logs into ``folder``; returns the file."""
    return write_doc(folder, synthetic_doc(**kwargs), name)


def write_doc(folder: Path, doc: dict[str, Any], name: str = "result.json",
              reseal: bool = True) -> Path:
    (folder / "logs" / "train").mkdir(parents=True, exist_ok=True)
    for phase in doc.get("phases", []):
        for run in phase["runs"]:
            log = folder / run["log"]["path"]
            if ".." not in log.parts and not run["log"]["path"].startswith("/"):
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(LOG_TEXT)
    path = folder / name
    path.write_text(json.dumps(seal(doc) if reseal else doc))
    return path


def account(co2: float, cost: float) -> dict[str, Any]:
    """A sustainability account in greenperf.account's figure format (only what rows read)."""
    def fig(value: float, unit: str, label: str) -> dict[str, Any]:
        return {"value": value, "unit": unit, "label": label, "source": "test"}

    return {"version": 1, "settings": {"region": {"code": "WORLD"}},
            "phases": [{"name": "train",
                        "carbon": {"to_target": fig(co2, "gCO2e", "estimated")},
                        "money": {"to_target": fig(cost, "USD", "estimated")}}],
            "human_effort": {"total_hours": fig(8, "h", "declared")}}


def table_rows(html: str, table_id: str) -> list[str]:
    body = re.search(rf'<table[^>]*id="{re.escape(table_id)}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, table_id
    return re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)


def system_order(html: str, table_id: str) -> list[str]:
    return [re.search(r'class="system"><a [^>]*>([^<]*)</a>', row).group(1)
            for row in table_rows(html, table_id)]


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Four training results of one workload (one reference, one imported) and one other."""
    root = tmp_path / "results"
    synthetic_result(root / "fast", system="fast-box", ttas=(1, 1, 1, 1, 1), joules=500.0,
                     label="measured", declared={"submitter": "ACME",
                                                 "human_effort": {"porting_hours": 6,
                                                                  "tuning_hours": 2,
                                                                  "hourly_rate": 95,
                                                                  "currency": "EUR"}},
                     sustainability=account(40.0, 0.5), contended_runs=1)
    synthetic_result(root / "slow", system="slow-box", ttas=(8, 8, 8, 8, 8), joules=10.0,
                     sustainability=account(2.0, 0.1))
    synthetic_result(root / "reference_results" / "ref", system="ref-box",
                     ttas=(4, 4, 4, 4, 4), joules=None)
    synthetic_result(root / "imported", system="mlperf-box", ttas=(2, 2, 2, 2, 2), joules=None,
                     origin="imported-mlperf")
    synthetic_result(root / "other", system="fast-box", workload="other", ttas=(3, 3, 3))
    return root


def test_index_has_one_ranked_table_per_workload_with_every_column(results: Path,
                                                                   tmp_path: Path) -> None:
    summary = render_site([results], tmp_path / "site", jobs=1)
    assert (summary.pages, summary.tables, summary.skipped) == (5, 2, [])
    html = summary.index.read_text()
    toy = "t-training-toy-train-tiny"
    assert system_order(html, toy) == ["fast-box", "mlperf-box", "ref-box", "slow-box"]
    for header in ("System", "Accelerator", "Division", "Submitter", "Time to accuracy",
                   "Speed-up vs reference", "Throughput", "Energy to target", "gCO2e to target",
                   "Cost to target", "Samples seen", "Epochs", "Dataset bytes", "Human effort"):
        assert f">{header}</button>" in html, header
    fast, imported, ref, slow = table_rows(html, toy)
    assert "4×" in fast and "0.5×" in slow and "1×" in ref  # speed-up vs the reference's 4 s
    assert "badge-imported" in imported and "badge-reference" in ref
    assert "badge-contended" in fast and "5 (1 CONTENDED)" in fast
    assert "95% CI 1–1 s" in fast
    assert "500 J" in fast and "tag-measured" in fast           # median energy, labelled
    assert "40 g" in fast and "0.5 USD" in fast and "tag-estimated" in fast
    assert "8 h · 760 EUR" in fast and "tag-declared" in fast   # declared human effort
    assert "ACME" in fast
    # Results without an account or energy show a dash, never a made-up number.
    assert ref.count("—") >= 4
    # The sustainability view ranks by energy to target, not by time.
    assert system_order(html, "s-training-toy-train-tiny")[:2] == ["slow-box", "fast-box"]
    # The other workload is its own table, without a speed-up column (no reference there).
    other_header = html.split('id="t-training-other-train-tiny"')[1].split("</thead>")[0]
    assert "Speed-up" not in other_header


def test_result_page_embeds_the_result_and_links_its_copied_logs(results: Path,
                                                                 tmp_path: Path) -> None:
    summary = render_site([results], tmp_path / "site", jobs=1)
    pages = summary.index.parent / "r"
    page = next(pages.glob("toy-tiny-training-fast-box-*.html"))
    markup, blocks = data_blocks(page.read_text())
    # Header and summary are server-rendered; the detail is drawn from the embedded result
    # (tests/test_leaderboard_browser.py checks what the browser draws).
    for needle in ("fast-box", "Summary", "Time to accuracy", "raw result JSON",
                   "Sustainability account", "Compliance findings", "enable JavaScript"):
        assert needle in markup, needle
    raw = page.with_suffix(".json")
    assert blocks["gp-result"] == json.loads(raw.read_text())
    assert blocks["gp-result"]["system"]["name"] == "fast-box"
    logs = blocks["gp-page"]["logs"]
    assert sorted(logs) == [f"logs/train/result_{i}.txt" for i in range(1, 6)]
    for path, (href, problem) in logs.items():
        assert problem is None and (pages / href).read_text() == LOG_TEXT, path


def test_plots_mark_the_pareto_frontier_and_speedups(results: Path, tmp_path: Path) -> None:
    html = render_site([results], tmp_path / "site", jobs=1).index.read_text()
    section = html.split('id="training-toy-train-tiny"')[1].split("</section>")[0]
    svgs = re.findall(r"<svg.*?</svg>", section, re.S)
    pareto = next(s for s in svgs if "Pareto" in s)
    # fast-box and slow-box have energy; both are Pareto-optimal (faster vs cheaper).
    assert pareto.count('class="point') == 2 and pareto.count("on-frontier") == 2
    assert 'class="frontier"' in pareto
    speedup = next(s for s in svgs if "Speed-up vs reference" in s)
    assert speedup.count('class="bar point') == 4
    curves = next(s for s in svgs if "accuracy vs samples" in s)
    assert curves.count('<circle class="point"') == 4 * 4


def test_pareto_frontier_keeps_only_undominated_points() -> None:
    points = [Point(1, 10, "a"), Point(2, 5, "b"), Point(3, 7, "c"), Point(4, 1, "d"),
              Point(2, 6, "e"), Point(5, 1, "f")]
    assert [p.tip for p in pareto_frontier(points)] == ["a", "b", "d"]


def test_energy_labels_combine_honestly() -> None:
    def cell_label(labels: list[str]) -> str:  # as energy_figure labels a median over runs
        return combine(labels, keep_partly=True)

    assert cell_label(["measured", "measured"]) == "measured"
    assert cell_label(["estimated", "estimated"]) == "estimated"
    assert cell_label(["measured", "estimated"]) == "partly estimated"
    assert energy_figure([]) == (None, None)  # no successful run: no figure, no label


def test_svg_escapes_text_and_counts_points() -> None:
    evil = '</svg><script>alert(1)</script>"\'&'
    svg = str(lines([Series(evil, [(0, 1), (1, 2), (2, 3)]), Series("b", [(0, 2)])], evil,
                    evil, evil, (2.5, evil)))
    assert "<script" not in svg and "&lt;script&gt;" in svg and svg.count("</svg>") == 1
    assert svg.count('<circle class="point"') == 4
    svg = str(scatter([Point(1, 2, evil, href='x" onclick="y'), Point(10, 300, "b")], "t",
                      "x", "y"))
    assert "<script" not in svg and 'href="x&#34; onclick=&#34;y"' in svg
    assert svg.count('<circle class="point') == 2
    svg = str(bars([Bar(evil, 1.5, evil), Bar("b", 0.5, "b")], evil, "x", marker=1.0))
    assert "<script" not in svg and svg.count('class="bar point') == 2


PAYLOADS = ('"><img src=x onerror="window.__pwned=1">',
            "</script><script>window.__pwned=1</script>",
            "<script>document.title='pwned'</script>",
            "' onmouseover='window.__pwned=1")


def hostile_doc() -> dict[str, Any]:
    """A result whose every free-text field a stranger controls holds a script payload."""
    doc = synthetic_doc(system=PAYLOADS[0] + PAYLOADS[1], workload=PAYLOADS[2],
                        declared={"submitter": PAYLOADS[1], "notes": PAYLOADS[2],
                                  "system_name": PAYLOADS[3], "hw_notes": PAYLOADS[0],
                                  "human_effort": {"porting_hours": 1, "tuning_hours": 1,
                                                   "hourly_rate": 1, "currency": PAYLOADS[0]}},
                        sustainability={"notes": [PAYLOADS[1]],
                                        "phases": [{"name": "train", "carbon": {"to_target": {
                                            "value": 1.0, "unit": PAYLOADS[0],
                                            "label": PAYLOADS[1], "source": PAYLOADS[2]}}}]})
    phase = doc["phases"][0]
    phase["metric"] = PAYLOADS[1]
    phase["name"] = PAYLOADS[0]
    phase["runs"][0]["energy"]["label"] = PAYLOADS[3]
    phase["runs"][0]["energy"]["readings"][0]["formula"] = PAYLOADS[2]
    phase["runs"][0]["abort_reason"] = PAYLOADS[1]
    doc["compliance"]["findings"][0]["messages"] = [PAYLOADS[0]]
    doc["software"]["torch"] = PAYLOADS[2]
    return doc


class Tags(HTMLParser):
    """Counts script elements (executable ones and JSON data blocks) and event-handler
    attributes as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.data_blocks: list[str | None] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and dict(attrs).get("type") == "application/json":
            self.data_blocks.append(dict(attrs).get("id"))
        else:
            self.scripts += tag == "script"
        self.handlers += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]


DATA_BLOCK = re.compile(r'<script type="application/json" id="([a-z-]+)">(.*?)</script>', re.S)


def data_blocks(html: str) -> tuple[str, dict[str, Any]]:
    """The page without its JSON data blocks, and each block parsed, by id."""
    blocks = {name: json.loads(text) for name, text in DATA_BLOCK.findall(html)}
    return DATA_BLOCK.sub("", html), blocks


def test_hostile_strings_are_escaped_everywhere(tmp_path: Path) -> None:
    write_doc(tmp_path / "in", hostile_doc())
    summary = render_site([tmp_path / "in"], tmp_path / "site", jobs=1)
    assert summary.pages == 1, summary.skipped
    for page in (tmp_path / "site").rglob("*.html"):
        assert re.fullmatch(r"[a-z0-9._-]+", page.name), page.name
        html = page.read_text()
        # Only our own script element, and no event-handler attribute, made it into the page.
        tags = Tags()
        tags.feed(html)
        assert tags.scripts == 1 and tags.handlers == [], (page.name, tags.handlers)
        markup, blocks = data_blocks(html)
        assert sorted(blocks) == sorted(tags.data_blocks), page.name
        if page.name != "index.html":
            # The result rides along as data, unchanged, with no "<" that could end its block.
            assert blocks["gp-result"] == json.loads(next(
                (tmp_path / "in").rglob("*.json")).read_text())
            assert "<" not in html.split('id="gp-result">')[1].split("</script>")[0]
        for payload in PAYLOADS:
            assert payload not in markup, (page.name, payload)
        assert "&lt;script&gt;" in markup or "&lt;/script&gt;" in markup


def test_bad_files_are_skipped_with_one_line_warning_each(tmp_path: Path, run_cli) -> None:
    root = tmp_path / "in"
    synthetic_result(root / "good", system="good-box")
    (root / "broken.json").write_text("{not json")
    (root / "list.json").write_text("[1, 2]")
    (root / "config.json").write_text('{"some": "other file"}')
    doc = synthetic_doc()
    doc["phases"][0]["runs"][0]["tta_seconds"] = "fast"
    write_doc(root / "typed", doc)
    doc = synthetic_doc()
    doc["phases"][0]["runs"][1]["eval_curve"][0]["metric"] = float("nan")
    (root / "nan").mkdir()
    (root / "nan" / "r.json").write_text(json.dumps(doc))
    edited = json.loads(synthetic_result(root / "edited").read_text())
    edited["system"]["name"] = "someone-else"
    (root / "edited" / "result.json").write_text(json.dumps(edited))
    doc = synthetic_doc()
    doc["schema_version"] = "9.0"
    write_doc(root / "future", doc)
    doc = synthetic_doc()
    doc["phases"][0]["runs"][0]["eval_curve"][2]["samples"] = "many"
    write_doc(root / "curve", doc)
    proc = run_cli("leaderboard", str(root), "-o", str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = proc.stderr.strip().splitlines()
    expected = {
        "broken.json": "not valid JSON (line 1",
        "list.json": "not a greenperf result",
        "config.json": "not a greenperf result",
        "typed/result.json": "field phases[0].runs[0].tta_seconds: missing or not a finite",
        "nan/r.json": "NaN",
        "edited/result.json": "field checksum: does not match",
        "future/result.json": "field schema_version: 9.0 is newer",
        "curve/result.json": "runs[0].eval_curve[2].samples: missing or not an integer",
    }
    assert len(warnings) == len(expected), proc.stderr
    for name, problem in expected.items():
        line = next((w for w in warnings if f"{root}/{name}:" in w), None)
        assert line is not None and problem in line and line.startswith(
            "greenperf: warning: skipped"), (name, proc.stderr)
    assert "wrote 1 result page(s)" in proc.stdout
    index = (tmp_path / "site" / "index.html").read_text()
    assert "Skipped files" in index and "broken.json" in index


def test_oversized_result_file_is_skipped(tmp_path: Path, run_cli) -> None:
    synthetic_result(tmp_path / "in", system="big")
    proc = run_cli("leaderboard", str(tmp_path / "in"), "-o", str(tmp_path / "site"),
                   "--max-file-bytes", "1000")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    warning, error = proc.stderr.strip().splitlines()
    assert "result.json" in warning and "over the 1,000-byte limit" in warning
    assert error.startswith("greenperf: error:") and "no valid result files found" in error


def test_missing_input_is_a_one_line_usage_error(tmp_path: Path, run_cli) -> None:
    proc = run_cli("leaderboard", str(tmp_path / "nope"), "-o", str(tmp_path / "site"))
    assert_one_line_error(proc, "nope", "no such file or folder")
    assert proc.returncode == 2


def test_logs_outside_the_result_folder_are_never_copied(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    doc = synthetic_doc(ttas=(1, 2, 3, 4, 5))
    runs = doc["phases"][0]["runs"]
    runs[0]["log"]["path"] = "../secret.txt"
    runs[1]["log"]["path"] = str(outside)
    runs[2]["log"]["path"] = "logs/train/link.txt"
    runs[3]["log"]["path"] = "logs/train/fifo.txt"
    runs[4]["log"]["path"] = "logs/train/alias.txt"
    doc["compliance"]["findings"] = []
    folder = tmp_path / "in"
    write_doc(folder, doc)
    logs = folder / "logs" / "train"
    for name in ("link.txt", "fifo.txt", "alias.txt"):
        (logs / name).unlink()
    (logs / "link.txt").symlink_to(outside)
    os.mkfifo(logs / "fifo.txt")
    (logs / "real.txt").write_text(LOG_TEXT)
    (logs / "alias.txt").symlink_to("real.txt")  # a link that stays inside is fine
    summary = render_site([folder], tmp_path / "site", jobs=1)
    assert summary.logs_copied == 1
    problems = "\n".join(summary.logs_not_copied)
    assert problems.count("leaves the result's folder") == 2
    assert "leads outside the result's folder" in problems
    assert "not a regular file" in problems
    copied = [p for p in (tmp_path / "site").rglob("*") if p.is_file()]
    assert all(p.read_bytes() != b"secret" for p in copied)
    _, blocks = data_blocks(next((tmp_path / "site" / "r").glob("*.html")).read_text())
    links = blocks["gp-page"]["logs"]
    assert links["../secret.txt"] == [None, "path is absolute or leaves the result's folder"]
    assert links["logs/train/alias.txt"][0].startswith("logs/")


def test_copied_logs_always_open_as_plain_text(tmp_path: Path) -> None:
    doc = synthetic_doc(ttas=(1,))
    doc["phases"][0]["runs"][0]["log"]["path"] = "logs/train/evil.html"
    doc["compliance"]["findings"] = []
    write_doc(tmp_path / "in", doc)
    summary = render_site([tmp_path / "in"], tmp_path / "site", jobs=1)
    copied = [p.name for p in (tmp_path / "site" / "r" / "logs").iterdir()]
    assert summary.logs_copied == 1 and len(copied) == 1
    assert copied[0].endswith("--logs--train--evil.html.txt")


def test_a_fifo_named_like_a_result_is_skipped_not_waited_on(tmp_path: Path) -> None:
    synthetic_result(tmp_path / "in", system="real")
    os.mkfifo(tmp_path / "in" / "trap.json")
    summary = render_site([tmp_path / "in"], tmp_path / "site", jobs=1)
    assert summary.pages == 1
    assert [(s.source.name, s.problem) for s in summary.skipped] == [
        ("trap.json", "not a regular file (for a result file)")]


def test_rendering_again_never_writes_into_the_sources(results: Path, tmp_path: Path) -> None:
    sources = sorted(p for p in results.rglob("*") if p.is_file())
    before = [p.read_bytes() for p in sources]
    render_site([results], tmp_path / "site", jobs=1)
    # Pages, raw results and logs in the site may share files with the sources (hard links);
    # a second render must replace them, never write through them.
    for page in (tmp_path / "site" / "r").rglob("*"):
        if page.is_file():
            os.chmod(page, 0o644)
    render_site([results], tmp_path / "site", jobs=1)
    assert [p.read_bytes() for p in sources] == before


def test_private_sources_are_copied_so_the_site_stays_readable(tmp_path: Path) -> None:
    source = synthetic_result(tmp_path / "in", ttas=(1,))
    os.chmod(source, 0o600)  # older greenperf wrote results owner-only
    render_site([tmp_path / "in"], tmp_path / "site", jobs=1)
    raw = next((tmp_path / "site" / "r").glob("*.json"))
    assert raw.read_bytes() == source.read_bytes()
    assert raw.stat().st_ino != source.stat().st_ino and raw.stat().st_mode & 0o044 == 0o044
    log = next((tmp_path / "site" / "r").glob("*/*.txt"))  # world-readable: may be linked
    assert log.read_text() == LOG_TEXT and log.stat().st_mode & 0o044 == 0o044


def inference_doc() -> dict[str, Any]:
    """An inference result: two LoadGen scenarios, no training phase."""
    doc = synthetic_doc(system="infer-box")
    doc["kind"] = "inference"
    doc["phases"] = []
    doc["inference"] = {"results": [
        {"scenario": "Offline", "mode": "performance", "valid": True,
         "samples_per_second": 1234.6, "metric_name": "samples_per_second",
         "metric_unit": "samples/s", "metric_value": 1234.6,
         "latency": {"percentiles_ns": {"p90": 2_000_000, "p99": 3_000_000}}},
        {"scenario": "SingleStream", "mode": "performance", "verdict": "INVALID",
         "samples_per_second": 500.0,
         "latency": {"percentiles_ns": {"p90": 1_500_000, "p99": 2_500_000}}},
    ]}
    doc["compliance"]["findings"] = []
    return doc


def test_inference_results_get_throughput_and_latency_tables(tmp_path: Path) -> None:
    write_doc(tmp_path / "in", inference_doc())
    summary = render_site([tmp_path / "in"], tmp_path / "site", jobs=1)
    assert summary.tables == 2 and summary.pages == 1
    html = summary.index.read_text()
    offline = table_rows(html, "t-inference-toy-offline-tiny")[0]
    assert "1,235 samples/s" in offline and "p99 3 ms" in offline
    single = table_rows(html, "t-inference-toy-singlestream-tiny")[0]
    assert "p90 1.5 ms" in single and "INVALID" in single
    page = next((tmp_path / "site" / "r").glob("*.html")).read_text()
    assert "Inference (LoadGen)" in page and "p90 2 ms, p99 3 ms" in page


def test_reference_option_names_the_reference_system(results: Path, tmp_path: Path) -> None:
    html = render_site([results], tmp_path / "site", reference_system="slow-box",
                       jobs=1).index.read_text()
    rows = dict(zip(system_order(html, "t-training-toy-train-tiny"),
                    table_rows(html, "t-training-toy-train-tiny"), strict=True))
    assert "8×" in rows["fast-box"] and "badge-reference" in rows["slow-box"]
    assert "badge-reference" not in rows["ref-box"]


def test_worker_processes_render_the_same_site(results: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    serial = render_site([results], tmp_path / "serial", jobs=1)
    monkeypatch.setattr(site_module, "PARALLEL_THRESHOLD", 2)
    parallel = render_site([results], tmp_path / "parallel", jobs=2)
    names = sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*"))
    assert names == sorted(p.relative_to(tmp_path / "parallel")
                           for p in (tmp_path / "parallel").rglob("*"))
    assert serial.index.read_text() == parallel.index.read_text()


def test_a_write_failure_in_a_worker_is_a_one_line_error(results: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, text: str) -> None:
        raise GreenperfError(str(path), "cannot write (No space left on device)")

    monkeypatch.setattr(site_module, "PARALLEL_THRESHOLD", 2)
    monkeypatch.setattr(site_module, "_write", full)  # inherited by the forked workers
    with pytest.raises(GreenperfError, match="No space left on device"):
        render_site([results], tmp_path / "site", jobs=2)


def test_site_inside_the_input_folder_is_not_read_back(results: Path) -> None:
    first = render_site([results], results / "site", jobs=1)
    again = render_site([results], results / "site", jobs=1)
    assert first.pages == again.pages == 5 and not again.skipped


def test_pages_are_self_contained(results: Path, tmp_path: Path) -> None:
    render_site([results], tmp_path / "site", jobs=1)
    for page in (tmp_path / "site").rglob("*.html"):
        html = page.read_text()
        csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
        assert csp and "default-src 'none'" in unescape(csp.group(1))
        # No external resource: every src/href is relative (or an in-page anchor).
        for url in re.findall(r'(?:src|href)="([^"]*)"', html):
            assert not re.match(r"^[a-z]+:|^//", url), (page, url)


def test_incomplete_and_unscored_results_are_shown_as_such(tmp_path: Path) -> None:
    doc = synthetic_doc(system="half-done")
    doc["status"], doc["status_reason"] = "incomplete", "2 of 5 runs done"
    score = doc["phases"][0]["score"]
    score.update(value=None, ci95=None, reason="3 of 5 runs aborted")
    write_doc(tmp_path / "in", copy.deepcopy(doc))
    html = render_site([tmp_path / "in"], tmp_path / "site", jobs=1).index.read_text()
    row = table_rows(html, "t-training-toy-train-tiny")[0]
    assert "badge-incomplete" in row and "no score" in row and "3 of 5 runs aborted" in row
