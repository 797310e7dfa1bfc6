import csv

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
    pretrain_epochs=1,
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


def test_build_is_deterministic_given_its_seed(tmp_path):
    from transformers import AutoModelForCausalLM

    corpus = small_corpus(tmp_path)
    a = build_tiny_model(corpus, tmp_path / "a", SMALL)
    b = build_tiny_model(corpus, tmp_path / "b", SMALL)
    wa = AutoModelForCausalLM.from_pretrained(a).state_dict()
    wb = AutoModelForCausalLM.from_pretrained(b).state_dict()
    assert wa.keys() == wb.keys()
    assert all((wa[k] == wb[k]).all() for k in wa)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()


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
