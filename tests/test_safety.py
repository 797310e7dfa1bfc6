"""Attacks on the command line's writers and readers, as a careless user or an attacker would try.

Every attack runs against one shared folder of a user's data (inputs, earlier outputs, files and
folders of the user's own). Each asserts the exit status, that the error is one line with no
traceback, and that every file that existed before is still there, unchanged, and that nothing
was written where it was not asked to be.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dpo_titles.cli import main
from dpo_titles.outputs import LEDGER
from tests.conftest import REPO
from tests.fakes import Brain, FaultPlan, GeminiServer, TogetherServer
from tests.fakes.gcs import AnyNameGcs, GcsEmulator

QUIET_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_OFFLINE": "1"}


# --------------------------------------------------------------------------------------------
# The user's folder, and how to tell that nothing in it changed
# --------------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root`: kind, content hash and mode."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path), mode)
        elif path.is_dir():
            out[rel] = ("dir", None, mode)
        else:
            out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), mode)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model):
    """A user's project folder: inputs, the outputs of a whole run, and files of their own."""
    from dpo_titles import stages
    from dpo_titles.settings import Evaluation, Generation, Labelling, Sampling, Split

    root = tmp_path_factory.mktemp("world")
    with open(REPO / "data" / "ideas.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:12]
    with open(root / "ideas.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["idea"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    shutil.copytree(tiny_model, root / "base")
    with open(REPO / "data" / "title_corpus.csv", newline="", encoding="utf-8") as fh:
        corpus = list(csv.DictReader(fh))[:60]
    with open(root / "corpus.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["idea", "title"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(corpus)
    base = str(root / "base")
    generation = Generation(provider="hf", model=base, titles_per_idea=4, seed=3)
    stages.generate(str(root / "ideas.csv"), str(root / "cand.csv"), generation, Sampling())
    stages.label(str(root / "cand.csv"), str(root / "prefs.csv"), Labelling())
    stages.prepare(str(root / "prefs.csv"), str(root / "ds"), Split(val_fraction=0.25, seed=1))
    stages.train(base, str(root / "ds"), str(root / "tuned"), "local", {"num_train_epochs": 1})
    evaluation = Evaluation(samples_per_idea=1)
    stages.evaluate(
        base, str(root / "tuned"), str(root / "ds"), str(root / "eval"), evaluation, Sampling()
    )
    # The user's own things, which no command was asked to touch.
    (root / "mine").mkdir()
    (root / "mine" / "thesis.txt").write_text("three years of work\n")
    (root / "notes.txt").write_text("call mum\n")
    (root / "sub").mkdir()
    (root / "sub" / "keep.txt").write_text("keep\n")
    return root


@pytest.fixture()
def untouched(world):
    """Asserts, after the test, that the user's folder is exactly as it was."""
    before = snapshot(world)
    yield world
    after = snapshot(world)
    changed = {k for k in before if after.get(k) != before[k]}
    added = set(after) - set(before)
    assert not changed, f"changed or removed: {sorted(changed)}"
    assert not added, f"written where not asked: {sorted(added)}"


def one_error_line(err: str, command: str, status_word: str = "error") -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"dpo-titles {command}: {status_word}: "), lines[0]
    return lines[0]


def refused(capfd, argv: list[str], *needles: str) -> str:
    """Run the command in this process; it must exit 2 with one line holding every needle."""
    capfd.readouterr()  # what earlier commands printed
    code = main(["-q", *argv])
    err = capfd.readouterr().err
    assert code == 2, err
    line = one_error_line(err, argv[0])
    for needle in needles:
        assert needle in line, line
    return line


def cli(
    *args: str, cwd: Path, env: dict | None = None, stdin: str | None = None, quiet: bool = True
):
    """The real command, in a process of its own (quiet: warnings and errors only, and no
    JSON summary on stdout)."""
    return subprocess.run(
        [sys.executable, "-m", "dpo_titles.cli", *(["-q"] if quiet else []), *args],
        cwd=cwd,
        env={**os.environ, **QUIET_ENV, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


# The commands that write, each with its inputs under `{w}` (the world) and `{out}` its output.
WRITERS = {
    "validate": ["--ideas", "{w}/ideas.csv", "--out", "{out}"],
    "generate": ["--ideas", "{w}/ideas.csv", "--model", "{w}/base", "--n", "2", "--out", "{out}"],
    "label": ["--candidates", "{w}/cand.csv", "--out", "{out}"],
    "prepare": ["--preferences", "{w}/prefs.csv", "--out", "{out}"],
    "train": [
        *("--model", "{w}/base", "--dataset", "{w}/ds", "--recipe", "local"),
        *("--out", "{out}"),
    ],
    "evaluate": [
        *("--base-model", "{w}/base", "--tuned-model", "{w}/tuned", "--dataset", "{w}/ds"),
        *("--k", "1", "--out", "{out}"),
    ],
    "report": ["--eval", "{w}/eval", "--model", "{w}/tuned", "--out", "{out}"],
    "tiny-model": ["--corpus", "{w}/corpus.csv", "--epochs", "1", "--out", "{out}"],
}
# An input of each command that is a folder, where it has one.
INPUT_FOLDER = {"generate": "base", "train": "ds", "evaluate": "tuned", "report": "eval"}
FIRST_INPUT = {c: args[1].removeprefix("{w}/") for c, args in WRITERS.items()}


def argv_for(command: str, out: str, *extra: str, w: str | Path = ".") -> list[str]:
    return [command, *(a.format(out=out, w=w) for a in WRITERS[command]), *extra]


# --------------------------------------------------------------------------------------------
# Outputs: never over what the user has, never over an input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_an_existing_folder_or_file_of_the_users_is_never_replaced(
    command, force, untouched, capfd, monkeypatch
):
    monkeypatch.chdir(untouched)
    extra = ["--force"] if force else []
    for target in ("mine", "notes.txt"):
        refused(capfd, argv_for(command, target, *extra), target, "not written by dpo-titles")


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_dot_dotdot_ancestors_and_inputs_are_refused_as_outputs(
    command, untouched, capfd, monkeypatch
):
    monkeypatch.chdir(untouched / "sub")

    def attempt(out: str, *needles: str) -> None:
        refused(capfd, argv_for(command, out, "--force", w=untouched), *needles)

    attempt(".", "'.' or '..'")
    attempt("..", "'.' or '..'")
    attempt(str(untouched), "the current folder or one above it")
    attempt(str(untouched.parent), "the current folder or one above it")
    attempt(f"{untouched}/{FIRST_INPUT[command]}", "is the input")
    if command in INPUT_FOLDER:
        attempt(f"{untouched}/{INPUT_FOLDER[command]}/new", "inside the input folder")
    # Inside an output folder of dpo-titles: it would no longer be that output.
    inside = "ds/more" if command == "report" else "eval/more"
    attempt(f"{untouched}/{inside}", "an output folder of")


def test_odd_output_names_are_refused_before_any_work(untouched, capfd, monkeypatch):
    monkeypatch.chdir(untouched)
    refused(capfd, argv_for("label", LEDGER), "dpo-titles' own bookkeeping")
    refused(capfd, argv_for("label", "x" * 230 + ".csv"), "is over 200 bytes")
    refused(capfd, argv_for("label", "notes.txt/prefs.csv"), "notes.txt is a file, not a folder")
    # An output of ours of the other kind: a file where a folder goes, and the other way round.
    refused(capfd, argv_for("prepare", "cand.csv", "--force"), "is a file, and this writes")
    refused(capfd, argv_for("label", "ds", "--force"), "is a folder, and this writes a file")


def test_a_file_of_the_users_named_like_the_ledger_is_left_alone(world, tmp_path):
    (tmp_path / LEDGER).write_text('{"my": "settings"}')
    argv = ["label", "--candidates", str(world / "cand.csv"), "--out", "p.csv"]
    assert cli(*argv, cwd=tmp_path).returncode == 0
    assert (tmp_path / LEDGER).read_text() == '{"my": "settings"}'


def test_run_folders_stay_in_the_runs_folder_and_latest_is_never_a_users(tmp_path):
    from dpo_titles.errors import UserError
    from pipelines.run_folder import point_latest, start_run_dir

    for run_id in ("../outside", "a/b", ".hidden", "latest"):
        with pytest.raises(UserError, match="plain folder name"):
            start_run_dir(tmp_path / "runs", run_id)
    assert not (tmp_path / "outside").exists()
    run = start_run_dir(tmp_path / "runs", "r1")
    point_latest(run)
    assert os.readlink(tmp_path / "runs" / "latest") == "r1"
    (tmp_path / "runs" / "latest").unlink()
    (tmp_path / "runs" / "latest").symlink_to(tmp_path / "mine")  # a link of the user's
    with pytest.raises(UserError, match="is not the link dpo-titles keeps"):
        point_latest(run)
    assert os.readlink(tmp_path / "runs" / "latest") == str(tmp_path / "mine")


def test_an_output_of_ours_is_replaced_only_with_force_and_only_while_it_is_ours(
    tmp_path, capfd, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prefs.csv").write_text(
        "idea,chosen,rejected\n"
        + "".join(f"idea {i},A Good Long Title Number {i},bad\n" for i in range(6))
    )
    assert main(["-q", "prepare", "--preferences", "prefs.csv", "--out", "ds"]) == 0
    first = snapshot(tmp_path / "ds")
    refused(capfd, ["prepare", "--preferences", "prefs.csv", "--out", "ds"], "--force")
    assert snapshot(tmp_path / "ds") == first
    argv = ["prepare", "--preferences", "prefs.csv", "--out", "ds", "--seed", "7", "--force"]
    assert main(["-q", *argv]) == 0
    assert json.loads((tmp_path / "ds" / "split.json").read_text())["seed"] == 7
    # A file the user put into it makes it theirs too: even --force leaves it alone.
    (tmp_path / "ds" / "my-notes.md").write_text("mine")
    before = snapshot(tmp_path / "ds")
    refused(capfd, argv, "my-notes.md", "did not write there")
    assert snapshot(tmp_path / "ds") == before
    # No temporary names were left beside it (a folder carries its own marker, no ledger).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "prefs.csv"]


def test_a_checkpoint_folder_of_the_users_is_refused(untouched, capfd, monkeypatch):
    monkeypatch.chdir(untouched)
    argv = argv_for("train", "tuned2", "--checkpoint-dir", "mine")
    refused(capfd, argv, "--checkpoint-dir mine holds files that dpo-titles did not put there")
    refused(capfd, argv_for("train", "t2", "--checkpoint-dir", "ds/ck"), "inside the input")
    refused(capfd, argv_for("train", "t3", "--checkpoint-dir", "t3"), "is the input t3")
    refused(capfd, argv_for("train", "t4", "--checkpoint-dir", "t4/ck"), "holds the input")
    refused(capfd, argv_for("train", "t5", "--checkpoint-dir", "eval/ck"), "an output folder")


def test_files_added_to_our_checkpoint_folder_are_never_removed(world, tmp_path):
    ck = tmp_path / "ck"
    argv = argv_for("train", str(tmp_path / "t1"), "--set", "num_train_epochs=1", w=world)
    assert (
        cli(*argv, "--set", "save_steps=2", "--checkpoint-dir", str(ck), cwd=tmp_path).returncode
        == 0
    )
    (ck / "checkpoint-keep").mkdir()
    (ck / "checkpoint-keep" / "notes.txt").write_text("precious")
    argv = argv_for("train", str(tmp_path / "t2"), "--set", "num_train_epochs=1", w=world)
    result = cli(*argv, "--checkpoint-dir", str(ck), cwd=tmp_path)
    assert result.returncode == 2
    assert "holds files that dpo-titles did not put there (checkpoint-keep)" in result.stderr
    assert (ck / "checkpoint-keep" / "notes.txt").read_text() == "precious"


def test_a_failures_file_is_never_an_input(untouched, capfd, monkeypatch):
    monkeypatch.chdir(untouched)
    argv = argv_for("generate", "ideas")
    argv[argv.index("./ideas.csv")] = "ideas.failures.jsonl"
    (untouched / "ideas.failures.jsonl").write_text("idea\nx\n")
    try:
        refused(capfd, argv, "failures file ideas.failures.jsonl is the input")
        assert (untouched / "ideas.failures.jsonl").read_text() == "idea\nx\n"
    finally:
        (untouched / "ideas.failures.jsonl").unlink()


def test_an_edited_file_or_a_users_file_in_our_folder_is_never_replaced(world, tmp_path, capfd):
    for change in ("edit", "add"):
        ds = tmp_path / f"ds-{change}"
        argv = ["prepare", "--preferences", str(world / "prefs.csv"), "--out", str(ds)]
        assert main(["-q", *argv]) == 0
        if change == "edit":
            (ds / "train.jsonl").write_text("MY HAND-CURATED PAIRS\n")
            needle = "train.jsonl in it was changed after dpo-titles wrote it"
        else:
            (ds / "hf" / ".notes.partial").write_text("mine")
            needle = "it holds hf/.notes.partial, which dpo-titles did not write there"
        before = snapshot(ds)
        refused(capfd, [*argv, "--force"], needle)
        assert snapshot(ds) == before


# --------------------------------------------------------------------------------------------
# Two runs writing the same output
# --------------------------------------------------------------------------------------------


def _race(cwd: Path, argvs: list[list[str]]) -> list[subprocess.CompletedProcess]:
    results: list = [None] * len(argvs)
    start = threading.Barrier(len(argvs))

    def go(i: int) -> None:
        start.wait()
        results[i] = cli(*argvs[i], cwd=cwd)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(argvs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("force", [False, True], ids=["new", "forced-over-ours"])
def test_two_runs_writing_one_folder_leave_exactly_one_runs_output(world, tmp_path, force):
    shutil.copy(world / "prefs.csv", tmp_path / "prefs.csv")
    argv = [["prepare", "--preferences", "prefs.csv", "--seed", str(s)] for s in (1, 2)]
    for seed_argv, name in zip(argv, ("alone1", "alone2"), strict=True):
        assert cli(*seed_argv, "--out", name, cwd=tmp_path).returncode == 0
    if force:
        assert cli(*argv[0], "--out", "race", "--seed", "9", cwd=tmp_path).returncode == 0
    extra = ["--force"] if force else []
    results = _race(tmp_path, [[*a, "--out", "race", *extra] for a in argv])
    codes = sorted(r.returncode for r in results)
    assert codes in ([0, 0], [0, 2]), [r.stderr for r in results]
    for r in results:
        if r.returncode:
            assert one_error_line(r.stderr, "prepare")
    survivor = _tree(tmp_path / "race")
    assert survivor in (_tree(tmp_path / "alone1"), _tree(tmp_path / "alone2"))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith((".partial", ".old"))]
    assert leftovers == []


def test_two_runs_writing_one_file_leave_exactly_one_runs_output(world, tmp_path):
    rows = list(csv.DictReader(open(world / "cand.csv", encoding="utf-8")))
    ideas = sorted({r["idea"] for r in rows})
    for name, keep in (("a.csv", ideas[:6]), ("b.csv", ideas[6:])):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(r for r in rows if r["idea"] in keep)
    for name in ("a", "b"):
        argv = ["label", "--candidates", f"{name}.csv", "--out", f"alone-{name}.csv"]
        assert cli(*argv, cwd=tmp_path).returncode == 0
    results = _race(
        tmp_path,
        [["label", "--candidates", f"{n}.csv", "--out", "race.csv"] for n in ("a", "b")],
    )
    assert sorted(r.returncode for r in results) == [0, 2], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode)
    assert "appeared while this run was writing it" in loser.stderr or "already exists" in (
        loser.stderr
    )
    survivor = (tmp_path / "race.csv").read_bytes()
    assert survivor in (
        (tmp_path / "alone-a.csv").read_bytes(),
        (tmp_path / "alone-b.csv").read_bytes(),
    )


def test_a_killed_run_leaves_nothing_that_looks_complete(world, tmp_path):
    argv = [
        sys.executable,
        "-m",
        "dpo_titles.cli",
        *("train", "--model", str(world / "base"), "--dataset", str(world / "ds")),
        *("--recipe", "local", "--out", str(tmp_path / "tuned")),
    ]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, stderr=subprocess.PIPE, text=True, env={**os.environ, **QUIET_ENV}
    )
    for line in proc.stderr:
        if "training:" in line:  # the trainer has started its steps
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


# --------------------------------------------------------------------------------------------
# Remote names that would leave their folder
# --------------------------------------------------------------------------------------------


def test_a_gs_uri_that_climbs_out_is_refused_and_nothing_is_downloaded(untouched):
    objects = {"../../notes.txt": b"idea\nx\n", "../mine/": b"", "../mine/thesis.txt": b"gone"}
    with AnyNameGcs("data", objects) as fake:
        for uri in ("gs://data/../../notes.txt", "gs://data/../mine/"):
            argv = argv_for("generate", "c.csv")
            argv[argv.index("./ideas.csv")] = uri
            result = cli(*argv, cwd=untouched, env=fake.env)
            assert result.returncode == 2
            line = one_error_line(result.stderr, "generate")
            assert uri.removeprefix("gs://") in line and "would not stay inside" in line
        assert fake.requests == []


def test_a_listed_object_that_climbs_out_is_refused_before_a_byte_is_written(untouched):
    objects = {
        "models/tiny/config.json": b"{}",
        "models/tiny/../../../../notes.txt": b"overwritten",
    }
    with AnyNameGcs("data", objects) as fake:
        argv = argv_for("generate", "c.csv")
        argv[argv.index("./base")] = "gs://data/models/tiny/"
        result = cli(*argv, cwd=untouched, env=fake.env)
        assert fake.downloads == []
    assert result.returncode == 2
    assert "models/tiny/../../../../notes.txt" in one_error_line(result.stderr, "generate")


def test_a_tuned_model_in_a_bucket_works_in_evaluate_and_report(world, tmp_path, monkeypatch):
    from dpo_titles.storage import upload

    with GcsEmulator(buckets=["models"]) as gcs:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.host)
        upload(world / "tuned", "gs://models/tuned")
        argv = [
            *("evaluate", "--base-model", str(world / "base")),
            *("--tuned-model", "gs://models/tuned", "--dataset", str(world / "ds")),
            *("--k", "1", "--reward-pairs", "4", "--out", str(tmp_path / "eval")),
        ]
        assert main(["-q", *argv]) == 0
        metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
        local = json.loads((world / "eval" / "metrics.json").read_text())
        # The tuned model's own training figures came with it from the bucket.
        assert metrics["train_loss"] == local["train_loss"]
        assert metrics["n_comparisons"] == local["n_comparisons"]
        report = tmp_path / "report.html"
        argv = ["report", "--eval", str(tmp_path / "eval"), "--model", "gs://models/tuned"]
        assert main(["-q", *argv, "--out", str(report)]) == 0
    html = report.read_text(encoding="utf-8")
    assert 'data-series="train loss"' in html and "training curves are left out" not in html


def test_a_report_without_training_history_says_so(world, tmp_path):
    shutil.copytree(world / "tuned", tmp_path / "tuned")
    (tmp_path / "tuned" / "log_history.json").unlink()
    argv = ["report", "--eval", str(world / "eval"), "--model", str(tmp_path / "tuned")]
    assert main(["-q", *argv, "--out", str(tmp_path / "r.html")]) == 0
    assert "the training curves are left out" in (tmp_path / "r.html").read_text()


# --------------------------------------------------------------------------------------------
# Model folders that name custom code
# --------------------------------------------------------------------------------------------


def _evil_model(world: Path, where: Path, which: str) -> Path:
    folder = where / f"evil-{which}"
    shutil.copytree(world / "base", folder)
    sentinel = where / "custom-code-ran"
    code = f"open({str(sentinel)!r}, 'w').write('ran')\n"
    (folder / "configuration_evil.py").write_text(
        code + "from transformers import Qwen2Config\nclass EvilConfig(Qwen2Config):\n    pass\n"
    )
    (folder / "tokenization_evil.py").write_text(
        code + "from transformers import PreTrainedTokenizerFast as EvilTokenizer\n"
    )
    name = "config.json" if which == "config" else "tokenizer_config.json"
    data = json.loads((folder / name).read_text())
    data["auto_map"] = (
        {"AutoConfig": "configuration_evil.EvilConfig"}
        if which == "config"
        else {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    )
    (folder / name).write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("which", ["config", "tokenizer"])
def test_a_model_folder_naming_custom_code_is_refused_even_with_yes_on_stdin(
    world, tmp_path, which
):
    evil = _evil_model(world, tmp_path, which)
    sentinel = tmp_path / "custom-code-ran"
    commands = [
        ["generate", "--ideas", str(world / "ideas.csv"), "--model", str(evil)],
        ["train", "--model", str(evil), "--dataset", str(world / "ds"), "--recipe", "local"],
        [
            *("evaluate", "--base-model", str(world / "base"), "--tuned-model", str(evil)),
            *("--dataset", str(world / "ds"), "--k", "1"),
        ],
    ]
    for argv in commands:
        result = cli(*argv, "--out", str(tmp_path / "out"), cwd=tmp_path, stdin="y\ny\ny\n")
        assert result.returncode == 2, result.stderr
        assert "needs custom code" in one_error_line(result.stderr, argv[0])
        assert not sentinel.exists()
        assert not (tmp_path / "out").exists()
    # The folder really is hostile: transformers runs its code when told to trust it (in a
    # process of its own: the code it runs changes transformers' registries for good).
    loader = "AutoConfig" if which == "config" else "AutoTokenizer"
    trusting = f"import transformers; transformers.{loader}.from_pretrained({str(evil)!r}, "
    subprocess.run([sys.executable, "-c", trusting + "trust_remote_code=True)"], check=True)
    assert sentinel.read_text() == "ran"


# --------------------------------------------------------------------------------------------
# Parameters out of range: one line that names the flag, status 2, nothing written
# --------------------------------------------------------------------------------------------

BAD_PARAMETERS = [
    ("generate", ["--n", "1"], "--n must be a whole number at least 2 and at most 100, got 1"),
    ("generate", ["--temperature", "-1"], "--temperature must be a number at least 0"),
    ("generate", ["--temperature", "nan"], "--temperature must be a number at least 0"),
    ("generate", ["--top-p", "0"], "--top-p must be a number more than 0 and at most 1"),
    ("generate", ["--top-p", "1.5"], "--top-p must be a number more than 0 and at most 1"),
    ("generate", ["--max-new-tokens", "0"], "--max-new-tokens must be a whole number at least 1"),
    ("generate", ["--seed", "-1"], "--seed must be a whole number at least 0 and at most"),
    ("generate", ["--seed", str(2**31)], "--seed must be a whole number at least 0 and at most"),
    ("generate", ["--n", "101"], "--n must be a whole number at least 2 and at most 100"),
    ("generate", ["--batch-size", "0"], "--batch-size must be a whole number at least 1"),
    ("generate", ["--max-in-flight", "0"], "--max-in-flight must be a whole number at least 1"),
    ("generate", ["--rpm", "-5"], "--rpm must be a number at least 0"),
    ("generate", ["--timeout", "0"], "--timeout must be a number more than 0"),
    ("generate", ["--max-retries", "-1"], "--max-retries must be a whole number at least 0"),
    ("generate", ["--max-input-mb", "0"], "--max-input-mb must be a number more than 0"),
    ("generate", ["--n", "many"], "argument --n/--titles-per-idea: invalid int value: 'many'"),
    ("label", ["--max-in-flight", "-2"], "--max-in-flight must be a whole number at least 1"),
    ("label", ["--mode", "round-robin"], "argument --mode: invalid choice"),
    ("prepare", ["--val-fraction", "0"], "--val-fraction must be a number more than 0 and less"),
    ("prepare", ["--val-fraction", "1"], "--val-fraction must be a number more than 0 and less"),
    ("prepare", ["--seed", "-3"], "--seed must be a whole number at least 0 and at most"),
    ("train", ["--set", "num_train_epochs=-1"], "--set num_train_epochs must be a number more"),
    ("train", ["--set", "num_train_epochs=0"], "--set num_train_epochs must be a number more than"),
    ("train", ["--set", "num_train_epochs=many"], "invalid float value: 'many'"),
    ("train", ["--set", "per_device_train_batch_size=0"], "--set per_device_train_batch_size"),
    ("train", ["--set", "per_device_train_batch_size=1.5"], "invalid int value: '1.5'"),
    ("train", ["--set", "learning_rate=-1e-5"], "--set learning_rate must be a number more than 0"),
    ("train", ["--set", "beta=0"], "--set beta must be a number more than 0"),
    ("train", ["--set", "max_length=0"], "--set max_length must be a whole number at least 1"),
    ("train", ["--set", "warmup_steps=-1"], "--set warmup_steps must be a number at least 0"),
    ("train", ["--set", "lora.dropout=1"], "--set lora.dropout must be a number at least 0 and"),
    ("train", ["--set", "save_steps=0"], "--set save_steps must be a number more than 0"),
    ("train", ["--set", "loss_type= , "], "--loss_type/--loss-type: expected at least one"),
    ("train", ["--set", "colour=blue"], "unknown field(s) colour"),
    ("train", ["--num-processes", "0"], "--num-processes must be a whole number at least 1"),
    ("evaluate", ["--k", "0"], "--k must be a whole number at least 1, got 0"),
    ("evaluate", ["--reward-pairs", "-1"], "--reward-pairs must be a whole number at least 0"),
    ("evaluate", ["--temperature", "-0.1"], "--temperature must be a number at least 0"),
    ("evaluate", ["--max-new-tokens", "0"], "--max-new-tokens must be a whole number at least"),
    ("tiny-model", ["--epochs", "0"], "--epochs must be a whole number at least 1 and at most"),
    ("tiny-model", ["--seed", "-1"], "--seed must be a whole number at least 0 and at most"),
    ("tiny-model", ["--epochs", "10000"], "--epochs must be a whole number at least 1 and at"),
    ("generate", ["--temperature", "5e-324"], "--temperature must be 0 (greedy) or at least 0.01"),
    ("generate", ["--max-new-tokens", "1e6"], "argument --max-new-tokens: invalid int value"),
    ("generate", ["--max-new-tokens", "5000"], "--max-new-tokens must be a whole number at"),
    ("generate", ["--max-input-mb", "1e308"], "--max-input-mb must be a number more than 0 and"),
    ("generate", ["--model", "tinyx"], "model 'tinyx' is not a folder here, and a hub model is"),
    ("train", ["--set", "lr_scheduler_type=bogus"], "--lr_scheduler_type/--lr-scheduler-type: inv"),
    ("train", ["--set", "loss_type=sigmoid,bogus"], "--set loss_type takes one or more of sigmoid"),
    ("train", ["--set", "num_train_epochs=true"], "invalid float value: 'true'"),
    ("train", ["--base-name", "org/x\nlicense: evil"], "--base-name must be one line"),
]


@pytest.mark.parametrize(
    ("command", "bad", "message"), BAD_PARAMETERS, ids=[" ".join(b) for _, b, _ in BAD_PARAMETERS]
)
def test_each_bad_parameter_gets_one_line_that_names_it(
    command, bad, message, untouched, capfd, monkeypatch
):
    monkeypatch.chdir(untouched)
    code = main(["-q", *argv_for(command, "fresh-output"), *bad])
    err = capfd.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]


def _recipe(tmp_path, text: str) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1: 2\n", "field names are words, not 1"),
        ("null: 2\n", "field names are words, not None"),
        ("num_train_epochs: .inf\n", "recipe field num_train_epochs must be a number more than"),
        ("per_device_train_batch_size: true\n", "invalid int value: 'true'"),
        ("description: [1, 2]\n", "name and description are text"),
        ('a: &a ["x", "x"]\nb: &b [*a, *a]\ndescription: [*b, *b]\n', "may not use aliases"),
        ("- epochs\n", "must be a mapping of field: value"),
    ],
)
def test_a_bad_recipe_file_gets_one_line(world, tmp_path, capfd, text, message):
    argv = argv_for("train", str(tmp_path / "t"), w=world)
    argv[argv.index("local")] = _recipe(tmp_path, text)
    refused(capfd, argv, message)


def test_damaged_or_hand_edited_artifacts_give_one_line(world, tmp_path, capfd):
    for name, content, message in [
        ("eval/metrics.json", "[1]", "metrics.json must hold an object at the top level"),
        (
            "eval/comparisons.csv",
            "idea,sample,base_title,tuned_title\nx,abc,a,b\n",
            "row 2: sample is not a number",
        ),
        ("tuned/recipe.json", "[1]", "recipe.json must hold an object at the top level"),
    ]:
        copy = tmp_path / name.split("/")[0]
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(world / name.split("/")[0], copy)
        (tmp_path / name).write_text(content)
        folder = name.split("/")[0]
        argv = argv_for("report", str(tmp_path / "r.html"), w=world)
        argv[argv.index(f"{world}/{folder}")] = str(copy)
        refused(capfd, argv, message)
    (tmp_path / "config.json").write_text("[1, 2]")
    argv = argv_for("report", str(tmp_path / "r.html"), "--config", str(tmp_path / "config.json"))
    refused(capfd, [a.replace("./", f"{world}/") for a in argv], "must hold an object")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    argv = argv_for("report", str(tmp_path / "r.html"), "--config", str(tmp_path / "deep.json"))
    refused(capfd, [a.replace("./", f"{world}/") for a in argv], "nested too deeply")
    for split in ("[1]", '{"validation_ideas": 5}', '{"validation_ideas": [1, 2]}'):
        ds = tmp_path / "ds"
        shutil.rmtree(ds, ignore_errors=True)
        shutil.copytree(world / "ds", ds)
        (ds / "split.json").write_text(split)
        argv = argv_for("evaluate", str(tmp_path / "e"), w=world)
        argv[argv.index(f"{world}/ds")] = str(ds)
        refused(capfd, argv, "split")


def test_empty_titles_in_a_preferences_file_are_refused_with_their_row(tmp_path, capfd):
    (tmp_path / "p.csv").write_text("idea,chosen,rejected\nx,A Title,Other\ny,,Other\n")
    argv = ["prepare", "--preferences", str(tmp_path / "p.csv"), "--out", str(tmp_path / "ds")]
    refused(capfd, argv, "row 3: needs an idea and two different titles")


def test_odd_paths_for_an_output_are_refused(untouched, capfd, monkeypatch):
    monkeypatch.chdir(untouched)
    refused(capfd, argv_for("validate", "v\udcff.csv"), "is not valid UTF-8")
    deep = "/".join(["d" * 190] * 21) + "/v.csv"
    refused(capfd, argv_for("validate", deep), "bytes: shorten it")


def test_ideas_of_blank_letters_are_refused(tmp_path, capfd):
    ideas = tmp_path / "ideas.csv"
    ideas.write_text("idea\nBake bread at home\n\u3164\u115f\u2800\n", encoding="utf-8")
    refused(capfd, ["validate", "--ideas", str(ideas)], "row 3 has a blank idea")


def test_formula_like_column_names_are_neutralised_too(tmp_path):
    (tmp_path / "ideas.csv").write_text('idea,"=HYPERLINK(""x"")",@cmd\nBake bread,a,b\n')
    result = cli("validate", "--ideas", "ideas.csv", "--out", "v.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header = next(csv.reader(open(tmp_path / "v.csv", encoding="utf-8")))
    assert header == ["idea", '\'=HYPERLINK("x")', "'@cmd"]
    from dpo_titles.ideas import load_ideas

    assert list(load_ideas(tmp_path / "v.csv")[0].extra) == ['=HYPERLINK("x")', "@cmd"]


def test_a_lora_adapter_whose_base_names_custom_code_is_refused(world, tmp_path):
    evil = _evil_model(world, tmp_path, "config")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(evil), "peft_type": "LORA"})
    )
    argv = argv_for("generate", str(tmp_path / "c.csv"), w=world)
    argv[argv.index(f"{world}/base")] = str(adapter)
    result = cli(*argv, cwd=tmp_path)
    assert result.returncode == 2
    assert "needs custom code" in one_error_line(result.stderr, "generate")


def test_temperature_zero_is_deterministic_decoding_for_generate_and_evaluate(world, tmp_path):
    out = tmp_path / "greedy.csv"
    argv = argv_for("generate", str(out), "--temperature", "0", "--n", "3", w=world)
    assert main(["-q", *argv]) == 0

    def titles() -> list[tuple[str, str]]:
        return [(r["idea"], r["title"]) for r in csv.DictReader(open(out, encoding="utf-8"))]

    first = titles()
    assert main(["-q", *argv, "--force"]) == 0
    assert titles() == first  # the same titles every time
    per_idea: dict[str, set] = {}
    for idea, title in first:
        per_idea.setdefault(idea, set()).add(title)
    # A beam search gives several different titles per idea, so there are pairs to label.
    assert max(len(titles) for titles in per_idea.values()) >= 2
    argv = argv_for("evaluate", str(tmp_path / "eval"), "--temperature", "0", w=world)
    assert main(["-q", *argv, "--k", "2", "--reward-pairs", "0"]) == 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["n_comparisons"] > 0


# --------------------------------------------------------------------------------------------
# Inputs: size, invisible ideas, formulas, damaged dataset files
# --------------------------------------------------------------------------------------------


PEAK_RSS = (
    "import os, resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(os.environ['RSS_FILE'], 'w').write(str(peak))\n"
    "sys.exit(code)\n"
)


def test_a_huge_input_is_refused_before_it_is_read(world, tmp_path):
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as fh:
        fh.write(b"idea,chosen,rejected,title\n")
        fh.truncate(2 * 1024**3)  # 2 GiB, sparse: costs no disk
    commands = [
        ["validate", "--ideas", str(huge)],
        ["generate", "--ideas", str(huge), "--model", str(world / "base"), "--out", "c.csv"],
        ["label", "--candidates", str(huge), "--out", "p.csv"],
        [
            *("prepare", "--preferences", str(world / "prefs.csv")),
            *("--human-preferences", str(huge), "--out", "ds"),
        ],
    ]
    for argv in commands:
        # A small process starts the command and reads its peak memory: the command's own
        # figure would include the memory of this test process it was forked from.
        rss_file = tmp_path.parent / f"{tmp_path.name}-rss"
        result = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "dpo_titles.cli", "-q", *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, **QUIET_ENV, "RSS_FILE": str(rss_file)},
        )
        assert result.returncode == 2, result.stderr
        line = one_error_line(result.stderr, argv[0])
        assert "is 2,048.0 MiB, over the 64 MiB limit" in line and "--max-input-mb" in line
        peak_kib = int(rss_file.read_text())
        assert peak_kib < 300 * 1024, peak_kib  # the file was never read
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.csv"]


def test_ideas_of_invisible_characters_are_refused(tmp_path, capfd):
    ideas = tmp_path / "ideas.csv"
    ideas.write_text("idea\nBake bread at home\n\u200b\u200d\u2060\n", encoding="utf-8")
    refused(capfd, ["validate", "--ideas", str(ideas)], "row 3 has a blank idea")


def _formula_like(cell: str) -> bool:
    number = cell.lstrip("+-").replace(".", "", 1)
    return cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not number.isdigit()


def test_formula_cells_are_neutralised_in_csvs_and_exact_in_jsonl(world, tmp_path):
    idea = '=HYPERLINK("http://attacker.example","Click") cooking tips for beginners'
    others = (world / "ideas.csv").read_text(encoding="utf-8").splitlines()[1:]
    (tmp_path / "ideas.csv").write_text(
        "idea\n" + '"' + idea.replace('"', '""') + '"\n' + "\n".join(others) + "\n"
    )
    steps = [
        ["validate", "--ideas", "ideas.csv", "--out", "valid.csv"],
        [
            *("generate", "--ideas", "valid.csv", "--model", str(world / "base")),
            *("--n", "4", "--temperature", "1.3", "--out", "cand.csv"),
        ],
        ["label", "--candidates", "cand.csv", "--out", "prefs.csv"],
        ["prepare", "--preferences", "prefs.csv", "--val-fraction", "0.5", "--out", "ds"],
    ]
    for argv in steps:
        result = cli(*argv, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    for name in ("valid.csv", "cand.csv", "prefs.csv"):
        cells = [c for row in csv.reader(open(tmp_path / name, encoding="utf-8")) for c in row]
        assert "'" + idea in cells, name  # shown as text by a spreadsheet
        assert not [c for c in cells if _formula_like(c)], name
    lines = []
    for split in ("train", "validation"):
        lines += (tmp_path / "ds" / f"{split}.jsonl").read_text().splitlines()
    assert idea in {json.loads(line)["idea"] for line in lines}  # exact in JSONL


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("hf/train/data-00000-of-00001.arrow", "cannot be read"),
        ("hf/dataset_dict.json", "cannot be read"),
        ("split.json", "split.json is not valid JSON"),
    ],
)
def test_damaged_dataset_files_give_one_line_that_names_them(world, tmp_path, capfd, damage, named):
    ds = tmp_path / "ds"
    shutil.copytree(world / "ds", ds)
    (ds / damage).write_bytes(b"\x00 not what it was \xff")
    for command in ("evaluate", "train"):
        if command == "train" and damage == "split.json":
            continue  # training does not read the split file
        argv = argv_for(command, str(tmp_path / "out"), w=world)
        argv[argv.index(f"{world}/ds")] = str(ds)
        refused(capfd, argv, named, str(ds))
    assert not (tmp_path / "out").exists()


def test_every_output_file_has_the_usual_mode(world, tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    out = tmp_path / "v.csv"
    assert main(["-q", "validate", "--ideas", str(world / "ideas.csv"), "--out", str(out)]) == 0
    files = [out, world / "cand.csv", world / "prefs.csv"]
    for folder in ("ds", "tuned", "eval"):
        files += [p for p in (world / folder).rglob("*") if p.is_file()]
    assert world / "tuned" / "model.safetensors" in files
    modes = {str(p): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert {k: oct(v) for k, v in modes.items() if v != 0o666 & ~mask} == {}


# Outcomes: nothing usable is a failure that says why
# --------------------------------------------------------------------------------------------


def serving(server) -> dict:
    """The environment that points a command at `server` (started), with no other key."""
    server.start()
    env = {k: "" for k in ("TOGETHER_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")}
    return {**env, **server.env}


def test_an_api_answering_html_fails_generate_and_says_why(world, tmp_path):
    with TogetherServer(faults=FaultPlan(rate=1.0, kinds=("html",))) as server:
        argv = ["generate", "--ideas", str(world / "ideas.csv"), "--provider", "together"]
        argv += ["--out", "c.csv", "--max-retries", "0"]
        result = cli(*argv, cwd=tmp_path, env=serving(server))
    assert result.returncode == 1
    line = one_error_line(result.stderr, "generate", "failed")
    assert "no candidate titles for 12 ideas: unreadable answer x12" in line
    assert not (tmp_path / "c.csv").exists()
    failures = [json.loads(x) for x in open(tmp_path / "c.csv.failures.jsonl", encoding="utf-8")]
    assert len(failures) == 12 and {f["cause"] for f in failures} == {"unreadable answer"}
    assert all("gave up after 1 attempt (last: unreadable answer" in f["reason"] for f in failures)


@pytest.mark.parametrize("mode", ["pairwise", "listwise"])
def test_a_judge_that_always_says_a_fails_label_and_says_why(world, tmp_path, mode):
    with TogetherServer(brain=Brain(position_bias=1.0)) as server:
        argv = ["label", "--candidates", str(world / "cand.csv"), "--judge", "together"]
        argv += ["--mode", mode, "--out", "p.csv"]
        result = cli(*argv, cwd=tmp_path, env=serving(server))
    assert result.returncode == 1
    line = one_error_line(result.stderr, "label", "failed")
    assert "no preference pairs: of" in line and "position flips" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("style", ["zero", "titles"])
def test_rankings_in_another_convention_are_read(world, tmp_path, style):
    with GeminiServer(brain=Brain(ranking_style=style)) as server:
        argv = ["label", "--candidates", str(world / "cand.csv"), "--judge", "gemini"]
        result = cli(*argv, "--out", "p.csv", cwd=tmp_path, env=serving(server), quiet=False)
        calls = server.calls
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["preferences"] > 0 and summary["failures"] == 0
    assert calls == summary["judge_calls"]  # read the first time, never asked again
