"""The leaderboard in a real browser: headless Chromium driven through the Chrome DevTools
Protocol (CDP) over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out, NUL-separated JSON), so no
websocket library is needed.

It loads the index and a result page from ``file://``, sorts and filters with real mouse and
keyboard input, checks the plots rendered and nothing was logged as an error, and opens a
result full of script payloads to prove that none of them ran.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped with that reason when
it is not installed.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from greenperf.leaderboard import render_site
from test_leaderboard import account, hostile_doc, synthetic_result, write_doc

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                                         "(apt-get install -y chromium)")
TIMEOUT = 60.0


class Chromium:
    """Headless Chromium with one page, spoken to over the CDP pipe."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes() -> None:  # in the child: the pipe ends become fds 3 and 4
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 20)
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 20)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", "--no-default-browser-check",
             "--window-size=1280,900", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"],
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=self.session)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ConnectionError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]
            self.events.append(reply)

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, session=self.session, **params)

    def open(self, path: Path) -> None:
        """Load ``path`` from file:// and wait for its load event; forget earlier events."""
        self.events.clear()
        self.page("Page.navigate", url=path.resolve().as_uri())
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._read_message(deadline))

    def js(self, expression: str) -> Any:
        reply = self.page("Runtime.evaluate", expression=expression, returnByValue=True,
                          awaitPromise=True)
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                      "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                      button="left", clickCount=1)

    def type_text(self, text: str) -> None:
        self.page("Input.insertText", text=text)

    def screenshot(self) -> bytes:
        import base64
        return base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"])

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors since the last open."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                               "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')}")
        return found

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, TimeoutError, ConnectionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-site")
    results = root / "results"
    synthetic_result(results / "a", system="charlie", ttas=(3, 3, 3, 3, 3), joules=50.0)
    synthetic_result(results / "b", system="alpha", ttas=(5, 5, 5, 5, 5), joules=None)
    synthetic_result(results / "c", system="bravo", ttas=(1, 1, 1, 1, 1), joules=900.0,
                     contended_runs=2, sustainability=account(40.0, 0.5))
    synthetic_result(results / "reference_results" / "d", system="delta", ttas=(4, 4, 4, 4, 4),
                     joules=200.0, label="measured")
    summary = render_site([results], root / "site", jobs=1)
    assert summary.pages == 4 and not summary.skipped
    return root / "site"


RANKING = "#t-training-toy-train-tiny"


def _systems(browser: Chromium, table: str = RANKING) -> list[str]:
    return browser.js(f"Array.from(document.querySelectorAll('{table} tbody tr'))"
                      ".map(r => r.querySelector('td.system a').textContent)")


def _column(browser: Chromium, table: str, title: str) -> int:
    titles = browser.js(f"Array.from(document.querySelectorAll('{table} thead th'))"
                        ".map(th => th.textContent.trim())")
    return titles.index(title) + 1


def test_index_sorts_filters_and_draws_plots_without_errors(browser: Chromium,
                                                            site: Path) -> None:
    browser.open(site / "index.html")
    assert browser.js("document.title") == "greenperf leaderboard"
    assert _systems(browser) == ["bravo", "charlie", "delta", "alpha"]  # by time to accuracy

    system = _column(browser, RANKING, "System")
    browser.click(f"{RANKING} thead th:nth-child({system}) button")
    assert _systems(browser) == ["alpha", "bravo", "charlie", "delta"]
    browser.click(f"{RANKING} thead th:nth-child({system}) button")
    assert _systems(browser) == ["delta", "charlie", "bravo", "alpha"]

    energy = _column(browser, RANKING, "Energy to target")
    browser.click(f"{RANKING} thead th:nth-child({energy}) button")
    assert _systems(browser) == ["charlie", "delta", "bravo", "alpha"]  # no energy: last
    assert browser.js(f"document.querySelector('{RANKING} thead th:nth-child({energy})')"
                      ".getAttribute('aria-sort')") == "ascending"

    browser.click("input[data-filter='t-training-toy-train-tiny']")
    browser.type_text("bra")
    visible = browser.js(f"Array.from(document.querySelectorAll('{RANKING} tbody tr'))"
                         ".filter(r => !r.hidden).length")
    hidden = browser.js(f"document.querySelectorAll('{RANKING} tbody tr[hidden]').length")
    assert (visible, hidden) == (1, 3)
    assert browser.js("document.getElementById('t-training-toy-train-tiny-count')"
                      ".textContent") == "1 of 4 shown"

    plots = browser.js("Array.from(document.querySelectorAll('svg.chart'))"
                       ".map(s => [s.getAttribute('aria-label'), "
                       "s.querySelectorAll('.point').length, s.getBoundingClientRect().width])")
    by_title = {title.split(" (")[0]: (points, width) for title, points, width in plots}
    assert by_title["Time vs energy to target"][0] == 3  # the three results with energy
    assert by_title["Speed-up vs reference delta"][0] == 4
    assert all(points > 0 and width > 100 for points, width in by_title.values())
    assert browser.errors() == []


def test_result_page_draws_its_plots_without_errors(browser: Chromium, site: Path) -> None:
    page = next((site / "r").glob("toy-tiny-training-bravo-*.html"))
    browser.open(page)
    plots = browser.js("Array.from(document.querySelectorAll('svg.chart'))"
                       ".map(s => s.querySelectorAll('.point').length)")
    assert len(plots) == 4 and all(n > 0 for n in plots)
    assert browser.js("document.querySelectorAll('.badge-contended').length") == 2
    runs_tta = _column(browser, "#runs-1", "TTA")
    browser.click(f"#runs-1 thead th:nth-child({runs_tta}) button")
    browser.click(f"#runs-1 thead th:nth-child({runs_tta}) button")
    assert browser.js("document.querySelector('#runs-1 thead th:nth-child(4)')"
                      ".getAttribute('aria-sort')") == "descending"
    log = browser.js("document.querySelector('#runs-1 tbody a').getAttribute('href')")
    assert (page.parent / log).is_file()
    assert browser.errors() == []


def test_result_page_draws_runs_curves_energy_account_and_findings(browser: Chromium,
                                                                    site: Path) -> None:
    page = next((site / "r").glob("toy-tiny-training-bravo-*.html"))
    browser.open(page)
    text = browser.js("document.body.innerText")
    for needle in ("Seen by greenperf (auto)", "Declared by the submitter", "Runs",
                   "Energy readings", "Sustainability account", "Compliance findings",
                   "accuracy vs time (train)", "accuracy vs samples (train)",
                   "Power over time (train)", "Energy per run (train)", "raw result JSON",
                   "12 W x CPU-seconds", "logical_cpus", "5 findings from the official"):
        assert needle in text, needle
    assert "enable JavaScript" not in text  # every placeholder was drawn
    # Curves: 5 runs x 4 evaluations in each of the two eval plots; power: 5 x 3 points.
    assert browser.js("document.querySelectorAll('circle.point').length") == 5 * 4 * 2 + 5 * 3
    # Estimated figures carry their label in the runs table and in the account.
    assert browser.js("document.querySelectorAll('#runs-1 .tag-estimated').length") == 5
    assert browser.js("document.querySelectorAll('#account .tag-estimated').length") > 0
    logs = browser.js("Array.from(document.querySelectorAll('a'))"
                      ".filter(a => /result_[0-9][.]txt$/.test(a.textContent))"
                      ".map(a => a.getAttribute('href'))")
    assert len(logs) == 5 + 5  # runs table and compliance findings
    assert all((page.parent / href).is_file() for href in logs)
    assert browser.errors() == []


def test_hostile_result_runs_no_script(browser: Chromium, tmp_path: Path) -> None:
    write_doc(tmp_path / "in", hostile_doc())
    summary = render_site([tmp_path / "in"], tmp_path / "site", jobs=1)
    assert summary.pages == 1
    for page in (summary.index, next((tmp_path / "site" / "r").glob("*.html"))):
        browser.open(page)
        browser.js("document.querySelectorAll('*').forEach(e => e.dispatchEvent("
                   "new MouseEvent('mouseover', {bubbles: true})))")
        assert browser.js("window.__pwned === undefined"), page
        assert browser.js("document.title") != "pwned", page  # what a payload would set
        assert browser.js("document.querySelectorAll("
                          "'script:not([type=\"application/json\"])').length") == 1, page
        assert browser.js("document.querySelectorAll('img').length") == 0, page
        # The payloads are on the page as text, exactly as written.
        assert "window.__pwned=1</script>" in browser.js("document.body.innerText"), page
        assert browser.errors() == [], page


def test_odd_but_valid_shapes_are_drawn_as_text_without_errors(browser: Chromium,
                                                                 tmp_path: Path) -> None:
    # Parts the leaderboard does not type-check are drawn by the page's script, which must
    # take any JSON shape a stranger's file can hold.
    from test_leaderboard import synthetic_doc

    doc = synthetic_doc(system="odd-box", declared={"notes": [1, "two", None, {"x": [3]}]})
    doc["system"]["auto"] = {"gpus": [[1, 2], {"deep": {"deeper": list(range(3))}}], "n": True}
    doc["software"] = {"torch": 2.13, "extras": []}
    energy = doc["phases"][0]["runs"][0]["energy"]
    energy["readings"] = [None, 7, {"component": 5, "power_trace": [[0, 1], "x", [2]]}]
    doc["energy_meters"] = {"notes": ["a note", 3]}
    write_doc(tmp_path / "in", doc)
    summary = render_site([tmp_path / "in"], tmp_path / "site", jobs=1)
    assert summary.pages == 1, summary.skipped
    browser.open(next((tmp_path / "site" / "r").glob("*.html")))
    text = browser.js("document.body.innerText")
    assert "odd-box" in text and "gpus[1].deep.deeper" in text and "a note" in text
    assert "enable JavaScript" not in text
    assert browser.errors() == []


def test_inference_result_page_draws_without_errors(browser: Chromium, tmp_path: Path) -> None:
    from test_leaderboard import inference_doc

    write_doc(tmp_path / "in", inference_doc())
    render_site([tmp_path / "in"], tmp_path / "site", jobs=1)
    browser.open(next((tmp_path / "site" / "r").glob("*.html")))
    text = browser.js("document.body.innerText")
    assert "Inference (LoadGen)" in text and "No compliance findings recorded." in text
    assert "enable JavaScript" not in text
    assert browser.errors() == []
