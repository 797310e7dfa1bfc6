"""Optional exports of a run's results: the preference dataset and the tuned model, to a
Cloud Storage prefix and to the Hugging Face Hub. Each destination is off when empty."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exports:
    dataset_uri: str = ""
    model_uri: str = ""
    hub_dataset_repo: str = ""
    hub_model_repo: str = ""
    hub_private: bool = True

    def any(self) -> bool:
        return any((self.dataset_uri, self.model_uri, self.hub_dataset_repo, self.hub_model_repo))


def check_exports(exports: Exports) -> None:
    """Refuse bad destinations before any work is done: a URI that is not gs://, a Hub repo
    name that is not valid, a Hub export without HF_TOKEN."""
    from .storage import is_gcs, split_gcs

    for name, uri in (("dataset", exports.dataset_uri), ("model", exports.model_uri)):
        if uri:
            if not is_gcs(uri):
                raise UserError(f"{name} export {uri!r} must be a gs://bucket/prefix URI")
            split_gcs(uri)
    if exports.hub_dataset_repo or exports.hub_model_repo:
        from .hub import check_repo_id, hub_token

        for repo in (exports.hub_dataset_repo, exports.hub_model_repo):
            if repo:
                check_repo_id(repo)
        hub_token()


def export(dataset_dir: str | None, model_dir: str | None, exports: Exports) -> dict:
    """Send the dataset and the model where `exports` says; returns where each went."""
    check_exports(exports)
    done: dict = {}
    # A folder's files go under the URI as a prefix, with or without a trailing slash.
    if exports.dataset_uri and dataset_dir:
        from .storage import upload

        done["dataset_files_uploaded"] = len(upload(dataset_dir, exports.dataset_uri))
        done["dataset_uri"] = exports.dataset_uri
    if exports.model_uri and model_dir:
        from .storage import upload

        done["model_files_uploaded"] = len(upload(model_dir, exports.model_uri))
        done["model_uri"] = exports.model_uri
    if exports.hub_dataset_repo and dataset_dir:
        from .dataset import HF_DIR
        from .hub import push_dataset

        done["hub_dataset_url"] = push_dataset(
            Path(dataset_dir) / HF_DIR,
            exports.hub_dataset_repo,
            private=exports.hub_private,
            description="YouTube title preference pairs labelled by dpo-titles (TRL "
            "conversational format, split by idea).",
        )
    if exports.hub_model_repo and model_dir:
        from .hub import push_model

        done["hub_model_url"] = push_model(
            model_dir, exports.hub_model_repo, private=exports.hub_private
        )
    for key, value in done.items():
        log.info("export: %s = %s", key, value)
    if not exports.any():
        log.info("no exports asked for")
    return done
