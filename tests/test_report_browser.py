"""The report in a real browser: headless Chromium, driven by Playwright for Python.

A small run goes through the real stages (generate, label, prepare, train, evaluate on the tiny
model, then `stages.report`); one comparison's tuned title is made hostile, as a model could write
it. Chromium opens the page from disk with a fresh profile and no network, and the test checks
what a reader would see: no console errors or exceptions, no request for anything but the file
itself, one table row per comparison, every chart drawn with a real size, black text and unbroken
figures when printed. A full-page screenshot (and the printed PDF) are saved in the test's tmp
folder.

Chromium comes from Debian (`apt-get install -y --no-install-recommends chromium`). Without it
the test skips, except under CI (the CI variable set), where a missing browser is a failure.
Playwright launches that system Chromium by path (`executable_path`); it downloads no browser.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import REPO, chromium

LAPTOP = {"width": 1366, "height": 900}
NASTY = "</td><script>alert(1)</script><img src=x onerror=alert(2)>"
TIMEOUT_MS = 60_000


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
    page_url = small_run["report"].resolve().as_uri()
    requested: list[str] = []

    def only_the_page(route) -> None:
        # Nothing but the report itself may load; anything else is refused (and recorded).
        if route.request.url == page_url:
            route.continue_()
        else:
            route.abort()

    with chromium(browser_path, TIMEOUT_MS) as browser:
        page = browser.page(LAPTOP, device_scale_factor=1)
        page.route("**/*", only_the_page)
        page.on("request", lambda request: requested.append(request.url))
        page.goto(page_url, wait_until="load")
        facts = page.evaluate(PAGE_FACTS)

        screenshot = out / "report.png"
        page.screenshot(path=str(screenshot), full_page=True)

        page.emulate_media(media="print")
        printed = page.evaluate(PRINT_FACTS)
        pdf_path = out / "report.pdf"
        page.pdf(path=str(pdf_path), print_background=True)
        # Let late console messages (if any) arrive before reading them.
        page.wait_for_timeout(200)
        problems = list(browser.problems)
    return {
        "facts": facts,
        "printed": printed,
        "problems": problems,
        "requested": requested,
        "screenshot": screenshot,
        "pdf": pdf_path,
        "page_url": page_url,
    }


# --- The checks --------------------------------------------------------------------------------


def test_no_console_errors_or_dialogs(browsed) -> None:
    assert browsed["problems"] == []


def test_loads_nothing_but_itself(browsed) -> None:
    assert browsed["requested"] == [browsed["page_url"]]


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
