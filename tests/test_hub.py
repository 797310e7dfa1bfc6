"""dpo_titles.hub against a loopback fake of the Hugging Face Hub (tests/fakes/hub_server.py).

The clients are the real huggingface_hub and datasets; only HF_ENDPOINT points at the fake, which
keeps the committed files so the tests compare bytes. Files the Hub stores in LFS (Parquet shards,
safetensors, binaries) go through Xet when hf_xet is installed, a protocol the fake does not
speak: the tests that commit such files turn Xet off, so the client uses the LFS batch API that
the fake serves. Text-only model folders go through the default (Xet-enabled) upload pipeline.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest

from dpo_titles import hub
from dpo_titles.errors import UserError
from tests.fakes.hub_server import FakeHub


@pytest.fixture()
def no_network_registry(monkeypatch):
    # huggingface_hub fetches an "agent harness" registry once per process for its User-Agent,
    # from the endpoint it read at import (huggingface.co). Give it an empty one so every
    # request of these tests stays on loopback.
    from huggingface_hub.utils import _detect_agent

    monkeypatch.setattr(_detect_agent, "_registry", {"standardEnvVars": [], "harnesses": {}})


@pytest.fixture()
def fake_hub(monkeypatch, no_network_registry):
    with FakeHub() as server:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


@pytest.fixture()
def no_xet(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


@pytest.fixture()
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def _assert_token_private(server: FakeHub, logs, capfd, *texts: str) -> None:
    """The token went only in Authorization headers: not in logs, output or error texts."""
    token = server.token
    api_requests = [r for r in server.requests if not r["path"].startswith("/__lfs/")]
    api_requests = [r for r in api_requests if r["path"] != "/api/agent-harnesses"]
    assert api_requests
    for request in api_requests:
        assert request["headers"]["authorization"] == f"Bearer {token}"
        assert token not in request["path"] and token.encode() not in request["body"]
    for request in server.requests:
        if request["path"].startswith("/__lfs/"):
            assert "authorization" not in request["headers"]
    out, err = capfd.readouterr()
    assert token not in out and token not in err
    assert token not in logs.text
    for text in texts:
        assert token not in text


def _model_folder(root: Path, *, weights: bool) -> Path:
    folder = root / "model"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama", "hidden_size": 64}\n')
    (folder / "generation_config.json").write_text('{"max_new_tokens": 32}\n')
    (folder / "tokenizer" / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}\n')
    (folder / "README.md").write_text("# tiny title model\n")
    if weights:
        (folder / "model.safetensors").write_bytes(b"\x00" + os.urandom(50_000))
    (folder / ".model.safetensors.4242-0123abcd.partial").write_bytes(b"half-written")
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".partial")
    }


def _create_payloads(server: FakeHub) -> list[dict]:
    return [json.loads(r["body"]) for r in server.requests if r["path"] == "/api/repos/create"]


# -- model ---------------------------------------------------------------------------------


def test_push_model_creates_a_private_repo_and_commits_the_folder(fake_hub, tmp_path, logs, capfd):
    folder = _model_folder(tmp_path, weights=False)

    url = hub.push_model(folder, "dpo-org/title-model")

    assert url == f"{fake_hub.base_url}/dpo-org/title-model"
    assert _create_payloads(fake_hub) == [
        {"name": "title-model", "organization": "dpo-org", "visibility": "private", "type": "model"}
    ]
    repo = fake_hub.repo("dpo-org/title-model")
    assert repo.private is True
    assert repo.files == _files(folder)  # byte for byte, the .partial leftover left out
    assert [c["summary"] for c in repo.commits] == ["Upload model from dpo-titles"]
    assert fake_hub.unhandled == []
    _assert_token_private(fake_hub, logs, capfd)


def test_push_model_with_weights_goes_through_lfs(fake_hub, no_xet, tmp_path, logs, capfd):
    folder = _model_folder(tmp_path, weights=True)

    hub.push_model(folder, "dpo-org/title-model")

    repo = fake_hub.repo("dpo-org/title-model")
    assert repo.files == _files(folder)
    assert repo.lfs_paths == {"model.safetensors"}
    assert any(r["path"].endswith(".git/info/lfs/objects/batch") for r in fake_hub.requests)
    assert fake_hub.unhandled == []
    _assert_token_private(fake_hub, logs, capfd)


def test_push_model_again_keeps_the_repo_and_adds_a_commit(fake_hub, tmp_path):
    folder = _model_folder(tmp_path, weights=False)
    hub.push_model(folder, "dpo-org/title-model")
    (folder / "config.json").write_text('{"model_type": "llama", "hidden_size": 128}\n')

    hub.push_model(folder, "dpo-org/title-model", commit_message="second run")

    repo = fake_hub.repo("dpo-org/title-model")
    assert repo.files["config.json"] == (folder / "config.json").read_bytes()
    assert repo.commits[-1]["summary"] == "second run"
    assert repo.private is True


def test_push_model_public_when_asked(fake_hub, tmp_path):
    hub.push_model(_model_folder(tmp_path, weights=False), "fake-user/open-model", private=False)

    assert _create_payloads(fake_hub)[0]["visibility"] == "public"
    assert fake_hub.repo("fake-user/open-model").private is False


# -- dataset -------------------------------------------------------------------------------


def _saved_pairs(root: Path) -> Path:
    from datasets import Dataset, DatasetDict

    rows = {
        "train": {
            "prompt": ["Idea: bread at home", "Idea: fix a bike"],
            "chosen": ["I Baked Bread For 30 Days", "Fix Any Bike In 10 Minutes"],
            "rejected": ["bread video", "bike repair"],
        },
        "test": {
            "prompt": ["Idea: learn chess"],
            "chosen": ["Chess Openings That Win Fast"],
            "rejected": ["chess"],
        },
    }
    folder = root / "pairs"
    DatasetDict({split: Dataset.from_dict(cols) for split, cols in rows.items()}).save_to_disk(
        str(folder)
    )
    return folder


def test_push_dataset_sends_parquet_splits_and_a_card(fake_hub, no_xet, tmp_path, logs, capfd):
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    folder = _saved_pairs(tmp_path)

    url = hub.push_dataset(folder, "dpo-org/title-pairs", description="Pairs for the test run.")

    assert url == f"{fake_hub.base_url}/datasets/dpo-org/title-pairs"
    assert _create_payloads(fake_hub)[0] == {
        "name": "title-pairs",
        "organization": "dpo-org",
        "visibility": "private",
        "type": "dataset",
    }
    repo = fake_hub.repo("dpo-org/title-pairs", "dataset")
    assert repo.private is True
    saved = load_from_disk(str(folder))
    shards = sorted(p for p in repo.files if p.endswith(".parquet"))
    assert shards == ["data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]
    for split in ("train", "test"):
        table = pq.read_table(io.BytesIO(repo.files[f"data/{split}-00000-of-00001.parquet"]))
        assert table.to_pylist() == saved[split].to_list()
    assert repo.lfs_paths == set(shards)

    card = repo.files["README.md"].decode()
    assert card.startswith("---\n")
    assert "Pairs for the test run." in card  # our text survived datasets' metadata update
    assert "pretty_name: title-pairs" in card
    assert "num_examples: 2" in card and "num_examples: 1" in card  # datasets' split info
    assert "path: data/train-*" in card
    assert "| train | 2 | prompt, chosen, rejected |" in card
    assert fake_hub.unhandled == []
    _assert_token_private(fake_hub, logs, capfd)


def test_push_dataset_rejects_a_folder_that_is_not_a_saved_dataset(fake_hub, tmp_path):
    (tmp_path / "csvs").mkdir()
    (tmp_path / "csvs" / "pairs.csv").write_text("prompt,chosen,rejected\n")

    with pytest.raises(UserError, match="not a saved dataset"):
        hub.push_dataset(tmp_path / "csvs", "dpo-org/title-pairs")
    with pytest.raises(UserError, match="does not exist"):
        hub.push_dataset(tmp_path / "nope", "dpo-org/title-pairs")
    assert fake_hub.requests == []


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "repo_id",
    [
        "title-model",
        "a/b/c",
        "dpo-org/title--model",
        "dpo-org/title..model",
        "dpo-org/",
        "/x",
        "dpo org/model",
        "dpo-org/" + "m" * 100,
        "",
    ],
)
def test_invalid_repo_id_is_refused_before_any_request(fake_hub, tmp_path, repo_id):
    folder = _model_folder(tmp_path, weights=False)

    with pytest.raises(UserError) as excinfo:
        hub.push_model(folder, repo_id)

    message = str(excinfo.value)
    assert message.startswith(f"hub repo {repo_id!r} is not valid")
    assert "use owner/name" in message and "\n" not in message
    assert fake_hub.requests == []


def test_missing_token_says_to_put_it_in_the_secret(fake_hub, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    folder = _model_folder(tmp_path, weights=False)

    for push in (hub.push_model, hub.push_dataset):
        with pytest.raises(UserError) as excinfo:
            push(folder, "dpo-org/title-model")
        assert str(excinfo.value).startswith("HF_TOKEN is not set: put a Hugging Face token")
        assert "Secret" in str(excinfo.value)
    assert fake_hub.requests == []


def test_a_rejected_token_is_a_401_user_error_without_the_token(
    fake_hub, tmp_path, monkeypatch, logs, capfd
):
    wrong = "hf_wrong_token_value_987654321"
    monkeypatch.setenv("HF_TOKEN", wrong)

    with pytest.raises(UserError) as excinfo:
        hub.push_model(_model_folder(tmp_path, weights=False), "dpo-org/title-model")

    message = str(excinfo.value)
    assert "rejected HF_TOKEN (401 Unauthorized)" in message
    assert "put a valid token with write access in the Secret" in message
    assert "\n" not in message
    assert fake_hub.requests[0]["headers"]["authorization"] == f"Bearer {wrong}"
    assert wrong not in message and excinfo.value.__cause__ is None
    out, err = capfd.readouterr()
    assert wrong not in out + err + logs.text
    assert fake_hub.repos == {}


def test_no_write_access_is_a_403_user_error(monkeypatch, no_network_registry, tmp_path):
    with FakeHub(forbidden_namespaces=("someone-else",)) as server:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        folder = _model_folder(tmp_path, weights=False)

        with pytest.raises(UserError) as excinfo:
            hub.push_model(folder, "someone-else/title-model")

    message = str(excinfo.value)
    assert message.startswith("HF_TOKEN may not write to model repo someone-else/title-model (403")
    assert "write access to 'someone-else'" in message
    assert server.token not in message


def test_server_text_that_echoes_the_token_is_redacted(fake_hub, tmp_path, monkeypatch):
    from tests.fakes import hub_server

    def echo(self, payload):  # a misbehaving proxy that quotes the request's credentials
        return hub_server._error(400, f"bad request from Bearer {self.token}")

    monkeypatch.setattr(hub_server.FakeHub, "_create", echo)

    with pytest.raises(UserError) as excinfo:
        hub.push_model(_model_folder(tmp_path, weights=False), "dpo-org/title-model")

    message = str(excinfo.value)
    assert "(HTTP 400)" in message and "Bearer [HF_TOKEN]" in message
    assert fake_hub.token not in message


def test_hf_endpoint_is_read_at_call_time(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert hub.hub_endpoint() == "https://huggingface.co"
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert hub.hub_endpoint() == "http://127.0.0.1:9"
