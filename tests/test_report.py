"""The HTML report: self-contained, escaped, well-formed, and honest about missing data."""

from __future__ import annotations

import math
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

try:
    from dpo_titles.report import build_report, save_report
except ModuleNotFoundError:  # the package is not installed in every checkout's venv
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from dpo_titles.report import build_report, save_report

from dpo_titles import outputs
from dpo_titles.errors import UserError
from dpo_titles.outputs import LEDGER
from dpo_titles.report.svg import (
    Series,
    histogram_pair,
    line_chart,
    nice_ticks,
    shorten,
    verdict_rows,
)
from dpo_titles.stats import wilson_interval

SECTION_IDS = (
    "summary",
    "training",
    "rewards",
    "comparison-bars",
    "lengths",
    "ideas",
    "samples",
    "config",
    "metrics",
)
HOSTILE = "<script>alert(1)</script>"


def _train(step: int, loss: float, margin: float, acc: float) -> dict:
    return {
        "step": step,
        "epoch": step / 40,
        "loss": loss,
        "rewards/chosen": margin / 2,
        "rewards/rejected": -margin / 2,
        "rewards/accuracies": acc,
        "rewards/margins": margin,
        "learning_rate": 5e-6,
        "grad_norm": 3.1,
    }


def _eval(step: int, loss: float, margin: float, acc: float) -> dict:
    return {
        "step": step,
        "epoch": step / 40,
        "eval_loss": loss,
        "eval_rewards/chosen": margin / 2,
        "eval_rewards/rejected": -margin / 2,
        "eval_rewards/accuracies": acc,
        "eval_rewards/margins": margin,
        "eval_runtime": 1.2,
    }


LOG_HISTORY = [
    _train(5, 0.6931, 0.0, 0.0),
    _train(10, 0.65, 0.12, 0.55),
    _eval(10, 0.67, 0.08, 0.5),
    _train(15, 0.58, 0.31, 0.7),
    _train(20, 0.49, 0.62, 0.8),
    _eval(20, 0.55, 0.45, 0.75),
    {"step": 20, "epoch": 0.5, "train_loss": 0.603, "train_runtime": 42.0},
]
N_TRAIN = 4
N_EVAL = 2

COMPARISONS = [
    {
        "idea": "Budget travel in Japan",
        "sample": 1,
        "base_title": "Japan travel video",
        "tuned_title": "I Spent 7 Days in Japan on $30 a Day (Here's How)",
        "verdict": "tuned",
        "rationale": "Specific, curious, mentions the idea.",
    },
    {
        "idea": "Budget travel in Japan",
        "sample": 0,
        "base_title": "How to travel Japan cheap",
        "tuned_title": "Japan on a Budget: 10 Tricks Locals Use",
        "verdict": "tie",
        "rationale": "",
    },
    {
        "idea": "Sourdough for beginners",
        "sample": 0,
        "base_title": "My First Sourdough Loaf: Every Mistake I Made",
        "tuned_title": HOSTILE,
        "verdict": "base",
        "rationale": 'Tuned title is "code" & not a title',
    },
]

METRICS = {
    "win_rate": 0.5,
    "win_rate_ci_low": 0.1253,
    "win_rate_ci_high": 0.8747,
    "wins": 1,
    "ties": 1,
    "losses": 1,
    "n_comparisons": 3,
    "compliance_base": 0.3333,
    "compliance_tuned": 0.6667,
    "mean_len_base": 31.0,
    "mean_len_tuned": 38.3,
    "median_len_base": 25,
    "median_len_tuned": 39,
    "distinct1_base": 0.61,
    "distinct1_tuned": 0.72,
    "distinct2_base": 0.8375,
    "distinct2_tuned": 0.8908,
    "implicit_reward_accuracy": 0.8,
    "implicit_reward_margin_mean": 0.3125,
    "implicit_reward_pairs": 20,
    "eval_ideas_source": "validation split + eval_ideas.csv",
    "warnings": [
        "the evaluation judge is the same as the labelling judge (rubric): the tuned model was "
        "trained to please this judge, so the win rate overstates the gain"
    ],
    "position_flip_rate": 0.1,
    "train_loss": 0.603,
    "eval_loss": 0.55,
    "eval_rewards/accuracies": 0.75,
    "eval_rewards/margins": 0.45,
    "eval_judge": "rubric",
    "label_judge": "rubric",
    "extra_metric_for_table": 12.5,
    "nan_metric": float("nan"),
}

CONFIG = {
    "model": "Qwen/Qwen2.5-0.5B-Instruct",
    "generate_provider": "hf",
    "beta": 0.1,
    "lora": {"r": 16, "alpha": 32},
    "seed": 42,
    "gemini_api_key": "should-never-show",
}


@pytest.fixture(scope="module")
def page() -> str:
    return build_report(
        metrics=METRICS, log_history=LOG_HISTORY, comparisons=COMPARISONS, config=CONFIG
    )


class _Collector(HTMLParser):
    """Records start/end tags with a stack, so unbalanced svg/table markup is caught."""

    CHECKED = {"svg", "g", "table", "thead", "tbody", "tr", "td", "th", "section", "figure", "text"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.script_tags = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag == "script":
            self.script_tags += 1
        if tag in self.CHECKED:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.CHECKED:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def _parse(text: str) -> _Collector:
    parser = _Collector()
    parser.feed(text)
    parser.close()
    return parser


def _polyline_points(text: str, series: str) -> int:
    parser = _parse(text)
    found = [
        attrs["points"]
        for tag, attrs in parser.starts
        if tag == "polyline" and attrs.get("data-series") == series
    ]
    assert len(found) == 1, f"expected one polyline for {series!r}, found {len(found)}"
    return len(found[0].split())


def test_has_every_section_in_order(page: str) -> None:
    positions = [page.index(f'id="{sid}"') for sid in SECTION_IDS]
    assert positions == sorted(positions)


def test_self_contained(page: str) -> None:
    assert "<script" not in page.lower()
    assert "base64" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page.lower() and "@import" not in page and "url(" not in page
    parser = _parse(page)
    assert parser.script_tags == 0
    # Only in-page anchors.
    hrefs = [attrs.get("href") for tag, attrs in parser.starts if "href" in attrs]
    assert hrefs and all(h and h.startswith("#") for h in hrefs)


def test_tags_balanced(page: str) -> None:
    parser = _parse(page)
    assert parser.errors == []
    assert parser.stack == []


def test_polylines_match_log_history(page: str) -> None:
    for series, expected in (
        ("train loss", N_TRAIN),
        ("eval loss", N_EVAL),
        ("train margin", N_TRAIN),
        ("eval margin", N_EVAL),
        ("train accuracy", N_TRAIN),
        ("eval accuracy", N_EVAL),
    ):
        assert _polyline_points(page, series) == expected, series
    rewards = page[page.index('id="rewards"') : page.index('id="comparison-bars"')]
    train_rewards, eval_rewards = rewards.split("<figure>")[1:3]
    assert _polyline_points(train_rewards, "chosen") == N_TRAIN
    assert _polyline_points(train_rewards, "rejected") == N_TRAIN
    assert _polyline_points(eval_rewards, "chosen") == N_EVAL
    assert _polyline_points(eval_rewards, "rejected") == N_EVAL


def test_charts_are_accessible_svgs(page: str) -> None:
    parser = _parse(page)
    svgs = [attrs for tag, attrs in parser.starts if tag == "svg"]
    # loss, margins, accuracies, 2 x rewards, 3 x bars, 1 histogram, 1 per-idea verdicts
    assert len(svgs) == 10
    for attrs in svgs:
        assert "chart" in (attrs.get("class") or "").split()
        assert attrs.get("aria-label")
        assert attrs.get("viewbox")
    assert page.count("<title>") >= 10 + 1
    assert "no data" not in page
    assert 'class="axis-label"' in page


def test_bars_and_histogram_draw(page: str) -> None:
    parser = _parse(page)
    bars = [attrs for tag, attrs in parser.starts if tag == "rect" and attrs.get("class") == "bar"]
    bar_section = page[page.index('id="comparison-bars"') : page.index('id="lengths"')]
    # compliance x2, mean/median x2 each, distinct-1/distinct-2 x2 each
    assert bar_section.count('class="bar"') == 10
    assert "66.7%" in bar_section
    assert "0.891" in bar_section and "0.610" in bar_section and "distinct-1" in bar_section
    counts: dict[str, int] = {}
    for attrs in bars:
        if "data-count" in attrs and attrs.get("data-series") in ("base", "tuned"):
            counts[attrs["data-series"]] = counts.get(attrs["data-series"], 0) + int(
                attrs["data-count"]
            )
    assert counts == {"base": len(COMPARISONS), "tuned": len(COMPARISONS)}


def test_hostile_text_is_escaped(page: str) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE not in page
    assert "&quot;code&quot; &amp; not a title" in page


def test_hostile_text_escaped_inside_svg() -> None:
    note = line_chart([], title=HOSTILE, x_label="step", y_label="loss")
    assert "<script" not in note and "&lt;script&gt;" in note and "no data" in note
    chart = line_chart(
        [Series(HOSTILE, [(1, 1.0), (2, 0.5)])], title=HOSTILE, x_label='"x"', y_label="<y>"
    )
    assert "<script" not in chart
    assert "&lt;script&gt;" in chart and "&lt;y&gt;" in chart and "&quot;x&quot;" in chart


def test_sample_table_grouped_by_idea(page: str) -> None:
    samples = page[page.index('id="samples"') : page.index('id="config"')]
    assert samples.count('<tr class="sample-row">') == len(COMPARISONS)
    assert samples.count('class="idea-row"') == 2
    japan = samples.index("Budget travel in Japan")
    sourdough = samples.index("Sourdough for beginners")
    # Within an idea, rows follow the sample number, not input order.
    assert japan < samples.index("How to travel Japan cheap") < samples.index("Japan travel video")
    assert samples.index("Japan travel video") < sourdough
    assert f"{len('Japan travel video')} chars" in samples
    assert "tuned wins" in samples and "base wins" in samples and ">tie<" in samples


def test_summary_cards(page: str) -> None:
    summary = page[page.index('id="summary"') : page.index('id="training"')]
    assert "50.0%" in summary
    assert "12.5% – 87.5%" in summary  # Wilson CI, as given
    assert "W 1 · T 1 · L 1" in summary
    assert "33.3% → 66.7%" in summary
    assert "0.603" in summary and "0.55" in summary


def test_config_and_metrics_tables(page: str) -> None:
    config = page[page.index('id="config"') : page.index('id="metrics"')]
    assert "Qwen/Qwen2.5-0.5B-Instruct" in config
    assert "{&quot;alpha&quot;: 32, &quot;r&quot;: 16}" in config
    assert "should-never-show" not in page
    assert "[redacted]" in config
    metrics = page[page.index('id="metrics"') :]
    assert "extra_metric_for_table" in metrics and "12.5" in metrics
    assert "n/a (nan)" in metrics


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metrics": {}, "log_history": [], "comparisons": [], "config": {}},
        {"metrics": None, "log_history": None, "comparisons": None, "config": None},
        {
            "metrics": {"win_rate": float("nan"), "compliance_base": float("inf")},
            "log_history": [{"step": 1, "loss": float("nan")}, {"loss": 0.5}, "junk"],
            "comparisons": [{"verdict": "tuned"}],
            "config": {"seed": 1},
        },
    ],
    ids=["empty", "none", "degenerate"],
)
def test_missing_inputs_render(kwargs: dict) -> None:
    text = build_report(**kwargs)
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in text
    assert "no data" in text
    assert "n/a" in text
    geometry = re.findall(r'\s(?:points|x|y|x1|x2|y1|y2|cx|cy|width|height)="([^"]*)"', text)
    assert not [g for g in geometry if re.search(r"nan|inf", g, re.I)]
    parser = _parse(text)
    assert parser.errors == [] and parser.stack == []
    # Charts without data are a note, never an empty svg.
    assert "<polyline" not in text


def test_partial_history_only_draws_what_exists() -> None:
    history = [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}, {"step": 3, "loss": math.inf}]
    text = build_report(metrics={}, log_history=history, comparisons=[], config={})
    assert _polyline_points(text, "train loss") == 2
    assert 'data-series="eval loss"' not in text
    training = text[text.index('id="training"') : text.index('id="rewards"')]
    assert training.count("no data") == 2  # margins and accuracies


def test_wilson_interval_computed_when_missing() -> None:
    text = build_report(
        metrics={"win_rate": 0.5, "n_comparisons": 3}, log_history=[], comparisons=[], config={}
    )
    assert "12.5% – 87.5% (Wilson, computed here)" in text
    low, high = wilson_interval(0.5, 3)
    assert low == pytest.approx(0.1253, abs=1e-4) and high == pytest.approx(0.8747, abs=1e-4)
    # Textbook check: 8 successes of 10 -> [0.490, 0.943].
    low, high = wilson_interval(0.8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)


def test_write_report_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = {
        "metrics": METRICS,
        "log_history": LOG_HISTORY,
        "comparisons": COMPARISONS,
        "config": CONFIG,
    }
    target = tmp_path / "out" / "report.html"
    returned = save_report(target, **kwargs)
    assert returned == target
    assert target.read_text(encoding="utf-8") == build_report(**kwargs)
    assert sorted(p.name for p in target.parent.iterdir()) == [LEDGER, "report.html"]

    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):
        if str(dst) == str(target):
            replaced.append((str(src), str(dst)))
            assert Path(src).parent == target.parent  # same filesystem: the rename is atomic
            assert Path(src).read_text(encoding="utf-8").endswith("</html>\n")
        return real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", spy)
    save_report(str(target), **kwargs, force=True)
    assert len(replaced) == 1


def test_write_report_failure_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    save_report(target, metrics={}, log_history=[], comparisons=[], config={"old": 1})
    old = target.read_text(encoding="utf-8")
    real_replace = os.replace

    def boom(src, dst):
        if str(dst) == str(target):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", boom)
    with pytest.raises(UserError, match="cannot write .*report.html: disk full"):
        save_report(target, metrics={}, log_history=[], comparisons=[], config={}, force=True)
    assert target.read_text(encoding="utf-8") == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER, "report.html"]


def test_svg_helpers_edge_cases() -> None:
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(-1e308, 1e308) == [-1e308, 1e308]
    assert nice_ticks(3, 3)[0] < 3 < nice_ticks(3, 3)[-1]
    assert "no data" in histogram_pair([], [], title="lengths", x_label="chars")
    one = histogram_pair([42], [], title="lengths", x_label="chars")
    assert one.count('class="bar"') == 1 and 'data-count="1"' in one


# --- Warnings, new evaluation figures, per-idea verdicts, print layout, hostile text ---------

NASTY = "</td><script>alert(1)</script><img src=x onerror=alert(2)>"
NASTY_ESCAPED = "&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end)]


def test_warnings_are_shown_above_the_summary(page: str) -> None:
    block = _between(page, 'class="warnings"', 'id="summary"')
    assert page.index('class="warnings"') < page.index('id="summary"')
    assert "Read with care" in block
    assert "the tuned model was trained to please this judge" in block
    assert block.count("<li>") == 1  # the given warning only: no duplicate fallback


def test_same_judge_warning_when_metrics_have_no_warnings_key() -> None:
    text = build_report(
        metrics={"label_judge": "rubric", "eval_judge": "rubric"},
        log_history=[],
        comparisons=[],
        config={},
    )
    block = _between(text, 'class="warnings"', 'id="summary"')
    assert "same as the labelling judge (rubric)" in block
    # An explicit (even empty) list from the evaluation stage is taken as it is.
    text = build_report(
        metrics={"label_judge": "rubric", "eval_judge": "rubric", "warnings": []},
        log_history=[],
        comparisons=[],
        config={},
    )
    assert 'class="warnings"' not in text
    different = build_report(
        metrics={"label_judge": "gemini", "eval_judge": "openai"},
        log_history=[],
        comparisons=[],
        config={},
    )
    assert 'class="warnings"' not in different


def test_warnings_accept_one_string_and_add_failed_comparisons() -> None:
    text = build_report(
        metrics={"warnings": "only 3 ideas: the interval is wide", "eval_failures": 2},
        log_history=[],
        comparisons=[],
        config={},
    )
    block = _between(text, 'class="warnings"', 'id="summary"')
    assert block.count("<li>") == 2
    assert "only 3 ideas: the interval is wide" in block
    assert "2 comparisons failed at the judge" in block
    summary = _between(text, 'id="summary"', 'id="training"')
    assert "2 more failed at the judge" in summary


def test_implicit_reward_card(page: str) -> None:
    summary = _between(page, 'id="summary"', 'id="training"')
    assert "Implicit reward accuracy" in summary
    assert "80.0%" in summary and "of 20 held-out pairs" in summary
    assert "mean margin 0.3125" in summary
    low, high = wilson_interval(0.8, 20)
    assert f"{low * 100:.1f}% – {high * 100:.1f}%" in summary
    # Absent from the metrics: no card, no error.
    bare = build_report(metrics={"win_rate": 0.5}, log_history=[], comparisons=[], config={})
    assert "Implicit reward accuracy" not in bare


def test_judges_and_eval_ideas_source_in_header(page: str) -> None:
    header = page[: page.index('id="summary"')]
    assert "Evaluation ideas: <code>validation split + eval_ideas.csv</code>" in header
    assert "Preference labels: <code>rubric</code>" in header
    assert "Evaluation judge: <code>rubric</code>" in header


def test_diversity_bars_skip_absent_distinct1() -> None:
    text = build_report(
        metrics={"distinct2_base": 0.8, "distinct2_tuned": 0.9},
        log_history=[],
        comparisons=[],
        config={},
    )
    bars = _between(text, 'id="comparison-bars"', 'id="lengths"')
    assert "distinct-2" in bars and "distinct-1" not in bars
    assert bars.count('class="bar"') == 2


def test_verdicts_by_idea_chart(page: str) -> None:
    ideas = _between(page, 'id="ideas"', 'id="samples"')
    parser = _parse(ideas)
    rows = [attrs for tag, attrs in parser.starts if tag == "g" and attrs.get("class") == "row"]
    # Japan: 1 win 1 tie (share 0.75) sorts before Sourdough: 1 loss (share 0).
    assert [r["data-label"] for r in rows] == ["Budget travel in Japan", "Sourdough for beginners"]
    segments = [
        (attrs["data-series"], int(attrs["data-count"]))
        for tag, attrs in parser.starts
        if tag == "rect" and "data-count" in attrs
    ]
    assert segments == [("tuned wins", 1), ("tie", 1), ("base wins", 1)]
    assert "n=2" in ideas and "n=1" in ideas


def test_verdict_rows_edge_cases() -> None:
    segments = [("a", "#000"), ("b", "#111")]
    assert "no data" in verdict_rows([], segments, title="t")
    assert "no data" in verdict_rows([("x", (0, 0))], segments, title="t")
    long_label = "word " * 40
    chart = verdict_rows([(long_label, (3, 1))], segments, title="t", label_chars=20)
    assert shorten(long_label, 20) in chart and len(shorten(long_label, 20)) == 20
    assert shorten("a & b", 3) == "a…"  # cut before escaping, never inside an entity
    assert "&amp;" in verdict_rows([("a & b", (1, 0))], segments, title="t")


def test_print_stylesheet(page: str) -> None:
    css = page[page.index("<style>") : page.index("</style>")]
    print_css = css[css.index("@media print") :]
    assert "color: #000" in print_css and "--fg: #000" in print_css
    assert re.search(r"figure[^{]*\{[^}]*break-inside: avoid", print_css)
    assert "position: static" in print_css
    assert "sticky" not in css and "position: fixed" not in css
    assert "max-width: 1120px" in css


def test_hostile_text_everywhere_stays_text() -> None:
    comparisons = [
        {
            "idea": NASTY,
            "sample": 0,
            "base_title": NASTY,
            "tuned_title": "A calm title of a sensible length",
            "verdict": "base",
            "rationale": NASTY,
        },
        {
            "idea": "Plain idea",
            "sample": 0,
            "base_title": "Plain base",
            "tuned_title": NASTY,
            "verdict": NASTY,
            "rationale": "",
        },
    ]
    metrics = dict(
        METRICS,
        label_judge=NASTY,
        eval_judge=NASTY,
        eval_ideas_source=NASTY,
        warnings=[NASTY],
        **{NASTY: NASTY},
    )
    history = [dict(entry, **{NASTY: 1.0}) for entry in LOG_HISTORY]
    config = {"model": NASTY, "recipe": {"note": NASTY}, NASTY: [NASTY], "plain": NASTY}
    text = build_report(
        metrics=metrics, log_history=history, comparisons=comparisons, config=config
    )
    lowered = text.lower()
    assert "<script" not in lowered and "<img" not in lowered
    assert NASTY not in text
    parser = _parse(text)
    assert parser.script_tags == 0 and parser.errors == [] and parser.stack == []
    assert not [tag for tag, _ in parser.starts if tag in ("img", "script", "iframe", "object")]
    # Escaped, and present where each piece of text is shown.
    for start, end in (
        ('class="warnings"', 'id="summary"'),
        ('id="samples"', 'id="config"'),
        ('id="config"', 'id="metrics"'),
    ):
        assert NASTY_ESCAPED in _between(text, start, end), start
    samples = _between(text, 'id="samples"', 'id="config"')
    assert samples.count(NASTY_ESCAPED) >= 4  # idea, base title, tuned title, rationale
    config_part = _between(text, 'id="config"', 'id="metrics"')
    assert config_part.count(NASTY_ESCAPED) >= 3  # a key, a value, inside a nested value
    assert NASTY_ESCAPED in text[text.index('id="metrics"') :]
    assert text[: text.index('id="summary"')].count(NASTY_ESCAPED) >= 4  # 2 judges, source, warning
    # Inside SVG: the per-idea chart carries the idea in its labels and tooltips.
    ideas = _between(text, 'id="ideas"', 'id="samples"')
    svg = ideas[ideas.index("<svg") : ideas.index("</svg>")]
    assert NASTY_ESCAPED in svg
    assert f'data-label="{NASTY_ESCAPED}"' in svg
    assert "<script" not in svg and "<img" not in svg


def test_hostile_series_and_category_names_inside_svg() -> None:
    from dpo_titles.report.svg import BarSeries, bar_chart

    chart = bar_chart(
        [NASTY], [BarSeries(NASTY, [1.0], NASTY)], title=NASTY, x_label=NASTY, y_label=NASTY
    )
    hist = histogram_pair([1, 2], [3], names=(NASTY, NASTY), title=NASTY, x_label=NASTY)
    line = line_chart(
        [Series(NASTY, [(1, 1.0), (2, 2.0)], NASTY)], title=NASTY, x_label="s", y_label="v"
    )
    for svg in (chart, hist, line):
        assert "<script" not in svg and "<img" not in svg and "</td>" not in svg
        assert NASTY_ESCAPED in svg
        assert f'aria-label="{NASTY_ESCAPED}"' in svg


def test_the_win_rate_comes_with_its_interval_over_ideas_and_its_length_bins() -> None:
    metrics = {
        "win_rate": 0.7,
        "n_comparisons": 40,
        "win_rate_ci_low": 0.55,
        "win_rate_ci_high": 0.82,
        "win_rate_ideas_ci_low": 0.51,
        "win_rate_ideas_ci_high": 0.86,
        "win_rate_length_controlled": 0.58,
        "win_rate_by_length": [
            {"bin": "tuned shorter", "n": 10, "win_rate": 0.4},
            {"bin": "about the same", "n": 20, "win_rate": 0.6},
            {"bin": "tuned longer", "n": 10, "win_rate": 0.95},
        ],
        "base_model_note": "The base model is the tiny offline model (<b>demo</b>).",
    }
    text = build_report(metrics=metrics, log_history=[], comparisons=[], config={})
    assert "over ideas (bootstrap): 51.0% – 86.0%" in text
    assert "length-controlled: 58.0%" in text
    assert "<td>tuned longer</td>" in text and "95.0%" in text
    # Where the titles are shown, one escaped line says what the base model is.
    samples = text[text.index('<section id="samples">') :]
    assert "The base model is the tiny offline model (&lt;b&gt;demo&lt;/b&gt;)." in samples[:400]
