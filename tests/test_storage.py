"""dpo_titles.storage against a real Cloud Storage emulator on loopback (tests/fakes/gcs.py).

The google-cloud-storage client is the real one; only its endpoint is the emulator, through
STORAGE_EMULATOR_HOST. The emulator has no IAM, so the 403 tests point the client at
`DenyingGcs`, a loopback server that answers 403 with Cloud Storage's error body: the client
raises its real `Forbidden` from a real HTTP exchange, and the mapping to a UserError is ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dpo_titles import storage
from dpo_titles.errors import UserError
from tests.fakes.gcs import AnyNameGcs, DenyingGcs, GcsEmulator

BUCKET = "dpo-data"


@pytest.fixture(scope="module")
def emulator():
    with GcsEmulator() as running:
        yield running


@pytest.fixture()
def gcs(emulator, monkeypatch):
    """The module's emulator, emptied, with bucket BUCKET, and the client pointed at it."""
    emulator.wipe()
    emulator.create_bucket(BUCKET)
    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)
    return emulator


def _client():
    from google.cloud import storage as gcs_lib

    return gcs_lib.Client()


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _one_line_user_error(excinfo) -> str:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, UserError)
    assert "\n" not in message
    return message


def _model_folder(root: Path) -> Path:
    """A folder shaped like a saved model: nested files, one binary, one half-written leftover."""
    folder = root / "model"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}\n')
    (folder / "tokenizer" / "tokenizer.json").write_text('{"vocab": {"a": 0}}\n')
    (folder / "tokenizer" / "special tokens.txt").write_text("<s>\n</s>\n")
    (folder / "model.safetensors").write_bytes(os.urandom(300_000))
    (folder / ".adapter.bin.4242-0123abcd.partial").write_bytes(b"half-written")
    return folder


# -- URIs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("gs://dpo-data/runs/r1/pairs.csv", ("dpo-data", "runs/r1/pairs.csv")),
        ("gs://dpo-data", ("dpo-data", "")),
        ("gs://dpo-data/", ("dpo-data", "")),
        ("gs://dpo-data/models/m1/", ("dpo-data", "models/m1/")),
        ("gs://my.bucket.example/x", ("my.bucket.example", "x")),
        ("gs://a_b-c/x y.txt", ("a_b-c", "x y.txt")),
    ],
)
def test_split_gcs(uri, expected):
    assert storage.is_gcs(uri)
    assert storage.split_gcs(uri) == expected


@pytest.mark.parametrize(
    "uri, says",
    [
        ("gs://", "names no bucket"),
        ("gs:///path/x", "names no bucket"),
        ("gs://Upper/x", "invalid bucket name"),
        ("gs://ab/x", "invalid bucket name"),
        ("gs://-dash/x", "invalid bucket name"),
        ("gs://has space/x", "invalid bucket name"),
        ("gs://" + "a" * 64 + "/x", "invalid bucket name"),
        ("gs://192.168.1.1/x", "invalid bucket name"),
        ("gs://google-data/x", "invalid bucket name"),
        ("gs://dpo-data/a\nb", "line break"),
        ("s3://dpo-data/x", "not a gs:// URI"),
    ],
)
def test_malformed_uris_are_one_line_user_errors(uri, says):
    with pytest.raises(UserError) as excinfo:
        storage.split_gcs(uri)
    message = _one_line_user_error(excinfo)
    assert says in message


def test_is_gcs():
    assert not storage.is_gcs("data/pairs.csv")
    assert not storage.is_gcs(Path("gs:/x"))
    assert not storage.is_gcs("GS://bucket/x")


def test_local_paths_come_back_unchanged(tmp_path):
    assert storage.localize("data/ideas.csv") == "data/ideas.csv"
    assert storage.localize(str(tmp_path)) == str(tmp_path)
    assert storage.localize(tmp_path / "x.csv") == str(tmp_path / "x.csv")
    with pytest.raises(UserError, match="only local paths and gs:// URIs"):
        storage.localize("s3://bucket/x.csv")


def test_local_use_does_not_import_the_cloud_client():
    code = (
        "import sys; from dpo_titles import storage; storage.localize('data/x.csv'); "
        "storage.is_gcs('gs://b/x'); storage.split_gcs('gs://bucket/x'); "
        "print('google.cloud.storage' in sys.modules)"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert out.stdout.strip() == "False"


# -- round trips -----------------------------------------------------------------------------


def test_file_round_trip(gcs, tmp_path):
    source = tmp_path / "pairs.csv"
    source.write_bytes("prompt,chosen,rejected\nidée,A,B\n".encode())

    assert storage.upload(source, f"gs://{BUCKET}/runs/r1/pairs.csv") == [
        f"gs://{BUCKET}/runs/r1/pairs.csv"
    ]
    # A prefix ending in "/" (or a bare bucket) takes the file's own name.
    assert storage.upload(source, f"gs://{BUCKET}/runs/r2/") == [f"gs://{BUCKET}/runs/r2/pairs.csv"]
    assert storage.upload(str(source), f"gs://{BUCKET}") == [f"gs://{BUCKET}/pairs.csv"]

    local = storage.localize(f"gs://{BUCKET}/runs/r1/pairs.csv", tmp_path / "cache")
    assert local == str(tmp_path / "cache" / BUCKET / "runs" / "r1" / "pairs.csv")
    assert Path(local).read_bytes() == source.read_bytes()
    blob = _client().bucket(BUCKET).get_blob("runs/r1/pairs.csv")
    assert blob.content_type == "text/csv"
    # Nothing half-written is left beside it.
    assert sorted(p.name for p in Path(local).parent.iterdir()) == ["pairs.csv"]


def test_folder_round_trip_keeps_relative_paths(gcs, tmp_path):
    folder = _model_folder(tmp_path)

    uris = storage.upload(folder, f"gs://{BUCKET}/models/m1")

    assert uris == [
        f"gs://{BUCKET}/models/m1/config.json",
        f"gs://{BUCKET}/models/m1/model.safetensors",
        f"gs://{BUCKET}/models/m1/tokenizer/special tokens.txt",
        f"gs://{BUCKET}/models/m1/tokenizer/tokenizer.json",
    ]  # sorted, and the .partial leftover was not sent
    expected = {k: v for k, v in _tree(folder).items() if not k.endswith(".partial")}

    for uri in (f"gs://{BUCKET}/models/m1", f"gs://{BUCKET}/models/m1/"):
        dest = tmp_path / ("a" if uri.endswith("1") else "b")
        local = storage.localize(uri, dest)
        assert local == str(dest / BUCKET / "models" / "m1")
        assert _tree(Path(local)) == expected

    # Without dest_dir it goes to a fresh temporary folder.
    local = Path(storage.localize(f"gs://{BUCKET}/models/m1/"))
    try:
        assert local.parts[-3:] == (BUCKET, "models", "m1")
        assert _tree(local) == expected
    finally:
        import shutil

        shutil.rmtree(local.parents[2], ignore_errors=True)


def test_prefix_download_takes_only_that_folder(gcs, tmp_path):
    bucket = _client().bucket(BUCKET)
    for name, data in {
        "models/m1/config.json": b"m1",
        "models/m1/sub/deep/weights.bin": b"\x00\x01deep",
        "models/m1/": b"",  # a folder placeholder, as the console makes
        "models/m10/config.json": b"m10",  # shares the string prefix, not the folder
        "models/m1.txt": b"a sibling file",
    }.items():
        bucket.blob(name).upload_from_string(data)

    local = Path(storage.localize(f"gs://{BUCKET}/models/m1", tmp_path))

    assert _tree(local) == {"config.json": b"m1", "sub/deep/weights.bin": b"\x00\x01deep"}
    # A whole bucket is a prefix too.
    whole = Path(storage.localize(f"gs://{BUCKET}/", tmp_path / "all"))
    assert set(_tree(whole)) == {
        "models/m1/config.json",
        "models/m1/sub/deep/weights.bin",
        "models/m10/config.json",
        "models/m1.txt",
    }


def test_an_object_wins_over_a_prefix_of_the_same_name(gcs, tmp_path):
    bucket = _client().bucket(BUCKET)
    bucket.blob("runs/out").upload_from_string(b"the object")
    bucket.blob("runs/out/inner.txt").upload_from_string(b"under the prefix")

    assert Path(storage.localize(f"gs://{BUCKET}/runs/out", tmp_path / "a")).read_bytes() == (
        b"the object"
    )
    folder = Path(storage.localize(f"gs://{BUCKET}/runs/out/", tmp_path / "b"))
    assert _tree(folder) == {"inner.txt": b"under the prefix"}


def test_large_file_goes_resumable_in_chunks_with_progress(gcs, tmp_path, monkeypatch, capsys):
    from google.cloud.storage import blob as blob_module

    calls = {"resumable": 0, "multipart": 0, "chunk_sizes": []}
    real_resumable = blob_module.Blob._do_resumable_upload
    real_multipart = blob_module.Blob._do_multipart_upload

    def resumable(self, *args, **kwargs):
        calls["resumable"] += 1
        calls["chunk_sizes"].append(self.chunk_size)
        return real_resumable(self, *args, **kwargs)

    def multipart(self, *args, **kwargs):
        calls["multipart"] += 1
        return real_multipart(self, *args, **kwargs)

    monkeypatch.setattr(blob_module.Blob, "_do_resumable_upload", resumable)
    monkeypatch.setattr(blob_module.Blob, "_do_multipart_upload", multipart)

    big = tmp_path / "big.bin"
    payload = os.urandom(storage.RESUMABLE_ABOVE + 12_345)  # just over the multipart limit
    big.write_bytes(payload)
    small = tmp_path / "small.txt"
    small.write_bytes(b"tiny")
    chunk = 4 * 256 * 1024

    storage.upload(big, f"gs://{BUCKET}/big/big.bin", chunk_size=chunk)
    storage.upload(small, f"gs://{BUCKET}/big/small.txt", chunk_size=chunk)

    assert calls == {"resumable": 1, "multipart": 1, "chunk_sizes": [chunk]}
    assert _client().bucket(BUCKET).get_blob("big/big.bin").size == len(payload)
    assert "100%" in capsys.readouterr().err  # the tqdm bar of the big upload

    # Streamed (checksummed) download, then the ranged, chunked one.
    streamed = Path(storage.localize(f"gs://{BUCKET}/big/big.bin", tmp_path / "s"))
    chunked = Path(storage.localize(f"gs://{BUCKET}/big/big.bin", tmp_path / "c", chunk_size=chunk))
    assert streamed.read_bytes() == payload
    assert chunked.read_bytes() == payload
    assert "100%" in capsys.readouterr().err

    with pytest.raises(ValueError, match="multiple of"):
        storage.upload(big, f"gs://{BUCKET}/x", chunk_size=1000)


def test_a_failed_folder_download_leaves_no_folder(gcs, tmp_path, monkeypatch):
    folder = _model_folder(tmp_path)
    storage.upload(folder, f"gs://{BUCKET}/models/m2")
    real_download = storage._download
    done = []

    def fail_on_second(blob, dest, bar, chunk_size):
        if done:
            raise ConnectionError("connection reset mid-download")
        done.append(blob.name)
        real_download(blob, dest, bar, chunk_size)

    monkeypatch.setattr(storage, "_download", fail_on_second)
    dest = tmp_path / "cache"
    with pytest.raises(ConnectionError):
        storage.localize(f"gs://{BUCKET}/models/m2", dest)

    assert done  # one file was whole before the failure ...
    assert not (dest / BUCKET / "models" / "m2").exists()  # ... but the folder never appeared
    assert [p.name for p in (dest / BUCKET / "models").iterdir()] == []


ESCAPING = ["models/m3/../../evil.txt", "models/m3/./x", "models/m3//x", "models/m3/a/../../b"]


@pytest.mark.parametrize("name", ESCAPING)
def test_listed_names_that_escape_the_folder_are_refused_before_any_download(
    name, tmp_path, monkeypatch
):
    # Cloud Storage allows such names (the emulator does not), so a loopback bucket that serves
    # them stands in: the real client lists them, and localize() refuses before writing a byte.
    objects = {"models/m3/config.json": b"{}", name: b"escaped"}
    with AnyNameGcs(BUCKET, objects) as fake:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.host)
        with pytest.raises(UserError) as excinfo:
            storage.localize(f"gs://{BUCKET}/models/m3/", tmp_path / "dest")
        assert fake.downloads == []
    message = _one_line_user_error(excinfo)
    assert f"gs://{BUCKET}/{name}" in message and "would not stay inside" in message
    assert list(tmp_path.iterdir()) == []  # nothing written, inside the folder or out of it


@pytest.mark.parametrize("uri", ["gs://data/../../victim.csv", "gs://data/../victim/"])
def test_a_uri_whose_path_escapes_is_refused_with_its_name(uri, tmp_path, monkeypatch):
    victim = tmp_path / "victim.csv"
    victim.write_text("mine")
    (tmp_path / "victim").mkdir()
    objects = {"../../victim.csv": b"overwritten", "../victim/x": b"overwritten"}
    with AnyNameGcs("data", objects) as fake:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.host)
        dest = tmp_path / "a" / "b"
        with pytest.raises(UserError) as excinfo:
            storage.localize(uri, dest)
        assert fake.requests == []  # refused before asking Cloud Storage for anything
    assert uri.removeprefix("gs://") in _one_line_user_error(excinfo)
    assert victim.read_text() == "mine" and list((tmp_path / "victim").iterdir()) == []


# -- errors ------------------------------------------------------------------------------------


def test_missing_bucket(gcs, tmp_path):
    (tmp_path / "f.txt").write_text("x")
    for action in (
        lambda: storage.localize("gs://no-such-bucket/runs/pairs.csv", tmp_path),
        lambda: storage.localize("gs://no-such-bucket/models/m1/", tmp_path),
        lambda: storage.upload(tmp_path / "f.txt", "gs://no-such-bucket/runs/f.txt"),
    ):
        with pytest.raises(UserError) as excinfo:
            action()
        assert _one_line_user_error(excinfo) == (
            "bucket no-such-bucket does not exist: create it or fix the URI"
        )


def test_missing_object_or_prefix(gcs, tmp_path):
    _client().bucket(BUCKET).blob("runs/r1/pairs.csv").upload_from_string(b"x")
    for uri in (
        f"gs://{BUCKET}/runs/r1/pairs.tsv",
        f"gs://{BUCKET}/runs/r2/",
        f"gs://{BUCKET}/runs/r",  # a string prefix of runs/r1 is not a folder
    ):
        with pytest.raises(UserError) as excinfo:
            storage.localize(uri, tmp_path)
        message = _one_line_user_error(excinfo)
        assert message.startswith(f"no object at {uri}")


def test_missing_local_source(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        storage.upload(tmp_path / "nope", f"gs://{BUCKET}/x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no files"):
        storage.upload(tmp_path / "empty", f"gs://{BUCKET}/x/")


def test_permission_denied_says_which_role(monkeypatch, tmp_path):
    (tmp_path / "f.txt").write_text("x")
    with DenyingGcs() as denying:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", denying.host)

        with pytest.raises(UserError) as read:
            storage.localize(f"gs://{BUCKET}/runs/pairs.csv", tmp_path / "cache")
        with pytest.raises(UserError) as write:
            storage.upload(tmp_path / "f.txt", f"gs://{BUCKET}/runs/f.txt")
        assert denying.requests  # the client really asked, and was refused

    read_message = _one_line_user_error(read)
    assert read_message.startswith(f"no permission to read gs://{BUCKET}/runs/pairs.csv (403)")
    assert "roles/storage.objectViewer" in read_message
    assert "storage.objects.get" in read_message  # the service's own reason is kept
    write_message = _one_line_user_error(write)
    assert write_message.startswith(f"no permission to write gs://{BUCKET}/runs/f.txt (403)")
    assert "roles/storage.objectAdmin" in write_message
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.csv"))


def test_no_credentials_says_how_to_set_them_up(monkeypatch, tmp_path):
    # An explicit credentials file that is not there fails at once, with no metadata-server probe.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    (tmp_path / "f.txt").write_text("x")

    for action, verb in (
        (lambda: storage.localize(f"gs://{BUCKET}/x.csv", tmp_path), "read"),
        (lambda: storage.upload(tmp_path / "f.txt", f"gs://{BUCKET}/x.csv"), "write"),
    ):
        with pytest.raises(UserError) as excinfo:
            action()
        message = _one_line_user_error(excinfo)
        assert message.startswith(f"no Google Cloud credentials to {verb} gs://{BUCKET}/x.csv")
        assert "Application Default Credentials" in message
        assert "Workload Identity" in message
