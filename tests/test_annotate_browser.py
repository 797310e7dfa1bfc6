"""The annotation page in a real browser: headless Chromium, driven by Playwright for Python.

The command runs as a person runs it (`python -m dpo_titles.cli annotate ...` in a subprocess,
its address read from stderr) on a small candidates file with one hostile title. The test
answers with real key presses, undoes one, skips one, reloads the page, kills the server
mid-way and starts it again on the same answers file, and goes on to the end; the file must
then hold exactly the answers given, once each. Along the way: the hostile title is shown as
text, nothing but the page's own script runs, no console errors, a screenshot, and no
horizontal scrolling on a phone-sized screen.

The browser is the system Chromium (`browser_path` in conftest: skipped without one, except
under CI); Playwright downloads nothing.
"""

from __future__ import annotations

import csv
import json
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import chromium

NASTY = "</td><script>alert(1)</script><img src=x onerror=alert(2)>"
IDEAS = {
    "A video about fixing a bike": ["Bike fixed!", "I fixed my bike in 10 minutes", "Fix it"],
    "Cooking pasta at home": ["Pasta 101", NASTY, "The only pasta video you need"],
    "Learning Rust in a week": ["Rust in a day", "Why I switched to Rust"],
}
TOTAL = 7  # 3 + 3 + 1 pairs
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 30_000
URL = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+")

PAGE_FACTS = """(() => ({
  text: document.body.innerText,
  scripts: document.querySelectorAll('script').length,
  injected: document.querySelectorAll('img, iframe, object, embed, td, script:not([nonce])')
    .length,
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
}))()"""


class Annotator:
    """`dpo-titles annotate` in a subprocess; its stderr is read as it comes."""

    def __init__(self, cand: Path, out: Path, cwd: Path):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dpo_titles.cli",
                "annotate",
                "--candidates",
                str(cand),
                "--out",
                str(out),
                "--labeller",
                "tester",
            ],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)

    def _wait_for_url(self) -> str:
        while True:
            try:
                line = self.lines.get(timeout=60)
            except queue.Empty:
                pytest.fail(f"no address on stderr: {''.join(self.err)}")
            found = URL.search(line)
            if found:
                return found.group(0)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no chance to clean up."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def read_answers(path: Path) -> list[dict]:
    """The rows of the answers file, as saved."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture()
def cand(tmp_path) -> Path:
    """The candidates of IDEAS (7 pairs)."""
    path = tmp_path / "cand.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["idea", "title"])
        writer.writerows([idea, t] for idea, titles in IDEAS.items() for t in titles)
    return path


def test_label_in_a_browser_with_undo_reload_and_restart(browser_path, cand, tmp_path):
    out = tmp_path / "human.csv"
    # What the person meant, by pair (idea, both titles): the preferred title, or None for a tie.
    expected: dict[tuple, str | None] = {}
    hostile_seen: list[dict] = []
    running: list[Annotator] = []

    def shown(page) -> tuple[str, str, str]:
        idea = page.locator("#idea").text_content()
        left = page.locator("#left-text").text_content()
        right = page.locator("#right-text").text_content()
        if NASTY in (left, right):
            hostile_seen.append(page.evaluate(PAGE_FACTS))
        return idea, left, right

    def settled(page, done: int) -> None:
        page.wait_for_selector(f'body[data-done="{done}"][data-busy="no"]')

    def press(page, key: str, done_after: int) -> tuple[str, str, str]:
        idea, left, right = shown(page)
        page.keyboard.press(key)
        settled(page, done_after)
        meaning = {"1": left, "ArrowLeft": left, "2": right, "ArrowRight": right}
        if key in ("0", "Space"):
            expected[(idea, frozenset((left, right)))] = None
        elif key in meaning:
            expected[(idea, frozenset((left, right)))] = meaning[key]
        return idea, left, right

    try:
        first = Annotator(cand, out, tmp_path)
        running.append(first)
        with chromium(browser_path, TIMEOUT_MS, ("error", "assert", "warning")) as browser:
            page = browser.page(LAPTOP, device_scale_factor=1)
            page.goto(first.url, wait_until="load")
            page.wait_for_selector('body[data-state="asking"][data-busy="no"]')
            assert page.locator("#progress-text").text_content().startswith(f"0 / {TOTAL}")

            press(page, "1", 1)
            press(page, "ArrowRight", 2)
            tied = press(page, "Space", 3)
            # Undo: the tie is taken back, and its pair is asked again.
            page.keyboard.press("u")
            settled(page, 2)
            del expected[(tied[0], frozenset(tied[1:]))]
            assert shown(page) == tied
            press(page, "2", 3)
            # Skip: another pair comes, nothing is recorded.
            skipped = shown(page)
            page.keyboard.press("s")
            settled(page, 3)
            assert shown(page) != skipped
            assert len(read_answers(out)) == 3

            # A reload resumes where it was.
            page.reload(wait_until="load")
            page.wait_for_selector('body[data-state="asking"][data-busy="no"]')
            assert page.locator("#progress-text").text_content().startswith(f"3 / {TOTAL}")
            page.screenshot(path=str(tmp_path / "annotate.png"))

            # Killed mid-way: the answers given so far are on disk, whole.
            first.kill()
            assert len(read_answers(out)) == 3

            second = Annotator(cand, out, tmp_path)
            running.append(second)
            assert second.url != first.url  # a new token (and port)
            page.goto(second.url, wait_until="load")
            page.wait_for_selector('body[data-state="asking"][data-busy="no"]')
            assert page.get_attribute("body", "data-done") == "3"
            assert (shown(page)[0], frozenset(shown(page)[1:])) not in expected

            # A phone: titles stacked, nothing wider than the screen.
            small = browser.page(PHONE, device_scale_factor=2, is_mobile=True)
            small.goto(second.url, wait_until="load")
            small.wait_for_selector('body[data-state="asking"][data-busy="no"]')
            left_box = small.locator("#left").bounding_box()
            right_box = small.locator("#right").bounding_box()
            assert left_box["y"] + left_box["height"] <= right_box["y"]
            assert left_box["width"] > 300
            assert small.evaluate(PAGE_FACTS)["overflow"] <= 0
            small.screenshot(path=str(tmp_path / "annotate-phone.png"))
            small.context.close()

            keys = ["ArrowLeft", "0", "2", "1"]
            done = 3
            while done < TOTAL:
                press(page, keys[done % len(keys)], done + 1)
                done += 1
            page.wait_for_selector('body[data-state="finished"]')
            facts = page.evaluate(PAGE_FACTS)
            ties = sum(v is None for v in expected.values())
            assert "All pairs are labelled" in facts["text"]
            assert page.locator("#sum-tie").text_content() == str(ties)
            left = int(page.locator("#sum-left").text_content())
            right = int(page.locator("#sum-right").text_content())
            assert left + right == TOTAL - ties
            assert re.fullmatch(r"\d+:\d\d", page.locator("#sum-time").text_content())
            page.screenshot(path=str(tmp_path / "annotate-done.png"), full_page=True)
            problems = list(browser.problems)

        # The command ends by itself once all is answered, with its summary on stdout.
        assert second.proc.wait(timeout=60) == 0
        summary = json.loads(second.proc.stdout.read())
        assert summary["answered"] == TOTAL and summary["remaining"] == 0
        assert summary["tie"] == sum(v is None for v in expected.values())
    finally:
        for annotator in running:
            annotator.kill()

    assert problems == []
    rows = read_answers(out)
    assert len(rows) == TOTAL == len(expected)
    assert len({r["pair"] for r in rows}) == TOTAL  # no pair twice
    for row in rows:
        key = (row["idea"], frozenset((row["chosen"], row["rejected"])))
        assert key in expected, row
        if expected[key] is None:
            assert row["verdict"] == "tie"
        else:
            assert row["verdict"] == "preferred" and row["chosen"] == expected[key]
        assert row["labeller"] == "tester"
    assert any(NASTY in (r["chosen"], r["rejected"]) for r in rows)

    # The hostile title was shown, as text: no element of its markup got into the page.
    assert hostile_seen
    for facts in hostile_seen:
        assert NASTY in facts["text"]
        assert facts["scripts"] == 1 and facts["injected"] == 0
    for name in ("annotate.png", "annotate-phone.png", "annotate-done.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000
