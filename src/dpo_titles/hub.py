"""Push the pipeline's outputs to the Hugging Face Hub: a preference dataset and a model.

The token comes only from the environment variable `HF_TOKEN` (a Kubernetes Secret on the
cluster); it is passed to the client, never logged, and removed from any error text. Repos are
private unless asked otherwise. `HF_ENDPOINT` (read at call time) points the client at another
Hub, e.g. a loopback fake in tests.

`huggingface_hub` and `datasets` are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError
from .outputs import BOOKKEEPING, PARTIAL
from .redaction import redact

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKEN_ENV = "HF_TOKEN"


def hub_token() -> str:
    """The token in `HF_TOKEN`, or a UserError that says where to put it."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UserError(
            f"{TOKEN_ENV} is not set: put a Hugging Face token with write access in the "
            f"Secret's {TOKEN_ENV} key (locally: export {TOKEN_ENV}=hf_...)"
        )
    return token


def hub_endpoint() -> str:
    """`HF_ENDPOINT` if set, else the public Hub."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def check_repo_id(repo_id: str) -> str:
    """Return `repo_id` if it is a valid `owner/name` Hub repo id, else raise a UserError."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    hint = (
        "use owner/name with letters, digits, '-', '_' or '.', at most 96 characters, "
        "no '--' or '..'"
    )
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise UserError(f"hub repo {repo_id!r} is not valid: {hint}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        reason = " ".join(str(exc).split()).rstrip(".")
        raise UserError(f"hub repo {repo_id!r} is not valid ({reason}): {hint}") from None
    owner, name = repo_id.split("/")
    if not owner or not name:
        raise UserError(f"hub repo {repo_id!r} is not valid: {hint}")
    return repo_id


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level errors of the HTTP client huggingface_hub uses (httpx2 in 2.x)."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(importlib.import_module(module).TransportError)
    return tuple(found)


@contextlib.contextmanager
def _hub_errors(repo_id: str, repo_type: str, token: str, endpoint: str) -> Iterator[None]:
    """Turn the Hub's HTTP and connection failures into one-line UserErrors without the token."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    what = f"{repo_type} repo {repo_id}"
    try:
        yield
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        said = redact(" ".join(str(exc.server_message or "").split()))[:200]
        said = f" ({said})" if said else ""
        owner = repo_id.split("/")[0]
        if status == 401:
            message = (
                f"the Hugging Face Hub at {endpoint} rejected {TOKEN_ENV} (401 Unauthorized) "
                f"while pushing to {what}{said}: put a valid token with write access in the "
                f"Secret's {TOKEN_ENV} key"
            )
        elif status == 403:
            message = (
                f"{TOKEN_ENV} may not write to {what} (403 Forbidden){said}: use a token with "
                f"write access to '{owner}' (a fine-grained token needs write permission on "
                "that user or organisation)"
            )
        elif status == 404:
            message = (
                f"the Hugging Face Hub at {endpoint} has no {what} (404){said}: check the repo "
                f"id and that {TOKEN_ENV} can see it"
            )
        else:
            message = (
                f"the Hugging Face Hub at {endpoint} refused the push to {what} "
                f"(HTTP {status}){said}: try again, or check the Hub's status"
            )
        raise UserError(redact(message)) from None
    except OfflineModeIsEnabled:
        raise UserError(
            f"cannot push to {what}: HF_HUB_OFFLINE is set; unset it for the push step"
        ) from None
    except _transport_errors() as exc:
        reason = redact(" ".join(str(exc).split()))[:200]
        raise UserError(
            f"cannot reach the Hugging Face Hub at {endpoint} ({type(exc).__name__}: {reason}): "
            "check the network, or HF_ENDPOINT"
        ) from None


@contextlib.contextmanager
def _datasets_endpoint(endpoint: str) -> Iterator[None]:
    """`datasets` reads HF_ENDPOINT once, at import; follow the value in force now."""
    from datasets import config

    before = config.HF_ENDPOINT
    config.HF_ENDPOINT = endpoint
    try:
        yield
    finally:
        config.HF_ENDPOINT = before


def _api(token: str, endpoint: str):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token, library_name="dpo-titles")


def _folder_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise UserError(
            f"{what} folder {folder} does not exist: pass the output of the earlier stage"
        )
    files = [p for p in folder.rglob("*") if p.is_file()]
    if not files:
        raise UserError(f"{what} folder {folder} is empty: pass the output of the earlier stage")
    return files


def push_model(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = True,
    commit_message: str = "Upload model from dpo-titles",
) -> str:
    """Create the model repo (private by default; kept as it is if it exists) and upload every
    file of `folder` to it in one commit. Returns the repo's URL."""
    folder = Path(folder)
    check_repo_id(repo_id)
    _folder_files(folder, "model")
    token = hub_token()
    endpoint = hub_endpoint()
    log.info("pushing model folder %s to %s/%s (private=%s)", folder, endpoint, repo_id, private)
    with _hub_errors(repo_id, "model", token, endpoint):
        api = _api(token, endpoint)
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="model",
            commit_message=commit_message,
            # The output policy's own files (markers, ledgers, half-written temporaries).
            ignore_patterns=[
                f"{prefix}{name}"
                for prefix in ("", "*/")
                for name in (*BOOKKEEPING, f".*{PARTIAL}")
            ],
        )
    return str(url)


def dataset_card(dataset, repo_id: str, description: str | None = None) -> str:
    """A README for a preference dataset: YAML front matter, then what is in it.

    `datasets` adds its own `dataset_info` and `configs` to the front matter when it pushes the
    data, and keeps the text below it.
    """
    import yaml

    meta = {
        "pretty_name": repo_id.split("/")[-1],
        "tags": ["dpo", "preference", "youtube-titles", "dpo-titles"],
        "task_categories": ["text-generation"],
        "language": ["en"],
    }
    rows = "\n".join(
        f"| {split} | {len(ds)} | {', '.join(ds.column_names)} |" for split, ds in dataset.items()
    )
    body = description or (
        "Preference pairs for Direct Preference Optimization (DPO) of a model that writes "
        "YouTube video titles: each row has a video idea (`prompt`), a preferred title "
        "(`chosen`) and a less preferred one (`rejected`), ranked by an LLM judge."
    )
    return (
        f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n"
        f"# {repo_id.split('/')[-1]}\n\n{body}\n\n"
        "Made by the dpo-titles Kubeflow pipeline.\n\n"
        f"| split | rows | columns |\n| --- | --- | --- |\n{rows}\n"
    )


def _load_dataset_dict(folder: Path):
    from datasets import Dataset, DatasetDict

    from .dataset import read_saved_dataset

    _folder_files(folder, "dataset")
    loaded = read_saved_dataset(folder, "pass a folder written by DatasetDict.save_to_disk")
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    if not isinstance(loaded, DatasetDict) or not len(loaded):
        raise UserError(f"dataset folder {folder} holds no splits: pass a saved DatasetDict")
    return loaded


def push_dataset(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = True,
    description: str | None = None,
    commit_message: str = "Upload dataset from dpo-titles",
) -> str:
    """Push a `save_to_disk` DatasetDict folder to a dataset repo (private by default) as
    Parquet, with a dataset card. Returns the repo's URL.

    Two commits: the card first (`README.md`, replacing any there), then the data through
    `DatasetDict.push_to_hub`, which adds the splits' metadata to the card and keeps its text.
    """
    folder = Path(folder)
    check_repo_id(repo_id)
    token = hub_token()
    dataset = _load_dataset_dict(folder)
    endpoint = hub_endpoint()
    card = dataset_card(dataset, repo_id, description)
    log.info(
        "pushing dataset %s (%s) to %s/datasets/%s (private=%s)",
        folder,
        ", ".join(f"{s}: {len(d)} rows" for s, d in dataset.items()),
        endpoint,
        repo_id,
        private,
    )
    with _hub_errors(repo_id, "dataset", token, endpoint), _datasets_endpoint(endpoint):
        api = _api(token, endpoint)
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_file(
            path_or_fileobj=card.encode("utf-8"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="Dataset card from dpo-titles",
        )
        dataset.push_to_hub(repo_id, private=private, token=token, commit_message=commit_message)
    return str(url)


__all__ = [
    "check_repo_id",
    "dataset_card",
    "hub_endpoint",
    "hub_token",
    "push_dataset",
    "push_model",
]
