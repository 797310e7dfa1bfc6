"""Assemble the self-contained HTML report: one file, inline CSS, inline SVG, no scripts.

Kubeflow shows HTML artifacts in a sandboxed frame without network access to anything the page
might link, so nothing here may reference another file or URL, and nothing may need JavaScript.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..outputs import atomic_file
from ..redaction import redact_config
from ..stats import wilson_interval
from .svg import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    VERMILLION,
    BarSeries,
    Series,
    bar_chart,
    esc,
    finite,
    fmt_number,
    histogram_pair,
    line_chart,
    no_data,
    verdict_rows,
)

PAGE_TITLE = "DPO title tuning report"
_VERDICTS = {"tuned": "tuned wins", "base": "base wins", "tie": "tie", "failed": "judge failed"}
# Shown when a metrics file from before the evaluation stage wrote its own ``warnings`` names the
# same judge for labelling and evaluation.
_SAME_JUDGE_WARNING = (
    "the evaluation judge is the same as the labelling judge ({judge}): the tuned model was "
    "trained to please this judge, so the win rate overstates the gain"
)

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0072B2;
  --win: #1a7f37; --loss: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5;
  font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
.container { max-width: 1120px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--line); }
p { margin: .4rem 0; }
.lead { color: var(--muted); max-width: 75ch; }
.meta { color: var(--muted); font-size: .9rem; }
nav { margin: 1rem 0 0; font-size: .9rem; }
nav a { color: var(--accent); text-decoration: none; margin-right: 1rem; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
.cards { display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: #fff;
  box-shadow: 0 1px 2px rgba(31, 35, 40, .06); }
.card h3 { margin: 0; font-size: .8rem; font-weight: 600; color: var(--muted);
  text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 1.6rem; font-weight: 650; margin: .2rem 0 .1rem;
  font-variant-numeric: tabular-nums; }
.card .detail { font-size: .88rem; color: var(--muted); }
.good { color: var(--win); }
.bad { color: var(--loss); }
/* auto-fill, not auto-fit: a lone chart keeps a column's width instead of filling the page. */
.charts { display: grid; gap: 16px;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, 440px), 1fr)); }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 10px 10px 6px; }
figcaption { font-weight: 600; font-size: .95rem; margin: 0 0 4px 4px; }
svg.chart { display: block; width: 100%; height: auto; font-size: 12px; fill: var(--fg); }
svg.chart .grid { stroke: #e6eaef; stroke-width: 1; }
svg.chart .axis-line, svg.chart .tick { stroke: #8c959f; stroke-width: 1; }
svg.chart .axis-label { fill: var(--muted); font-weight: 600; }
svg.chart .value { font-size: 11px; fill: var(--fg); }
.no-data { color: var(--muted); font-style: italic; background: var(--soft); border-radius: 6px;
  padding: 14px; margin: 6px 0; }
.note { color: var(--muted); font-size: .88rem; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px;
  border-bottom: 1px solid var(--line); }
thead th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.idea-row th { background: #eef4fa; font-weight: 600; padding-top: 10px; }
tr.idea-row .tally { font-weight: 400; color: var(--muted); margin-left: .6rem; }
td.title { min-width: 16ch; overflow-wrap: anywhere; }
td.winner { font-weight: 600; }
td.rationale { color: var(--muted); overflow-wrap: anywhere; }
.chars { display: block; color: var(--muted); font-size: .78rem; font-weight: 400; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: .78rem;
  white-space: nowrap; border: 1px solid var(--line); background: var(--soft); }
.badge.tuned { background: #dafbe1; border-color: #aceebb; color: #116329; }
.badge.base { background: #ffebe9; border-color: #ffcecb; color: #82071e; }
.warnings { border: 1px solid #d4a72c; border-left: 6px solid #bf8700; background: #fff8c5;
  border-radius: 8px; padding: 10px 14px; margin: 1.2rem 0 0; }
.warnings h2 { font-size: 1rem; margin: 0 0 .3rem; padding: 0; border: 0; }
.warnings ul { margin: 0; padding-left: 1.2rem; }
.warnings li { margin: .15rem 0; }
figure.wide { grid-column: 1 / -1; }
figure.wide svg.chart { max-width: 900px; margin: 0 auto; }
code { font: .85rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; white-space: pre-wrap; }
@media print {
  :root { --fg: #000; --muted: #000; --accent: #000; --win: #000; --loss: #000; }
  body { font-size: 11pt; color: #000; background: #fff; }
  .container { max-width: none; padding: 0; }
  nav { display: none; }
  header, thead, thead th, nav, .warnings { position: static !important; }
  .lead, .meta, .note, .card h3, .card .detail, .chars, td.rationale, .tally, .no-data,
  .good, .bad, .badge, a { color: #000 !important; }
  .warnings { background: #fff; border-color: #000; break-inside: avoid; }
  .charts { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  svg.chart { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  .card, figure, svg { box-shadow: none; break-inside: avoid; page-break-inside: avoid; }
  tr, .idea-row { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .table-wrap { overflow: visible; }
}
"""

_PREFERRED_NOTE = "The title the judge preferred is in bold."
_SECTIONS = (
    ("summary", "Summary"),
    ("training", "Training curves"),
    ("rewards", "Rewards"),
    ("comparison-bars", "Base vs tuned"),
    ("lengths", "Title lengths"),
    ("ideas", "By idea"),
    ("samples", "Samples"),
    ("trust", "Trust the judge?"),
    ("config", "Configuration"),
    ("metrics", "All metrics"),
)


def _rate(value: object) -> str:
    """Rates arrive as fractions; anything outside [0, 1] is shown as the raw number."""
    number = finite(value)
    if number is None:
        return "n/a"
    return f"{number * 100:.1f}%" if 0.0 <= number <= 1.0 else fmt_number(number)


def _num(value: object, digits: int = 4) -> str:
    number = finite(value)
    if number is None:
        return "n/a"
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:.{digits}g}"


def _count(value: object) -> int | None:
    number = finite(value)
    return int(number) if number is not None and number.is_integer() and number >= 0 else None


def _last(history: Sequence[Mapping[str, Any]], key: str) -> float | None:
    for entry in reversed(history):
        value = finite(entry.get(key))
        if value is not None:
            return value
    return None


def _final(metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], key: str):
    """A final figure: the metrics' own, else the last the training history logged."""
    value = finite(metrics.get(key))
    return _last(history, key) if value is None else value


def _points(history: Sequence[Mapping[str, Any]], key: str) -> list[tuple[float, float]]:
    """``(step, value)`` pairs; entries without a finite step are skipped rather than guessed."""
    return [
        (entry["step"], entry[key])
        for entry in history
        if key in entry and "step" in entry
        if finite(entry["step"]) is not None and finite(entry[key]) is not None
    ]


def _card(title: str, value: str, detail: str = "", value_class: str = "") -> str:
    cls = f"value {value_class}".strip()
    detail_html = f'<div class="detail">{detail}</div>' if detail else ""
    return (
        f'<div class="card"><h3>{esc(title)}</h3><div class="{cls}">{esc(value)}</div>'
        f"{detail_html}</div>"
    )


def _figure(caption: str, chart: str, *, wide: bool = False) -> str:
    open_tag = '<figure class="wide">' if wide else "<figure>"
    return f"{open_tag}<figcaption>{esc(caption)}</figcaption>\n{chart}\n</figure>"


def _section(section_id: str, heading: str, body: str, intro: str = "") -> str:
    intro_html = f'<p class="note">{esc(intro)}</p>\n' if intro else ""
    return f'<section id="{section_id}">\n<h2>{esc(heading)}</h2>\n{intro_html}{body}\n</section>'


def _tally(comparisons: Iterable[Mapping[str, Any]]) -> tuple[int, int, int]:
    verdicts = [str(c.get("verdict", "")).strip().lower() for c in comparisons]
    return verdicts.count("tuned"), verdicts.count("tie"), verdicts.count("base")


def _summary(
    metrics: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    comparisons: Sequence[Mapping[str, Any]],
) -> str:
    cards = []

    win_rate = finite(metrics.get("win_rate"))
    n = _count(metrics.get("n_comparisons"))
    if n is None and comparisons:
        n = len(comparisons)
    low, high = finite(metrics.get("win_rate_ci_low")), finite(metrics.get("win_rate_ci_high"))
    ci_source = "Wilson"
    if (low is None or high is None) and win_rate is not None and 0 <= win_rate <= 1 and n:
        low, high = wilson_interval(win_rate, n)
        ci_source = "Wilson, computed here"
    detail, verdict_class = "95% CI n/a", ""
    if low is not None and high is not None:
        detail = f"95% CI {esc(_rate(low))} – {esc(_rate(high))} ({ci_source})"
        if low > 0.5:
            detail += '<br><span class="good">tuned better than base</span>'
            verdict_class = "good"
        elif high < 0.5:
            detail += '<br><span class="bad">tuned worse than base</span>'
            verdict_class = "bad"
        else:
            detail += "<br>not distinguishable from 50%"
    idea_low = finite(metrics.get("win_rate_ideas_ci_low"))
    idea_high = finite(metrics.get("win_rate_ideas_ci_high"))
    if idea_low is not None and idea_high is not None:
        detail += f"<br>over ideas (bootstrap): {esc(_rate(idea_low))} – {esc(_rate(idea_high))}"
    lc = finite(metrics.get("win_rate_length_controlled"))
    if lc is not None:
        detail += f"<br>length-controlled: {esc(_rate(lc))}"
    cards.append(_card("Win rate (tuned vs base)", _rate(win_rate), detail, verdict_class))

    wins, ties, losses = (_count(metrics.get(k)) for k in ("wins", "ties", "losses"))
    if (wins, ties, losses) == (None, None, None) and comparisons:
        wins, ties, losses = _tally(comparisons)
    wtl = " · ".join(
        f"{label} {esc('n/a' if value is None else value)}"
        for label, value in (("W", wins), ("T", ties), ("L", losses))
    )
    failed = _count(metrics.get("eval_failures"))
    failed_note = f"<br>{failed:,} more failed at the judge, left out" if failed else ""
    cards.append(
        _card(
            "Comparisons",
            "n/a" if n is None else f"{n:,}",
            f"{wtl} (wins for tuned){failed_note}",
        )
    )

    base_c, tuned_c = metrics.get("compliance_base"), metrics.get("compliance_tuned")
    delta = ""
    fb, ft = finite(base_c), finite(tuned_c)
    if fb is not None and ft is not None and 0 <= fb <= 1 and 0 <= ft <= 1:
        points = (ft - fb) * 100
        cls = "good" if points > 0 else "bad" if points < 0 else ""
        delta = f'<br><span class="{cls}">{points:+.1f} points</span>'
    cards.append(
        _card(
            "Rubric compliance",
            f"{_rate(base_c)} → {_rate(tuned_c)}",
            f"base → tuned{delta}",
        )
    )

    train_loss = _final(metrics, history, "train_loss")
    eval_loss = _final(metrics, history, "eval_loss")
    cards.append(
        _card(
            "Final loss",
            f"{_num(train_loss)} / {_num(eval_loss)}",
            "train (mean over run) / eval (last)",
        )
    )

    accuracy = _final(metrics, history, "eval_rewards/accuracies")
    margin = _final(metrics, history, "eval_rewards/margins")
    cards.append(
        _card(
            "Eval reward accuracy",
            _rate(accuracy),
            f"share of held-out pairs ranked right; margin {esc(_num(margin))}",
        )
    )

    implicit = _implicit_reward_card(metrics)
    if implicit:
        cards.append(implicit)

    if "position_flip_rate" in metrics:
        cards.append(
            _card(
                "Judge position flips",
                _rate(metrics.get("position_flip_rate")),
                "verdict changed when the order was swapped",
            )
        )
    return f'<div class="cards">\n{chr(10).join(cards)}\n</div>'


def _implicit_reward_card(metrics: Mapping[str, Any]) -> str:
    """The tuned model's own ranking of the held-out preference pairs, judge-free: the share
    of pairs whose implicit DPO reward margin (chosen over rejected) is positive."""
    if "implicit_reward_accuracy" not in metrics:
        return ""
    accuracy = finite(metrics.get("implicit_reward_accuracy"))
    pairs = _count(metrics.get("implicit_reward_pairs"))
    margin = finite(metrics.get("implicit_reward_margin_mean"))
    parts = [f"of {pairs:,} held-out pairs" if pairs else "of the held-out pairs"]
    parts[0] += " ranked as labelled by the tuned model's own DPO reward (no eval judge)"
    if pairs and accuracy is not None and 0 <= accuracy <= 1:
        low, high = wilson_interval(accuracy, pairs)
        parts.append(f"Wilson 95% CI {esc(_rate(low))} – {esc(_rate(high))}")
    if margin is not None:
        parts.append(f"mean margin {esc(_num(margin))}")
    detail = "<br>".join(parts)
    cls = ""
    if accuracy is not None and 0 <= accuracy <= 1 and pairs:
        low, high = wilson_interval(accuracy, pairs)
        cls = "good" if low > 0.5 else "bad" if high < 0.5 else ""
    return _card("Implicit reward accuracy", _rate(accuracy), detail, cls)


def _training(history: Sequence[Mapping[str, Any]]) -> str:
    def pair(key: str, what: str) -> list[Series]:
        return [
            Series(f"train {what}", _points(history, key), BLUE),
            Series(f"eval {what}", _points(history, f"eval_{key}"), ORANGE, dashed=True),
        ]

    charts = [
        _figure(
            "DPO loss",
            line_chart(
                [
                    Series("train loss", _points(history, "loss"), BLUE),
                    Series("eval loss", _points(history, "eval_loss"), ORANGE, dashed=True),
                ],
                title="DPO loss over training steps",
                x_label="step",
                y_label="loss",
            ),
        ),
        _figure(
            "Reward margins",
            line_chart(
                pair("rewards/margins", "margin"),
                title="Reward margin (chosen minus rejected) over training steps",
                x_label="step",
                y_label="reward margin",
                y_include=(0.0,),
            ),
        ),
        _figure(
            "Reward accuracies",
            line_chart(
                pair("rewards/accuracies", "accuracy"),
                title="Reward accuracy over training steps",
                x_label="step",
                y_label="accuracy",
                y_include=(0.0, 1.0),
            ),
        ),
    ]
    return f'<div class="charts">\n{chr(10).join(charts)}\n</div>'


def _rewards(history: Sequence[Mapping[str, Any]]) -> str:
    charts = []
    for prefix, split in (("", "Train"), ("eval_", "Eval")):
        charts.append(
            _figure(
                f"{split} rewards: chosen vs rejected",
                line_chart(
                    [
                        Series("chosen", _points(history, f"{prefix}rewards/chosen"), GREEN),
                        Series(
                            "rejected",
                            _points(history, f"{prefix}rewards/rejected"),
                            VERMILLION,
                            dashed=True,
                        ),
                    ],
                    title=f"{split} implicit rewards of chosen and rejected titles over steps",
                    x_label="step",
                    y_label="implicit reward",
                    y_include=(0.0,),
                ),
            )
        )
    return f'<div class="charts">\n{chr(10).join(charts)}\n</div>'


def _percent_or_none(value: object) -> float | None:
    number = finite(value)
    return number * 100 if number is not None and 0 <= number <= 1 else None


def _bars(metrics: Mapping[str, Any]) -> str:
    compliance = bar_chart(
        ["rubric compliance"],
        [
            BarSeries("base", [_percent_or_none(metrics.get("compliance_base"))], BLUE),
            BarSeries("tuned", [_percent_or_none(metrics.get("compliance_tuned"))], ORANGE),
        ],
        title="Rubric compliance, base vs tuned",
        x_label="metric",
        y_label="% of titles",
        y_include=(0.0, 100.0),
        value_format=lambda v: f"{v:.1f}%",
    )
    lengths = bar_chart(
        ["mean", "median"],
        [
            BarSeries("base", [metrics.get("mean_len_base"), metrics.get("median_len_base")], BLUE),
            BarSeries(
                "tuned", [metrics.get("mean_len_tuned"), metrics.get("median_len_tuned")], ORANGE
            ),
        ],
        title="Title length, base vs tuned",
        x_label="statistic",
        y_label="characters",
        value_format=lambda v: fmt_number(round(v, 1)),
    )
    diversity_rows = [
        (label, metrics.get(f"{key}_base"), metrics.get(f"{key}_tuned"))
        for label, key in (("distinct-1", "distinct1"), ("distinct-2", "distinct2"))
        if key == "distinct2" or f"{key}_base" in metrics or f"{key}_tuned" in metrics
    ]
    diversity = bar_chart(
        [label for label, _, _ in diversity_rows],
        [
            BarSeries("base", [b for _, b, _ in diversity_rows], BLUE),
            BarSeries("tuned", [t for _, _, t in diversity_rows], ORANGE),
        ],
        title="Diversity (distinct word n-grams), base vs tuned",
        x_label="share of word n-grams that are distinct",
        y_label="distinct-n",
        y_include=(0.0, 1.0),
        value_format=lambda v: f"{v:.3f}",
    )
    figures = [
        _figure("Rubric compliance", compliance),
        _figure("Title length", lengths),
        _figure("Diversity", diversity),
    ]
    return f'<div class="charts">\n{chr(10).join(figures)}\n</div>'


def _title_lengths(comparisons: Sequence[Mapping[str, Any]], key: str) -> list[int]:
    return [len(c[key]) for c in comparisons if isinstance(c.get(key), str)]


def _length_bins(metrics: Mapping[str, Any]) -> str:
    bins = metrics.get("win_rate_by_length")
    if not isinstance(bins, list) or not bins:
        return ""
    rows = "".join(
        f'<tr><td>{esc(str(b.get("bin", "")))}</td><td class="num">{esc(_num(b.get("n")))}</td>'
        f'<td class="num">{esc(_rate(b.get("win_rate")))}</td></tr>'
        for b in bins
        if isinstance(b, Mapping)
    )
    lc = metrics.get("win_rate_length_controlled")
    note = (
        f"<p>Length-controlled win rate (AlpacaEval's: a logistic fit on the length difference, "
        f"read at no difference): {esc(_rate(lc))}.</p>"
        if finite(lc) is not None
        else ""
    )
    return (
        "<p>Judges favour length. The win rate within bins of the length difference (tuned minus "
        "base, ±10 characters counts as the same) shows how much of the win is length.</p>"
        '<div class="table-wrap"><table class="length-bins"><thead><tr><th>length</th>'
        '<th class="num">comparisons</th><th class="num">win rate</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>{note}"
    )


def _lengths(comparisons: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> str:
    chart = histogram_pair(
        _title_lengths(comparisons, "base_title"),
        _title_lengths(comparisons, "tuned_title"),
        names=("base", "tuned"),
        colors=(BLUE, ORANGE),
        title="Distribution of title lengths, base vs tuned",
        x_label="title length (characters)",
        y_label="titles",
    )
    figure = f'<div class="charts">\n{_figure("Title length histogram", chart)}\n</div>'
    return figure + _length_bins(metrics)


def _ideas(comparisons: Sequence[Mapping[str, Any]]) -> str:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for comparison in comparisons:
        groups.setdefault(str(comparison.get("idea", "")) or "(no idea)", []).append(comparison)
    rows = []
    for idea, members in groups.items():
        wins, ties, losses = _tally(members)
        if wins + ties + losses:
            rows.append((idea, (wins, ties, losses)))
    # Best ideas for the tuned model first, so the chart reads as a distribution.
    rows.sort(key=lambda r: (-(r[1][0] + 0.5 * r[1][1]) / sum(r[1]), r[0]))
    chart = verdict_rows(
        rows,
        [("tuned wins", GREEN), ("tie", GREY), ("base wins", VERMILLION)],
        title="Verdicts per held-out idea, tuned vs base",
    )
    return f'<div class="charts">\n{_figure("Verdicts by idea", chart, wide=True)}\n</div>'


def _sample_key(comparison: Mapping[str, Any]) -> tuple[int, float, str]:
    sample = finite(comparison.get("sample"))
    if sample is None:
        return (1, 0.0, str(comparison.get("sample", "")))
    return (0, sample, "")


def _title_cell(title: object, won: bool) -> str:
    text = "" if title is None else str(title)
    cls = "title winner" if won else "title"
    return f'<td class="{cls}">{esc(text)}<span class="chars">{len(text)} chars</span></td>'


def _samples(comparisons: Sequence[Mapping[str, Any]]) -> str:
    if not comparisons:
        return no_data("Sample comparisons")
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for comparison in comparisons:
        groups.setdefault(str(comparison.get("idea", "")), []).append(comparison)

    rows = [
        '<div class="table-wrap"><table class="samples">',
        '<thead><tr><th class="num">sample</th><th>base title</th><th>tuned title</th>'
        "<th>verdict</th><th>judge rationale</th></tr></thead>",
    ]
    for idea, members in groups.items():
        wins, ties, losses = _tally(members)
        rows.append("<tbody>")
        rows.append(
            f'<tr class="idea-row"><th colspan="5" scope="rowgroup">{esc(idea or "(no idea)")}'
            f'<span class="tally">tuned W {wins} · T {ties} · L {losses}</span></th></tr>'
        )
        for comparison in sorted(members, key=_sample_key):
            verdict = str(comparison.get("verdict", "")).strip().lower()
            label = _VERDICTS.get(verdict, str(comparison.get("verdict", "")) or "n/a")
            badge_class = verdict if verdict in _VERDICTS else "unknown"
            rationale = comparison.get("rationale") or ""
            rows.append(
                '<tr class="sample-row">'
                f'<td class="num">{esc(comparison.get("sample", ""))}</td>'
                f"{_title_cell(comparison.get('base_title'), verdict == 'base')}"
                f"{_title_cell(comparison.get('tuned_title'), verdict == 'tuned')}"
                f'<td><span class="badge {badge_class}">{esc(label)}</span></td>'
                f'<td class="rationale">{esc(rationale)}</td>'
                "</tr>"
            )
        rows.append("</tbody>")
    rows.append("</table></div>")
    return "\n".join(rows)


def _trust(agreement: Mapping[str, Any] | None, human_eval: Mapping[str, Any] | None) -> str:
    parts = []
    if agreement and _count(agreement.get("pairs_compared")):
        ci = agreement.get("kappa_ci")
        kappa = _num(agreement.get("kappa"), 3)
        if isinstance(ci, list) and len(ci) == 2:
            kappa += f" (95% CI {_num(ci[0], 3)} to {_num(ci[1], 3)}, bootstrap over ideas)"
        parts.append(
            "<p>The judge <code>"
            + esc(str(agreement.get("judge", "")))
            + "</code> labelled the "
            + esc(_num(agreement.get("pairs_compared")))
            + " pairs people labelled (both orders, "
            + esc(str(agreement.get("mode", "")))
            + ").</p>"
        )
        parts.append(
            _key_value_table(
                [
                    ("agreement with people", _rate(agreement.get("agreement"))),
                    ("Cohen's kappa", kappa),
                    ("judge position flips", _rate(agreement.get("position_flip_rate"))),
                    ("people: can't tell", _rate(agreement.get("human_cant_tell_rate"))),
                    ("judge: can't tell", _rate(agreement.get("judge_cant_tell_rate"))),
                    ("failed calls", _num(agreement.get("failed"))),
                ],
                "trust",
                ("figure", "value"),
            )
        )
        confusion = agreement.get("confusion")
        if isinstance(confusion, Mapping):
            answers = list(confusion)
            head = "".join(f"<th>judge: {esc(a)}</th>" for a in answers)
            rows = "".join(
                f"<tr><th>people: {esc(h)}</th>"
                + "".join(f"<td>{esc(_num(confusion[h].get(a)))}</td>" for a in answers)
                + "</tr>"
                for h in answers
                if isinstance(confusion[h], Mapping)
            )
            parts.append(
                '<div class="table-wrap"><table class="confusion"><thead><tr><th></th>'
                f"{head}</tr></thead><tbody>{rows}</tbody></table></div>"
            )
    if human_eval and _count(human_eval.get("human_comparisons")):
        ci = human_eval.get("human_win_rate_ci") or [None, None]
        parts.append(
            _key_value_table(
                [
                    ("blind human comparisons", _num(human_eval.get("human_comparisons"))),
                    (
                        "human win rate of the tuned model",
                        f"{_rate(human_eval.get('human_win_rate'))} (Wilson 95% CI "
                        f"{_rate(ci[0])} – {_rate(ci[1])})",
                    ),
                    (
                        "judge's win rate, same comparisons",
                        _rate(human_eval.get("judge_win_rate_same")),
                    ),
                    ("human and judge agree", _rate(human_eval.get("human_judge_agreement"))),
                    (
                        "Cohen's kappa (tuned / base / tie)",
                        _num(human_eval.get("human_judge_kappa"), 3),
                    ),
                ],
                "human-eval",
                ("figure", "value"),
            )
        )
    if not parts:
        return (
            '<p class="no-data">No human labels were given. Label pairs with '
            "<code>dpo-titles annotate</code> and pass them as human preferences (the judge is "
            "then measured against them), or label the comparisons blind and pass "
            "<code>--human-eval</code> to <code>dpo-titles report</code>.</p>"
        )
    return "\n".join(parts)


def _config_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _key_value_table(
    rows: Iterable[tuple[str, str]], css_class: str, headers: tuple[str, str]
) -> str:
    body = [
        f'<div class="table-wrap"><table class="{css_class}">',
        f"<thead><tr><th>{esc(headers[0])}</th><th>{esc(headers[1])}</th></tr></thead><tbody>",
    ]
    body += [
        f"<tr><td><code>{esc(k)}</code></td><td><code>{esc(v)}</code></td></tr>" for k, v in rows
    ]
    body.append("</tbody></table></div>")
    return "\n".join(body)


def _config(config: Mapping[str, Any]) -> str:
    if not config:
        return no_data("Configuration")
    redacted = redact_config(config)
    return _key_value_table(
        ((str(k), _config_value(v)) for k, v in redacted.items()), "config", ("key", "value")
    )


def _metric_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _config_value(value)
    if not math.isfinite(float(value)):
        return f"n/a ({value})"
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    if not metrics:
        return no_data("Metrics")
    return _key_value_table(
        ((str(k), _metric_value(metrics[k])) for k in sorted(metrics, key=str)),
        "metrics",
        ("metric", "value"),
    )


def _warning_list(metrics: Mapping[str, Any]) -> list[str]:
    """The evaluation's own warnings (a list of strings; one string is taken as one warning),
    plus what the report can tell from the figures: failed comparisons, and, for metrics
    written before the evaluation listed warnings, a shared labelling and evaluation judge."""
    raw = metrics.get("warnings")
    if isinstance(raw, str):
        raw = [raw]
    found = [str(w).strip() for w in raw if str(w).strip()] if isinstance(raw, list) else []
    label_judge, eval_judge = metrics.get("label_judge"), metrics.get("eval_judge")
    if (
        "warnings" not in metrics
        and isinstance(label_judge, str)
        and label_judge
        and label_judge == eval_judge
    ):
        found.append(_SAME_JUDGE_WARNING.format(judge=label_judge))
    failed = _count(metrics.get("eval_failures"))
    if failed:
        found.append(
            f"{failed:,} comparison{'s' if failed != 1 else ''} failed at the judge and "
            f"{'are' if failed != 1 else 'is'} left out of every figure"
        )
    return list(dict.fromkeys(found))


def _warnings(metrics: Mapping[str, Any]) -> str:
    found = _warning_list(metrics)
    if not found:
        return ""
    items = "\n".join(f"<li>{esc(w)}</li>" for w in found)
    return (
        '<aside class="warnings" id="warnings" role="note" aria-labelledby="warnings-heading">\n'
        f'<h2 id="warnings-heading">Read with care</h2>\n<ul>\n{items}\n</ul>\n</aside>'
    )


def _header(metrics: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    meta = []
    for key in ("model", "base_model", "model_name"):
        if isinstance(config.get(key), str) and config[key]:
            meta.append(f"Base model: <code>{esc(config[key])}</code>")
            break
    for key, label in (
        ("label_judge", "Preference labels"),
        ("eval_judge", "Evaluation judge"),
        ("eval_ideas_source", "Evaluation ideas"),
    ):
        if metrics.get(key) not in (None, ""):
            meta.append(f"{label}: <code>{esc(metrics[key])}</code>")
    meta_html = f'<p class="meta">{" · ".join(meta)}</p>' if meta else ""
    nav = " ".join(f'<a href="#{sid}">{esc(name)}</a>' for sid, name in _SECTIONS)
    return (
        f"<header>\n<h1>{esc(PAGE_TITLE)}</h1>\n"
        '<p class="lead">A small language model was tuned with Direct Preference Optimization '
        "(DPO) on pairs of YouTube titles, one preferred over the other. Below, titles from the "
        "base and the tuned model for held-out ideas are compared by a judge that saw each pair "
        "blind, in random order. Win rate is how often the tuned title was preferred, with its "
        "Wilson 95% confidence interval; 50% means no difference.</p>\n"
        f'{meta_html}\n<nav aria-label="Sections">{nav}</nav>\n</header>'
    )


def build_report(
    *,
    metrics: dict,
    log_history: list[dict],
    comparisons: list[dict],
    config: dict,
    agreement: dict | None = None,
    human_eval: dict | None = None,
) -> str:
    """Render the whole report as one HTML string.

    ``metrics`` holds rates as fractions in [0, 1]; any key may be missing. ``log_history`` is a
    Trainer's ``state.log_history``; ``comparisons`` has one dict per blinded comparison
    (``idea``, ``sample``, ``base_title``, ``tuned_title``, ``verdict``, ``rationale``).
    ``None`` is accepted for any input and treated as empty.
    """
    metrics = dict(metrics or {})
    history = [e for e in (log_history or []) if isinstance(e, Mapping)]
    samples = [c for c in (comparisons or []) if isinstance(c, Mapping)]
    config = dict(config or {})

    sections = [
        _section("summary", "Summary", _summary(metrics, history, samples)),
        _section(
            "training",
            "Training curves",
            _training(history),
            "Train values are logged every few steps, eval values at each evaluation; "
            "dashed lines are eval.",
        ),
        _section(
            "rewards",
            "Rewards of chosen and rejected titles",
            _rewards(history),
            "DPO's implicit reward: the scaled log-probability ratio of the tuned policy to the "
            "reference model. Training should raise chosen relative to rejected.",
        ),
        _section("comparison-bars", "Base vs tuned", _bars(metrics)),
        _section(
            "lengths",
            "Title lengths",
            _lengths(samples, metrics),
            "Character counts of the base and tuned titles in the comparisons below.",
        ),
        _section(
            "ideas",
            "Verdicts by idea",
            _ideas(samples),
            "One bar per held-out idea: how its comparisons went. A tuned model that wins overall "
            "on a few ideas only shows here as a few long green bars.",
        ),
        _section(
            "samples",
            "Samples, grouped by idea",
            _samples(samples),
            " ".join(p for p in (str(metrics.get("base_model_note") or ""), _PREFERRED_NOTE) if p),
        ),
        _section(
            "trust",
            "How far to trust the judge",
            _trust(agreement, human_eval),
            "The judge against people: on pairs people labelled, and on blind human verdicts of "
            "the comparisons above. Kappa 1 is full agreement, 0 what chance gives.",
        ),
        _section("config", "Configuration", _config(config)),
        _section("metrics", "All metrics", _metrics_table(metrics)),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(PAGE_TITLE)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        '<main class="container">\n'
        f"{_header(metrics, config)}\n{_warnings(metrics)}\n"
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )


def save_report(
    path: str | os.PathLike[str],
    *,
    metrics: dict,
    log_history: list[dict],
    comparisons: list[dict],
    config: dict,
    agreement: dict | None = None,
    human_eval: dict | None = None,
    force: bool = False,
) -> Path:
    """Build the report and write it to ``path`` under the output policy (`outputs`); returns
    the path. A reader (the KFP UI, a retried task) never sees a half-written page."""
    text = build_report(
        metrics=metrics,
        log_history=log_history,
        comparisons=comparisons,
        config=config,
        agreement=agreement,
        human_eval=human_eval,
    )
    target = Path(path)
    with atomic_file(target, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return target
