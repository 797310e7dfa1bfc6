import csv
import importlib.util
import json

import pytest

from dpo_titles.errors import UserError
from dpo_titles.tiny_model import TinyModelConfig, build_tiny_model, read_corpus

SMALL = TinyModelConfig(
    vocab_size=600,
    hidden_size=32,
    intermediate_size=64,
    num_layers=1,
    num_heads=2,
    num_kv_heads=1,
    copy_steps=4,
    copy_batch_size=4,
    epochs=1,
    batch_size=16,
    seed=5,
)


def small_corpus(tmp_path, rows=80):
    from tests.conftest import CORPUS

    with open(CORPUS, newline="", encoding="utf-8") as fh:
        data = list(csv.DictReader(fh))[:rows]
    path = tmp_path / "corpus.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["idea", "title"], extrasaction="ignore")
        w.writeheader()
        w.writerows(data)
    return path


def test_build_writes_the_same_bytes_whatever_the_threads(tmp_path):
    import torch

    corpus = small_corpus(tmp_path)
    a = build_tiny_model(corpus, tmp_path / "a", SMALL)
    # Another thread count splits reductions otherwise: the default kernels gave other weights on
    # a busy machine; the build's deterministic ones must not.
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        b = build_tiny_model(corpus, tmp_path / "b", SMALL)
    finally:
        torch.set_num_threads(threads)
    files = sorted(p.name for p in a.iterdir())
    assert "model.safetensors" in files and files == sorted(p.name for p in b.iterdir())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_model_is_up_to_date_only_with_the_inputs_it_was_built_from(tmp_path):
    from dataclasses import replace

    from dpo_titles.tiny_model import is_up_to_date

    corpus = small_corpus(tmp_path)
    out = tmp_path / "m"
    assert not is_up_to_date(out, corpus, SMALL)
    build_tiny_model(corpus, out, SMALL)
    assert is_up_to_date(out, corpus, SMALL)
    assert not is_up_to_date(out, corpus, replace(SMALL, seed=6))
    corpus.write_text(corpus.read_text() + "One more idea here,And one more title\n")
    assert not is_up_to_date(out, corpus, SMALL)


def test_the_committed_tiny_model_is_built_from_the_committed_corpus(tmp_path):
    """models/tiny is committed so that run-local need not build it; it must be what `make
    tiny-model` would build now, or run-local would rebuild it (6 minutes)."""
    import shutil
    import subprocess
    import sys

    from dpo_titles.tiny_model import is_up_to_date
    from tests.conftest import CORPUS, REPO

    committed = REPO / "models" / "tiny"
    assert is_up_to_date(committed, CORPUS), (
        "models/tiny was built from another corpus, builder version or settings: run "
        "`make tiny-model-rebuild` and commit models/tiny"
    )
    copy = tmp_path / "tiny"
    shutil.copytree(committed, copy)
    cmd = [sys.executable, "-m", "dpo_titles.cli", "tiny-model", "--corpus", str(CORPUS)]
    done = subprocess.run(
        cmd + ["--out", str(copy), "--if-changed"], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == {"out": str(copy), "built": False}
    assert "up to date" in done.stderr


def test_model_is_a_qwen2_chat_model(tiny_model):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_model)
    assert config.model_type == "qwen2"
    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert tok.eos_token == "<|im_end|>"
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    # One end-of-turn token per turn: TRL must not find it doubled (huggingface/trl#4481).
    full = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A title"}],
        tokenize=True,
    )
    ids = full["input_ids"] if isinstance(full, dict) or hasattr(full, "keys") else full
    assert ids.count(tok.eos_token_id) == 2


def test_bad_corpus_is_refused(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_corpus(tmp_path / "none.csv")
    (tmp_path / "c.csv").write_text("idea,headline\na,b\n")
    with pytest.raises(UserError, match="lacks column"):
        read_corpus(tmp_path / "c.csv")


def test_tokenizer_is_what_transformers_loads_back(tmp_path):
    from transformers import AutoTokenizer

    from dpo_titles.prompts import render_prompt

    corpus = small_corpus(tmp_path)
    out = build_tiny_model(corpus, tmp_path / "m", SMALL)
    tok = AutoTokenizer.from_pretrained(out)
    built = json.loads((out / "tokenizer.json").read_text())
    with open(corpus, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    # The pieces the model was trained on are those a reloaded tokenizer makes: generation and
    # DPO load the folder through AutoTokenizer, which rebuilds a qwen2 tokenizer its own way.
    vocab = built["model"]["vocab"]
    for row in rows[:20]:
        for text in (render_prompt(row["idea"]), row["title"]):
            pieces = tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
            assert tok.convert_tokens_to_string(pieces) == text
            assert all(p in vocab for p in pieces)
    # A word every prompt has is one piece.
    assert len(tok(" title", add_special_tokens=False)["input_ids"]) == 1


def test_a_word_of_one_idea_stays_in_parts_and_a_word_of_several_is_one_piece(tmp_path):
    """The tokenizer counts a word a title copies with its idea, once: a word of a single idea
    must stay in parts, as a word of an unseen idea is, so that the model learns to copy parts."""
    from transformers import AutoTokenizer

    ideas = [f"Polish a {w} lantern." for w in ("copper", "brass", "steel", "glass")]
    ideas.append("Polish a quizzical lantern.")
    path = tmp_path / "corpus.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["idea", "title"])
        for idea in ideas:
            for frame in ("How to {}", "I tried to {}", "{}: a guide", "The way to {}"):
                w.writerow([idea, frame.format(idea.rstrip(".").lower())])
    out = build_tiny_model(path, tmp_path / "m", SMALL)
    tok = AutoTokenizer.from_pretrained(out)

    def pieces(word):
        return len(tok(" " + word, add_special_tokens=False)["input_ids"])

    assert pieces("lantern") == 1 and pieces("guide") == 1
    # Five times in its idea's titles, but in one idea only.
    assert pieces("quizzical") > 1


def test_copy_batches_run_among_the_chat_ones(tmp_path):
    from dataclasses import replace

    corpus = small_corpus(tmp_path)
    out = build_tiny_model(
        corpus, tmp_path / "m", replace(SMALL, copy_every=2, epochs=2, batch_size=4)
    )
    history = json.loads((out / "tiny_model.json").read_text())["history"]
    kinds = [(h["phase"], h["epoch"], h.get("batches", h["phase"])) for h in history]
    assert kinds == [
        ("copy", 1, "copy"),
        ("chat", 1, "chat"),
        ("chat", 1, "copy"),
        ("chat", 2, "chat"),
        ("chat", 2, "copy"),
    ]
    assert all(h["loss"] > 0 for h in history)


def test_good_titles_copy_their_idea_as_it_stands():
    """A good title holds three or more words of its idea in a row (or all of a shorter
    clause), exactly as the idea writes them, case and all: a word changed on the way is other
    pieces, which the model could not copy from an unseen idea."""
    import re

    from tests.conftest import CORPUS

    with open(CORPUS, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if not r["flaw"]]
    assert len(rows) > 1000

    def runs(text, n=3):
        words = re.findall(r"[\w'$-]+", text)
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    missing = [r for r in rows if not runs(r["title"]) & runs(r["idea"])]
    # The ideas of a verb and a plural ("Avoid tapes.", "I try to slay constitutions."): their
    # titles copy that pair.
    assert len(missing) < len(rows) / 100
    missing = [r for r in missing if not runs(r["title"], 2) & runs(r["idea"], 2)]
    assert not missing, missing[:3]


def test_ideas_are_typed_as_people_type_them():
    """Some ideas are in Title Case, some in lower case, some without a full stop (their good
    titles copy them as typed, which the test above checks, case and all): a model that saw only
    sentences with a full stop ran on past the end of an idea without one and broke the words of
    a Title Case idea."""
    from tests.conftest import CORPUS

    with open(CORPUS, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ideas = list(dict.fromkeys(r["idea"] for r in rows))
    small = make_corpus().SMALL_WORDS

    def is_title_case(idea):
        words = [w for w in idea.split() if w[0].isalpha()]
        return sum(w[0].isupper() for w in words) > 3 and all(
            w[0].isupper() or w in small for w in words
        )

    title_case = [i for i in ideas if is_title_case(i)]
    lower_case = [i for i in ideas if i == i.lower()]
    unpunctuated = [i for i in ideas if i[-1] not in ".?!"]
    for share, found in ((0.05, title_case), (0.05, lower_case), (0.2, unpunctuated)):
        assert share * len(ideas) < len(found) < 0.5 * len(ideas)


def make_corpus():
    """data/make_corpus.py, loaded as a module (it is a script, not part of the package)."""
    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("make_corpus", REPO / "data" / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_is_what_its_script_writes():
    from tests.conftest import CORPUS

    module = make_corpus()
    assert CORPUS.read_text(encoding="utf-8") == module.render(module.corpus_rows())


def test_evaluation_ideas_are_unseen():
    from dpo_titles.ideas import load_ideas
    from tests.conftest import CORPUS, REPO

    def norm(text):
        return " ".join(text.casefold().split())

    with open(CORPUS, newline="", encoding="utf-8") as fh:
        corpus = {norm(row["idea"]) for row in csv.DictReader(fh)}
    for name in ("ideas.csv", "eval_ideas.csv"):
        ideas = [norm(i.text) for i in load_ideas(REPO / "data" / name)]
        assert ideas and not corpus & set(ideas), name
    assert 20 <= len(load_ideas(REPO / "data" / "eval_ideas.csv")) <= 30


def test_real_word_share_and_idea_reuse(tmp_path):
    from dpo_titles.title_quality import (
        load_wordlist,
        non_words,
        real_word_share,
        reuse_share,
        reuses_idea,
    )

    words = tmp_path / "words"
    words.write_text("how\nto\nbake\nbread\nat\nhome\nA\nb\nguide\n")
    known = load_wordlist(words)
    idea = "Bake sourdough bread at home with a Dutch oven."
    # "Sourdough" is the idea's own word; "Bre4d" holds a digit and a letter; "b" is a lone letter.
    pairs = [(idea, "How to bake sourdough bread at home"), (idea, "Ovven b guide: 5K Bre4d")]
    assert non_words(pairs, known) == ["ovven", "b", "bre4d"]
    assert real_word_share(pairs, known) == 9 / 12
    assert reuses_idea("Sourdough at home", idea) and not reuses_idea("A guide", idea)
    assert reuse_share(pairs) == 0.5
    with pytest.raises(UserError, match="apt-get install -y wamerican"):
        load_wordlist(tmp_path / "missing")


def test_title_quality_bench_reads_a_run(tmp_path, capsys):
    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("tq", REPO / "bench" / "title_quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    (tmp_path / "words").write_text("how\nto\nbake\nbread\nmy\n")
    comparisons = tmp_path / "comparisons.csv"
    with open(comparisons, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["idea", "sample", "base_title", "tuned_title", "verdict", "rationale"])
        w.writerow(["Bake bread.", 0, "Brd", "How to bake bread", "tuned", ""])
        w.writerow(["Bake bread.", 1, "My bread", "How to bake bread", "tie", ""])
    argv = ["--comparisons", str(comparisons), "--wordlist", str(tmp_path / "words")]
    assert bench.main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = dict(kv.split("=") for kv in last.split())
    assert figures["all_base_real_words"] == "0.6667"
    assert figures["all_tuned_reuse"] == "1.0000"
    assert figures["all_win_rate"] == "0.7500" and figures["all_ties"] == "1"
    assert bench.main(["--wordlist", str(tmp_path / "none")]) == 2
    assert "apt-get install -y wamerican" in capsys.readouterr().err
