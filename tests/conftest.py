"""Shared fixtures: a tiny model built here (never downloaded) and small input files."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "data" / "title_corpus.csv"
# What a finished run folder holds (runs/<run-id>/), whichever runner ran it.
RUN_ARTIFACTS = (
    "report.html",
    "metrics.json",
    "candidates.csv",
    "preferences.csv",
    "comparisons.csv",
    "ideas.csv",
    "dataset/split.json",
    "dataset/hf",
    "model/config.json",
    "model/log_history.json",
    "model/README.md",
    "evaluation/metrics.json",
    "agreement.json",
)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A smaller, quicker cousin of `make tiny-model`, trained on part of the bundled corpus."""
    from dpo_titles.tiny_model import TinyModelConfig, build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    with open(CORPUS, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:1500]
    corpus = root / "corpus.csv"
    with open(corpus, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["idea", "title"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    config = TinyModelConfig(
        vocab_size=1024,
        hidden_size=64,
        intermediate_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        copy_steps=60,
        copy_batch_size=16,
        epochs=4,
        batch_size=16,
        learning_rate=5e-3,
        seed=7,
    )
    return build_tiny_model(corpus, root / "model", config)


def bundled_ideas(path: Path, count: int, columns=("idea",)) -> Path:
    """The first `count` bundled ideas, with `columns`, written to `path`."""
    with open(REPO / "data" / "ideas.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:count]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture()
def ideas_csv(tmp_path) -> Path:
    """Twelve ideas from the bundled file, enough for a split by idea."""
    return bundled_ideas(tmp_path / "ideas.csv", 12)


def pipeline_wiring() -> dict[str, dict[str, tuple]]:
    """What feeds each task's parameters in the compiled pipeline: ("param", pipeline parameter),
    ("constant", value) or ("other", how), by task name (a task in the fan-out loop included)."""
    import yaml

    spec = next(yaml.safe_load_all((REPO / "pipelines" / "dpo_titles_pipeline.yaml").read_text()))
    dags = [spec["root"]["dag"]["tasks"]]
    dags += [c["dag"]["tasks"] for c in spec["components"].values() if "dag" in c]
    wiring: dict[str, dict[str, tuple]] = {}
    for tasks in dags:
        for name, task in tasks.items():
            found = {}
            component = spec["components"][task["componentRef"]["name"]]
            declared = component.get("inputDefinitions", {}).get("parameters", {})
            for param, source in task.get("inputs", {}).get("parameters", {}).items():
                if param not in declared:
                    continue  # what KFP adds itself (the GPU request's values)
                if "componentInputParameter" in source:
                    pipeline = source["componentInputParameter"].removeprefix("pipelinechannel--")
                    found[param] = ("param", pipeline)
                elif "runtimeValue" in source:
                    found[param] = ("constant", source["runtimeValue"]["constant"])
                else:
                    found[param] = ("other", next(iter(source)))
            wiring[name] = found
    return wiring


def pipeline_arguments(task: str, **given) -> dict:
    """Every parameter of the pipeline's task `task`, as the pipeline passes it at its own
    defaults (the one definition of them), then `given`: to call a component as it runs."""
    from pipelines.pipeline import dpo_titles_pipeline

    defaults = {n: s.default for n, s in dpo_titles_pipeline.component_spec.inputs.items()}
    args = {}
    for param, (kind, source) in pipeline_wiring()[task].items():
        if kind == "param" and source in defaults:
            args[param] = defaults[source]
        elif kind == "constant":
            args[param] = source
    return {**args, **given}


def preflight_arguments(**given) -> dict:
    """The preflight component's parameters, as the pipeline passes them (see
    pipeline_arguments)."""
    return pipeline_arguments("preflight", **given)


# --- A real browser (the report's and the annotation page's tests) ----------------------------

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
APT_LINE = "apt-get install -y --no-install-recommends chromium"


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
    """The system Chromium's path; skipped without one, except under CI (then a failure)."""
    path = _find_browser()
    if path is None:
        message = f"no {', '.join(BROWSER_NAMES)} on PATH; install it with `{APT_LINE}`"
        if _in_ci():
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    return path


# Headless, no sandbox (containers run as root), no network chatter of its own.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Containers often give /dev/shm only 64 MB, which crashes renderers of long pages.
    "--disable-dev-shm-usage",
)


class Chromium:
    """The system Chromium through Playwright (no browser download), recording what a reader
    must never meet: console errors, page exceptions, dialogs (dismissed)."""

    def __init__(self, browser, timeout_ms: int, console_levels: tuple[str, ...]):
        self.browser, self.timeout_ms, self.console_levels = browser, timeout_ms, console_levels
        self.problems: list[str] = []

    def page(self, viewport: dict, **context_options):
        """A page in a fresh context of this size, watched for problems."""
        context = self.browser.new_context(viewport=viewport, **context_options)
        context.set_default_timeout(self.timeout_ms)
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"exception: {error}"))
        page.on("dialog", self._dialog)
        return page

    def _console(self, message) -> None:
        if message.type in self.console_levels:
            self.problems.append(f"console.{message.type}: {message.text} ({message.location})")

    def _dialog(self, dialog) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()


@contextlib.contextmanager
def chromium(browser_path: str, timeout_ms: int = 60_000, console_levels=("error", "assert")):
    """Launch the system Chromium headless; closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path, args=list(CHROMIUM_FLAGS), timeout=timeout_ms
        )
        try:
            yield Chromium(browser, timeout_ms, tuple(console_levels))
        finally:
            browser.close()
