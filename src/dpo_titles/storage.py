"""Data in and out of Google Cloud Storage: `gs://` URIs to local files and back.

Stages take paths; a pipeline may hand them `gs://bucket/path` instead. `localize` turns either
into a local path (downloading a `gs://` object, or every object under a prefix such as a model
folder), and `upload` sends a local file or folder to a `gs://` prefix.

Credentials are Application Default Credentials (Workload Identity on the cluster,
`gcloud auth application-default login` or `GOOGLE_APPLICATION_CREDENTIALS` elsewhere). With
`STORAGE_EMULATOR_HOST` set, the client talks to that emulator with anonymous credentials.

`google.cloud.storage` is imported inside the functions, so local-only use never pays for it.
Every failure a user can fix is a one-line `UserError`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError
from .outputs import atomic_dir, atomic_file, is_bookkeeping, safe_child

log = logging.getLogger(__name__)

SCHEME = "gs://"
# Files above this size go up as resumable uploads (the client's own multipart limit, 8 MiB);
# each request then carries `CHUNK_SIZE` bytes and a failed chunk is retried, not the file.
RESUMABLE_ABOVE = 8 * 1024 * 1024
CHUNK_SIZE = 32 * 1024 * 1024  # a multiple of 256 KiB, as the API requires
_CHUNK_MULTIPLE = 256 * 1024
# Transfers smaller than this show no progress bar.
PROGRESS_ABOVE = 8 * 1024 * 1024

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_OTHER_SCHEME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")

_READ_ROLE = "roles/storage.objectViewer"
_WRITE_ROLE = "roles/storage.objectAdmin"


# --------------------------------------------------------------------------------------------
# URIs
# --------------------------------------------------------------------------------------------


def is_gcs(uri: object) -> bool:
    """True for a `gs://...` URI string (well-formed or not: `split_gcs` checks that)."""
    return isinstance(uri, str) and uri.startswith(SCHEME)


def _bucket_problem(bucket: str) -> str | None:
    """Why `bucket` cannot be a Cloud Storage bucket name, or None if it can."""
    if not _BUCKET_RE.fullmatch(bucket):
        return (
            "use 3-63 lowercase letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    parts = bucket.split(".")
    if "." in bucket:
        if len(bucket) > 222 or any(not 1 <= len(p) <= 63 for p in parts):
            return "a dotted name is at most 222 characters, each part 1-63"
        if ".." in bucket or "-." in bucket or ".-" in bucket:
            return "no '..', '-.' or '.-' in a name"
        with contextlib.suppress(ValueError):
            ipaddress.IPv4Address(bucket)
            return "a name cannot be an IP address"
    elif not 3 <= len(bucket) <= 63:
        return "a name is 3-63 characters"
    if bucket.startswith("goog") or "google" in bucket or "g00gle" in bucket:
        return "a name cannot start with 'goog' or contain 'google'"
    return None


def split_gcs(uri: str) -> tuple[str, str]:
    """`gs://bucket/some/path` -> `("bucket", "some/path")`; `gs://bucket` -> `("bucket", "")`.

    A trailing `/` is kept (`gs://b/models/` -> `("b", "models/")`): it marks a prefix.
    """
    if not is_gcs(uri):
        raise UserError(f"{uri!r} is not a gs:// URI: write it as gs://BUCKET/PATH")
    rest = uri[len(SCHEME) :]
    bucket, _, path = rest.partition("/")
    if not bucket:
        raise UserError(f"{uri!r} names no bucket: write it as gs://BUCKET/PATH")
    problem = _bucket_problem(bucket)
    if problem:
        raise UserError(f"{uri!r} has an invalid bucket name {bucket!r}: {problem}")
    if any(c in path for c in "\r\n\0"):
        raise UserError(f"{uri!r} has a line break or NUL in its path: fix the URI")
    if len(path.encode("utf-8")) > 1024:
        raise UserError(f"{uri[:80]!r}... has a path over 1024 bytes: Cloud Storage allows 1024")
    return bucket, path


def _join(bucket: str, name: str) -> str:
    return f"{SCHEME}{bucket}/{name}"


# --------------------------------------------------------------------------------------------
# Client and errors
# --------------------------------------------------------------------------------------------


def _client():
    """A storage client: the emulator (anonymous) when STORAGE_EMULATOR_HOST is set, else ADC."""
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        # google-cloud-storage >= 2 goes anonymous by itself here; saying so keeps older ones
        # from looking for Application Default Credentials the emulator does not need.
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(credentials=AnonymousCredentials())
    return storage.Client()


@contextlib.contextmanager
def _gcs_errors(uri: str, mode: str) -> Iterator[None]:
    """Turn the client's credential and permission errors into one-line UserErrors.

    `mode` is "read" or "write". A 404 is left to the caller, which knows whether the bucket or
    the object is missing.
    """
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth
    from google.cloud.storage.exceptions import DataCorruption

    bucket = uri[len(SCHEME) :].partition("/")[0]
    try:
        yield
    except auth.DefaultCredentialsError as exc:
        raise UserError(
            f"no Google Cloud credentials to {mode} {uri}: set up Application Default "
            "Credentials (`gcloud auth application-default login` or "
            "GOOGLE_APPLICATION_CREDENTIALS locally; Workload Identity for the pipeline's "
            "ServiceAccount on the cluster)"
        ) from exc
    except auth.RefreshError as exc:
        raise UserError(
            f"Google Cloud credentials were refused while trying to {mode} {uri} "
            f"({_first_line(exc)}): renew them (`gcloud auth application-default login`) or "
            "check the Workload Identity binding of the pipeline's ServiceAccount"
        ) from exc
    except api.Unauthorized as exc:
        raise UserError(
            f"Cloud Storage did not accept the credentials used to {mode} {uri} (401): set up "
            "Application Default Credentials or Workload Identity for the pipeline's ServiceAccount"
        ) from exc
    except api.Forbidden as exc:
        role = _READ_ROLE if mode == "read" else _WRITE_ROLE
        raise UserError(
            f"no permission to {mode} {uri} (403): grant the pipeline's ServiceAccount {role} "
            f"on bucket {bucket} ({_first_line(exc)})"
        ) from exc
    except DataCorruption as exc:
        raise UserError(
            f"the download of {uri} did not match its checksum: run the step again"
        ) from exc


def _first_line(exc: BaseException) -> str:
    """The service's own words, without the `GET http://...: ` the client puts before them."""
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    text = re.sub(r"^[A-Z]+ https?://\S+: ", "", text)
    if text.startswith("{"):  # a failed upload carries the raw JSON error body
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            text = str(json.loads(text)["error"]["message"])
    return text if len(text) <= 240 else text[:237] + "..."


def _missing_bucket(bucket: str) -> UserError:
    return UserError(f"bucket {bucket} does not exist: create it or fix the URI")


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=total < PROGRESS_ABOVE,
    )


def _download(blob, dest: Path, bar, chunk_size: int | None) -> None:
    """Download one object to `dest`, written aside and renamed when whole.

    Without `chunk_size` the object comes in one streamed request whose checksum is verified, and
    a dropped connection is resumed from the last byte received (the client retries with a Range
    header). With `chunk_size` it comes in ranged requests of that size (no checksum: the
    service has none for a range).
    """
    from tqdm.utils import CallbackIOWrapper

    if chunk_size:
        blob.chunk_size = chunk_size
    with atomic_file(dest, what="download", record=False) as tmp:
        with open(tmp, "wb") as fh:
            blob.download_to_file(CallbackIOWrapper(bar.update, fh, "write"), checksum="auto")


def local_input(uri: str | None, *, max_bytes: int | None = None) -> str | None:
    """A local path for an input that may be a gs:// URI (a file or a model folder), downloaded
    to a new temporary folder of this process's own (shard pods or processes sharing a volume
    would otherwise race on one download); local paths and hub ids come back unchanged.
    `max_bytes` refuses a single object over that size before it is downloaded."""
    if not uri or not is_gcs(uri):
        return uri
    return localize(uri, max_bytes=max_bytes)


def local_csv(uri: str | None) -> str | None:
    """`local_input` for a CSV a user gave: within the input size limit (files.input_limit)."""
    from .files import input_limit_bytes

    return local_input(uri, max_bytes=input_limit_bytes())


def localize(
    uri: str | os.PathLike,
    dest_dir: str | os.PathLike | None = None,
    *,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> str:
    """Return a local path for `uri`.

    A local path comes back unchanged. `gs://bucket/path` is downloaded into
    `dest_dir/bucket/path` (`dest_dir` defaults to a new temporary folder): the object itself if
    one has that name, otherwise every object under the prefix `path/`, keeping their relative
    paths (a model folder). A URI ending in `/` is always a prefix. Files are written aside and
    renamed when whole, and a folder appears only when every file in it is. An object name that
    would land outside `dest_dir` (`..`, `.`, empty segments) is refused with its name. With
    `max_bytes`, a single object larger than that is refused before it is downloaded.
    """
    if not is_gcs(uri):
        text = os.fspath(uri)
        if isinstance(text, str) and _OTHER_SCHEME_RE.match(text):
            raise UserError(f"{text!r}: only local paths and gs:// URIs are supported")
        return str(text)
    bucket_name, path = split_gcs(uri)
    if dest_dir is not None:
        return _localize_gcs(uri, bucket_name, path, Path(dest_dir), chunk_size, max_bytes)
    root = Path(tempfile.mkdtemp(prefix="dpo-gcs-"))
    try:
        return _localize_gcs(uri, bucket_name, path, root, chunk_size, max_bytes)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)  # the temporary folder only held this download
        raise


def _localize_gcs(
    uri: str, bucket_name: str, path: str, root: Path, chunk_size, max_bytes: int | None
) -> str:
    from google.api_core.exceptions import NotFound

    stem = path.rstrip("/")
    # The bucket name was checked by split_gcs (no '/', no '..'); the object path must stay
    # inside the download folder too, whatever Cloud Storage allows in a name.
    target = safe_child(root, f"{bucket_name}/{stem}" if stem else bucket_name, f"object {uri}")
    with _gcs_errors(uri, "read"):
        client = _client()
        bucket = client.bucket(bucket_name)
        try:
            if stem and not path.endswith("/"):
                blob = bucket.get_blob(path)  # None for a missing object (or bucket)
                if blob is not None:
                    if target.is_dir():
                        raise UserError(
                            f"cannot download {uri} to {target}: a folder is in the way"
                        )
                    if max_bytes is not None and (blob.size or 0) > max_bytes:
                        from .files import too_large

                        raise UserError(too_large(uri, blob.size or 0, "input"))
                    log.info("downloading %s (%s bytes) to %s", uri, blob.size, target)
                    with _progress(blob.size or 0, uri) as bar:
                        _download(blob, target, bar, chunk_size)
                    return str(target)
            prefix = f"{stem}/" if stem else ""
            try:
                blobs = [
                    b
                    for b in client.list_blobs(bucket_name, prefix=prefix)
                    if not b.name.endswith("/")  # folder placeholders made by the console
                ]
            except NotFound:
                raise _missing_bucket(bucket_name) from None
            if not blobs:
                raise UserError(f"no object at {uri} (nor under {_join(bucket_name, prefix)})")
            files = [
                (b, b.name[len(prefix) :], f"object {_join(bucket_name, b.name)}") for b in blobs
            ]
            total = sum(b.size or 0 for b in blobs)
            log.info(
                "downloading %d objects (%d bytes) under %s to %s",
                len(files),
                total,
                _join(bucket_name, prefix),
                target,
            )
            for _, rel, label in files:
                safe_child(target, rel, label)  # every name is checked before a byte is written
            # No marker: the folder is an exact copy of the objects (in a folder of its own).
            with atomic_dir(target, kind=None, what="download") as tmp:
                with _progress(total, uri) as bar:
                    for blob, rel, label in files:
                        _download(blob, safe_child(tmp, rel, label), bar, chunk_size)
            return str(target)
        except NotFound as exc:
            # The object went away between listing and download, or the bucket did.
            raise UserError(f"no object at {uri} ({_first_line(exc)})") from exc


# --------------------------------------------------------------------------------------------
# Upload
# --------------------------------------------------------------------------------------------


def _local_files(root: Path) -> list[Path]:
    """Every regular file under `root`, without the output policy's own files (markers,
    ledgers, half-written `.NAME.*.partial` ones)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not is_bookkeeping(p.name))


def upload(
    local_path: str | os.PathLike, gs_uri: str, *, chunk_size: int = CHUNK_SIZE
) -> list[str]:
    """Upload a file or a whole folder to Cloud Storage; return the URIs written.

    A file goes to `gs_uri` itself, or to `gs_uri/NAME` when `gs_uri` ends in `/` or names only a
    bucket. A folder's files go under the prefix `gs_uri/`, keeping their relative paths. Files
    over `RESUMABLE_ABOVE` bytes go as resumable uploads in `chunk_size` pieces (a multiple of
    256 KiB).
    """
    if chunk_size <= 0 or chunk_size % _CHUNK_MULTIPLE:
        raise ValueError(f"chunk_size must be a positive multiple of {_CHUNK_MULTIPLE}")
    source = Path(local_path)
    bucket_name, path = split_gcs(gs_uri)
    if source.is_file():
        name = path + source.name if (not path or path.endswith("/")) else path
        plan = [(source, name)]
    elif source.is_dir():
        prefix = path.rstrip("/")
        files = _local_files(source)
        if not files:
            raise UserError(f"folder {source} has no files to upload")
        plan = [
            (
                f,
                f"{prefix}/{f.relative_to(source).as_posix()}"
                if prefix
                else f.relative_to(source).as_posix(),
            )
            for f in files
        ]
    else:
        raise UserError(f"{source} does not exist: pass a file or folder to upload")

    from google.api_core.exceptions import NotFound
    from tqdm.utils import CallbackIOWrapper

    total = sum(f.stat().st_size for f, _ in plan)
    log.info("uploading %d file(s) (%d bytes) from %s to %s", len(plan), total, source, gs_uri)
    uploaded: list[str] = []
    with _gcs_errors(gs_uri, "write"):
        client = _client()
        bucket = client.bucket(bucket_name)
        with _progress(total, gs_uri) as bar:
            for file, name in plan:
                blob = bucket.blob(name)
                size = file.stat().st_size
                if size > RESUMABLE_ABOVE:
                    blob.chunk_size = chunk_size
                content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                try:
                    with open(file, "rb") as fh:
                        blob.upload_from_file(
                            CallbackIOWrapper(bar.update, fh, "read"),
                            size=size,
                            content_type=content_type,
                        )
                except NotFound:
                    raise _missing_bucket(bucket_name) from None
                uploaded.append(_join(bucket_name, name))
    return uploaded
