"""The report in a real browser: headless Chromium, driven over the DevTools protocol.

A small run goes through the real stages (generate, label, prepare, train, evaluate on the tiny
model, then `stages.report`); one comparison's tuned title is made hostile, as a model could write
it. Chromium opens the page from disk with a fresh profile and no network, and the test checks
what a reader would see: no console errors or exceptions, no request for anything but the file
itself, one table row per comparison, every chart drawn with a real size, black text and unbroken
figures when printed. A full-page screenshot (and the printed PDF) are saved in the test's tmp
folder.

Chromium comes from Debian (`apt-get install -y --no-install-recommends chromium`). Without it
the test skips, except under CI (the CI variable set), where a missing browser is a failure.
The DevTools client is `websocket-client` (already installed: kfp -> kubernetes depends on it).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
APT_LINE = "apt-get install -y --no-install-recommends chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Containers often give /dev/shm only 64 MB, which crashes renderers of long pages.
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)
LAPTOP = {"width": 1366, "height": 900}
NASTY = "</td><script>alert(1)</script><img src=x onerror=alert(2)>"
START_TIMEOUT_S = 45.0
COMMAND_TIMEOUT_S = 60.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _find_browser() -> str | None:
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


# Session scope, like `tiny_model`: pytest sets up wider-scoped fixtures first, so a module-scoped
# check would only skip after the tiny model had been built for nothing.
@pytest.fixture(scope="session")
def browser_path() -> str:
    path = _find_browser()
    if path is None:
        message = f"no {', '.join(BROWSER_NAMES)} on PATH; install it with `{APT_LINE}`"
        if _in_ci():
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    return path


# --- A small real run ---------------------------------------------------------------------------


def _write_ideas(path: Path, count: int) -> None:
    with open(REPO / "data" / "ideas.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:count]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["idea"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _make_hostile(comparisons_csv: Path) -> int:
    """Swap one tuned title and one rationale for markup, as a misbehaving model could write;
    returns the number of comparison rows."""
    with open(comparisons_csv, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    assert rows and fields
    rows[0]["tuned_title"] = NASTY
    rows[-1]["rationale"] = NASTY
    with open(comparisons_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


@pytest.fixture(scope="module")
def small_run(browser_path, tiny_model, tmp_path_factory) -> dict:
    """generate -> label -> prepare -> train -> evaluate -> report on 16 ideas (about 15 s once
    the tiny model exists)."""
    from dpo_titles import stages
    from dpo_titles.settings import Evaluation, Generation, Labelling, Sampling, Split

    root = tmp_path_factory.mktemp("browser_run")
    model = str(tiny_model)
    _write_ideas(root / "ideas.csv", 16)
    stages.generate(
        str(root / "ideas.csv"),
        str(root / "cand.csv"),
        Generation(provider="hf", model=model, titles_per_idea=4),
        Sampling(temperature=1.2),
    )
    stages.label(str(root / "cand.csv"), str(root / "prefs.csv"), Labelling(judge="rubric"))
    stages.prepare(str(root / "prefs.csv"), str(root / "ds"), Split(val_fraction=0.25))
    stages.train(
        model,
        str(root / "ds"),
        str(root / "tuned"),
        "local",
        {"num_train_epochs": 2, "eval_steps": 4, "logging_steps": 2},
    )
    stages.evaluate(
        model,
        str(root / "tuned"),
        str(root / "ds"),
        str(root / "eval"),
        Evaluation(samples_per_idea=2),
        Sampling(),
    )
    n_rows = _make_hostile(root / "eval" / stages.COMPARISONS_FILE)
    report = root / "report.html"
    stages.report(
        str(root / "eval"),
        str(root / "tuned"),
        str(report),
        candidates_path=str(root / "cand.csv"),
        dataset_dir=str(root / "ds"),
    )
    return {"report": report, "comparisons": n_rows, "root": root}


# --- A minimal DevTools client ------------------------------------------------------------------


class DevTools:
    """Commands and events over the browser's websocket, with flattened target sessions."""

    def __init__(self, url: str) -> None:
        import websocket  # websocket-client

        # Chromium refuses websocket clients that send an Origin it was not told to allow.
        self.ws = websocket.create_connection(url, timeout=COMMAND_TIMEOUT_S, suppress_origin=True)
        self.events: list[dict] = []
        self._next = 0

    def _receive(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from Chromium in time")
        self.ws.settimeout(remaining)
        return json.loads(self.ws.recv())

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next += 1
        message: dict = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, session: str | None = None) -> dict:
        def matches(event: dict) -> bool:
            return event.get("method") == method and (
                session is None or event.get("sessionId") == session
            )

        for event in self.events:
            if matches(event):
                return event
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while True:
            event = self._receive(deadline)
            if "method" in event:
                self.events.append(event)
                if matches(event):
                    return event

    def evaluate(self, expression: str, session: str):
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # closing a socket to a dying browser
            pass


def _start_browser(path: str, profile: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start Chromium with a fresh profile; return the process and its browser websocket URL."""
    profile.mkdir(parents=True, exist_ok=True)
    port_file = profile / "DevToolsActivePort"
    port_file.unlink(missing_ok=True)  # a stale one would point at a browser long gone
    log = open(log_path, "wb")  # the child keeps its own copy of the handle
    process = subprocess.Popen(
        [path, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so every helper process is ended
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Chromium exited with {process.returncode}:\n{tail}")
        if port_file.is_file():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return process, f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.1)
    _stop_browser(process)
    raise TimeoutError(f"Chromium wrote no {port_file.name} within {START_TIMEOUT_S:.0f} s")


def _stop_browser(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Helpers of the browser left in its group, if any.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


PAGE_FACTS = """(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const charts = [...document.querySelectorAll('svg')].map((svg) => {
    const marks = [...svg.querySelectorAll('polyline, path, rect, circle')]
      .filter((el) => !el.closest('.legend'))
      .filter((el) => { const b = el.getBBox(); return b.width > 0 || b.height > 0; });
    return {
      label: svg.getAttribute('aria-label'),
      title: (svg.querySelector(':scope > title') || {}).textContent || '',
      size: box(svg),
      marks: marks.length,
    };
  });
  const table = document.querySelector('table.samples');
  return {
    title: document.title,
    rows: document.querySelectorAll('tr.sample-row').length,
    charts,
    scripts: document.querySelectorAll('script').length,
    active: document.querySelectorAll('img, iframe, object, embed, link, base').length,
    tableText: table ? table.textContent : '',
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    container: box(document.querySelector('main.container')),
  };
})()"""

PRINT_FACTS = """(() => {
  const style = (sel) => {
    const el = document.querySelector(sel);
    return el && getComputedStyle(el);
  };
  const positions = [...document.querySelectorAll('*')].map((el) => getComputedStyle(el).position);
  return {
    bodyColor: style('body').color,
    leadColor: style('.lead').color,
    cellColor: style('td.rationale') ? style('td.rationale').color : 'rgb(0, 0, 0)',
    nav: style('nav').display,
    figureBreak: style('figure').breakInside,
    sticky: positions.filter((p) => p === 'sticky' || p === 'fixed').length,
  };
})()"""


@pytest.fixture(scope="module")
def browsed(browser_path, small_run, tmp_path_factory) -> dict:
    """Open the report once, gather everything the tests check, and close the browser."""
    out = tmp_path_factory.mktemp("browser")
    process, url = _start_browser(browser_path, out / "profile", out / "chromium.log")
    client = None
    try:
        client = DevTools(url)
        target = client.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = client.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            client.send(f"{domain}.enable", {}, session)
        client.send(
            "Emulation.setDeviceMetricsOverride",
            {**LAPTOP, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        page_url = small_run["report"].resolve().as_uri()
        client.send("Page.navigate", {"url": page_url}, session)
        client.wait_for("Page.loadEventFired", session)
        facts = client.evaluate(PAGE_FACTS, session)

        size = client.send("Page.getLayoutMetrics", {}, session)["cssContentSize"]
        shot = client.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            },
            session,
        )
        screenshot = out / "report.png"
        screenshot.write_bytes(base64.b64decode(shot["data"]))

        client.send("Emulation.setEmulatedMedia", {"media": "print"}, session)
        printed = client.evaluate(PRINT_FACTS, session)
        pdf = client.send("Page.printToPDF", {"printBackground": True}, session)
        pdf_path = out / "report.pdf"
        pdf_path.write_bytes(base64.b64decode(pdf["data"]))
        # Let late console messages (if any) arrive before reading the events.
        client.evaluate("new Promise((done) => setTimeout(done, 200))", session)
        events = [e for e in client.events if e.get("sessionId") == session]
        try:
            client.send("Browser.close")
        except Exception:  # the browser may close the socket before it answers
            pass
    finally:
        if client is not None:
            client.close()
        _stop_browser(process)
    return {
        "facts": facts,
        "printed": printed,
        "events": events,
        "screenshot": screenshot,
        "pdf": pdf_path,
        "page_url": page_url,
    }


# --- The checks --------------------------------------------------------------------------------


def _problems(events: list[dict]) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            found.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url')})")
        elif method == "Page.javascriptDialogOpening":
            found.append(f"dialog: {params.get('message')}")
    return found


def test_no_console_errors_or_dialogs(browsed) -> None:
    assert _problems(browsed["events"]) == []


def test_loads_nothing_but_itself(browsed) -> None:
    requested = [
        e["params"]["request"]["url"]
        for e in browsed["events"]
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requested == [browsed["page_url"]]


def test_one_row_per_comparison(browsed, small_run) -> None:
    assert browsed["facts"]["rows"] == small_run["comparisons"] > 0


def test_hostile_title_is_text(browsed) -> None:
    facts = browsed["facts"]
    assert facts["scripts"] == 0 and facts["active"] == 0
    # The markup arrives as visible text, whole.
    assert NASTY in facts["tableText"]


def test_every_chart_drew(browsed) -> None:
    charts = browsed["facts"]["charts"]
    # loss, margins, accuracies, 2 x rewards, compliance, lengths, diversity, histogram, ideas
    assert len(charts) >= 10
    for chart in charts:
        width, height = chart["size"]
        assert width > 100 and height > 50, chart
        assert chart["marks"] > 0, chart
        assert chart["label"] and chart["title"] == chart["label"], chart


def test_fits_a_laptop_screen(browsed) -> None:
    facts = browsed["facts"]
    assert facts["overflow"] <= 0
    assert facts["container"][0] <= 1120
    assert facts["title"] == "DPO title tuning report"


def test_prints_black_text_without_sticky_parts(browsed) -> None:
    printed = browsed["printed"]
    assert printed["bodyColor"] == printed["leadColor"] == printed["cellColor"] == "rgb(0, 0, 0)"
    assert printed["nav"] == "none"
    assert printed["figureBreak"] == "avoid"
    assert printed["sticky"] == 0
    assert browsed["pdf"].read_bytes().startswith(b"%PDF")


def test_screenshot_saved(browsed) -> None:
    data = browsed["screenshot"].read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
