"""A loopback fake of the Hugging Face Hub's REST API, enough for creating a repo and committing
files to it, as ``huggingface_hub`` (``HfApi.create_repo`` / ``upload_folder`` / ``create_commit``)
and ``datasets`` (``DatasetDict.push_to_hub``) call it.

Point a client here with ``HF_ENDPOINT=server.base_url`` (``dpo_titles.hub`` reads it at call
time). The server keeps each repo's files in memory, so tests assert what arrived byte for byte,
and records every request (method, path, query, lower-cased headers, body) so tests can check the
repo was created private and the token travelled only as ``Authorization: Bearer``.

Served (the routes and wire formats huggingface_hub 2.4 uses; see tests/fakes/README.md):

* ``POST /api/repos/create``: JSON ``{name, organization, type, visibility}``.
* ``GET  /api/{type}s/{repo_id}[/revision/{rev}]``: repo info (``sha``, ``private``, ``siblings``).
* ``POST /api/{type}s/{repo_id}/preupload/{rev}``: upload mode per file.
* ``POST /api/{type}s/{repo_id}/commit/{rev}``: NDJSON of a ``header``, then ``file`` (base64),
  ``lfsFile`` and ``deletedFile`` lines.
* ``GET  /api/{type}s/{repo_id}/tree/{rev}[/{path}]`` and
  ``POST /api/{type}s/{repo_id}/paths-info/{rev}``: listings (``HfFileSystem``).
* ``GET|HEAD /{prefix}{repo_id}/resolve/{rev}/{path}``: file bytes.
* ``POST /api/validate-yaml``: the README front-matter check; ``GET /api/whoami-v2``.
* ``POST /{prefix}{repo_id}.git/info/lfs/objects/batch``: LFS batch, ``basic`` transfer only,
  with ``PUT /__lfs/{oid}`` for the bytes. huggingface_hub sends LFS files through Xet instead
  when ``hf_xet`` is installed, which this fake does not speak: a test that commits an LFS file
  (``*.parquet``, ``*.safetensors``, binary, large) must turn Xet off
  (``huggingface_hub.constants.HF_HUB_DISABLE_XET = True``).
* ``GET  /api/agent-harnesses``: huggingface_hub's User-Agent registry (empty).

Anything else is a 404 with ``X-Error-Code: EntryNotFound`` and is listed in ``unhandled``.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

__all__ = ["FakeHub", "HubRepo"]

_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_TYPE_OF_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
_REPO_ID = r"(?P<repo_id>[\w.-]+(?:/[\w.-]+)?)"

# The LFS patterns of the default .gitattributes the Hub writes into a new repo (abridged).
LFS_PATTERNS = (
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.safetensors",
    "*.tar",
    "*.tflite",
    "*.zip",
    "*.zst",
    "*tfevents*",
)


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubRepo:
    """One repo held by the fake: its files (path -> bytes) and its commits, newest last."""

    repo_id: str
    repo_type: str
    private: bool | None
    visibility: str | None
    files: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)
    commits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sha(self) -> str:
        if self.commits:
            return self.commits[-1]["oid"]
        return hashlib.sha1(f"init:{self.repo_type}:{self.repo_id}".encode()).hexdigest()


@dataclass
class _Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, obj: Any, **headers: str) -> _Reply:
    return _Reply(
        status,
        json.dumps(obj).encode(),
        {"Content-Type": "application/json", **headers},
    )


def _error(status: int, message: str, code: str | None = None) -> _Reply:
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return _json(status, {"error": message}, **headers)


class FakeHub:
    """The fake Hub.

    ``token`` is the only accepted Bearer token (401 otherwise, as the Hub answers a bad token);
    ``user`` owns it; ``forbidden_namespaces`` answer 403 on create/preupload/commit, as the Hub
    does when a token has no write access there. The preupload answer says ``lfs`` as the Hub
    does: for a path matching ``lfs_patterns`` (the Hub's default ``.gitattributes``), a file of
    ``lfs_above`` bytes or more, or a binary sample (a NUL byte); ``regular`` otherwise.
    """

    def __init__(
        self,
        *,
        token: str = "hf_fake_token_0123456789",
        user: str = "fake-user",
        forbidden_namespaces: tuple[str, ...] = (),
        lfs_above: int = 10 * 1024 * 1024,
        lfs_patterns: tuple[str, ...] = LFS_PATTERNS,
    ) -> None:
        self.token = token
        self.user = user
        self.forbidden_namespaces = tuple(forbidden_namespaces)
        self.lfs_above = lfs_above
        self.lfs_patterns = tuple(lfs_patterns)
        self.repos: dict[tuple[str, str], HubRepo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.unhandled: list[str] = []
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeHub:
        if self._httpd is not None:
            return self
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeHub:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """``HF_ENDPOINT`` and ``HF_TOKEN`` pointing here (for monkeypatch.setenv)."""
        return {"HF_ENDPOINT": self.base_url, "HF_TOKEN": self.token}

    # -- records -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request: ``method``, ``path``, ``query`` (dict of lists), ``headers``
        (lower-cased), ``body`` (bytes), ``time``."""
        with self._lock:
            return list(self._requests)

    def repo(self, repo_id: str, repo_type: str = "model") -> HubRepo:
        with self._lock:
            return self.repos[(repo_type, repo_id)]

    # -- routing -----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Reply:
        url = urlsplit(target)
        path = unquote(url.path)
        query = parse_qs(url.query)
        with self._lock:
            self._requests.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "headers": headers,
                    "body": raw,
                    "time": time.time(),
                }
            )
        if method == "GET" and path == "/api/agent-harnesses":
            # huggingface_hub fetches this registry once per process for its User-Agent;
            # answering it here keeps that request on loopback. No auth, as on the Hub.
            return _json(200, {"standardEnvVars": [], "harnesses": {}})
        if method == "PUT" and path.startswith("/__lfs/"):
            # Pre-signed storage URL: no Authorization header, as with the real one.
            return self._lfs_put(path.rsplit("/", 1)[1], raw)
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            # What the Hub says to a missing or wrong token on its API.
            return _error(401, "Invalid credentials in Authorization header")
        with self._lock:
            return self._route(method, path, query, headers, raw)

    def _route(self, method, path, query, headers, raw) -> _Reply:
        if method == "GET" and path == "/api/whoami-v2":
            return _json(200, {"type": "user", "name": self.user, "orgs": []})
        if method == "POST" and path == "/api/repos/create":
            return self._create(json.loads(raw or b"{}"))
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(raw or b"{}"))
        m = re.fullmatch(
            rf"/api/(?P<plural>models|datasets|spaces)/{_REPO_ID}"
            r"(?:/(?P<op>preupload|commit|tree|paths-info|revision)(?:/(?P<rest>.*))?)?",
            path,
        )
        if m:
            repo_type = _TYPE_OF_PLURAL[m["plural"]]
            repo = self.repos.get((repo_type, m["repo_id"]))
            if repo is None:
                return _error(404, "Repository not found", "RepoNotFound")
            op, rest = m["op"], m["rest"] or ""
            rev, _, sub = rest.partition("/")
            if op is None and method == "GET" or op == "revision" and method == "GET":
                return _json(200, self._info(repo))
            if op == "preupload" and method == "POST":
                return self._preupload(repo, json.loads(raw or b"{}"))
            if op == "commit" and method == "POST":
                return self._commit(repo, raw)
            if op == "tree" and method == "GET":
                return self._tree(repo, sub.strip("/"), query)
            if op == "paths-info" and method == "POST":
                return self._paths_info(repo, raw, headers)
        m = re.fullmatch(
            rf"/(?P<prefix>datasets/|spaces/)?{_REPO_ID}/resolve/(?P<rev>[^/]+)/(?P<file>.+)",
            path,
        )
        if m and method in ("GET", "HEAD"):
            repo_type = {"datasets/": "dataset", "spaces/": "space"}.get(m["prefix"], "model")
            repo = self.repos.get((repo_type, m["repo_id"]))
            if repo is None:
                return _error(404, "Repository not found", "RepoNotFound")
            data = repo.files.get(m["file"])
            if data is None:
                return _error(404, "Entry not found", "EntryNotFound")
            return _Reply(
                200,
                data,
                {
                    "Content-Type": "application/octet-stream",
                    "X-Repo-Commit": repo.sha,
                    "ETag": f'"{_git_blob_sha1(data)}"',
                },
            )
        m = re.fullmatch(
            rf"/(?P<prefix>datasets/|spaces/)?{_REPO_ID}\.git/info/lfs/objects/batch", path
        )
        if m and method == "POST":
            return self._lfs_batch(json.loads(raw or b"{}"))
        self.unhandled.append(f"{method} {path}")
        return _error(404, f"fake hub: no route for {method} {path}", "EntryNotFound")

    # -- endpoints ---------------------------------------------------------------------------

    def _create(self, payload: dict) -> _Reply:
        name, org = payload.get("name"), payload.get("organization")
        repo_type = payload.get("type") or "model"
        repo_id = f"{org}/{name}" if org else f"{self.user}/{name}"
        namespace = repo_id.split("/")[0]
        if namespace in self.forbidden_namespaces:
            return _error(
                403,
                f"You don't have the rights to create a {repo_type} "
                f'under the namespace "{namespace}"',
            )
        url = f"{self.base_url}/{_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.repos:
            return _json(409, {"error": "You already created this repo", "url": url})
        visibility = payload.get("visibility")
        private = payload.get("private")
        if private is None and visibility is not None:
            private = visibility == "private"
        self.repos[(repo_type, repo_id)] = HubRepo(repo_id, repo_type, private, visibility)
        return _json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, payload: dict) -> _Reply:
        # The Hub checks a README's YAML front matter before a commit that changes it.
        content = payload.get("content") or ""
        m = re.match(r"\A---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(m.group(1)) if m else {}
        except yaml.YAMLError as exc:
            return _json(400, {"errors": [{"message": f"invalid YAML: {exc}"}], "warnings": []})
        if meta is not None and not isinstance(meta, dict):
            return _json(400, {"errors": [{"message": "metadata must be a mapping"}]})
        return _json(200, {"errors": [], "warnings": []})

    def _info(self, repo: HubRepo) -> dict:
        return {
            "id": repo.repo_id,
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "sha": repo.sha,
            "private": bool(repo.private),
            "author": repo.repo_id.split("/")[0],
            "siblings": [{"rfilename": p} for p in sorted(repo.files)],
            "tags": [],
            "lastModified": "2026-01-01T00:00:00.000Z",
        }

    def _preupload(self, repo: HubRepo, payload: dict) -> _Reply:
        if repo.repo_id.split("/")[0] in self.forbidden_namespaces:
            return _error(403, "You don't have write access to this repo")
        files = []
        for item in payload.get("files", []):
            size = int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample") or "")
            name = item["path"].rsplit("/", 1)[-1]
            lfs = (
                size >= self.lfs_above
                or b"\0" in sample
                or any(fnmatch.fnmatch(name, pat) for pat in self.lfs_patterns)
            )
            mode = "lfs" if lfs and size > 0 else "regular"
            existing = repo.files.get(item["path"])
            oid = None
            if existing is not None:
                oid = (
                    hashlib.sha256(existing).hexdigest()
                    if item["path"] in repo.lfs_paths
                    else _git_blob_sha1(existing)
                )
            files.append(
                {"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid}
            )
        return _json(200, {"files": files, "commitOid": repo.sha})

    def _commit(self, repo: HubRepo, raw: bytes) -> _Reply:
        if repo.repo_id.split("/")[0] in self.forbidden_namespaces:
            return _error(403, "You don't have write access to this repo")
        header: dict = {}
        adds: dict[str, bytes] = {}
        lfs: set[str] = set()
        deletes: list[str] = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding") != "base64":
                    return _error(400, f"unsupported encoding {value.get('encoding')}")
                adds[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                data = self.lfs_objects.get(value["oid"])
                if data is None or len(data) != int(value["size"]):
                    return _error(422, f"LFS object {value['oid']} was not uploaded")
                adds[value["path"]] = data
                lfs.add(value["path"])
            elif key in ("deletedFile", "deletedFolder"):
                deletes.append(value["path"])
            else:
                return _error(400, f"fake hub: unsupported commit operation {key}")
        parent = header.get("parentCommit")
        if parent and parent != repo.sha:
            return _error(412, "A commit has happened since. Please refresh and try again.")
        for path in deletes:
            for name in [
                p for p in repo.files if p == path or p.startswith(path.rstrip("/") + "/")
            ]:
                del repo.files[name]
                repo.lfs_paths.discard(name)
        for path, data in adds.items():
            repo.files[path] = data
            if path in lfs:
                repo.lfs_paths.add(path)
            else:
                repo.lfs_paths.discard(path)
        oid = hashlib.sha1(
            f"{repo.sha}:{len(repo.commits)}:{header.get('summary')}".encode()
        ).hexdigest()
        repo.commits.append(
            {
                "oid": oid,
                "summary": header.get("summary"),
                "description": header.get("description"),
                "added": sorted(adds),
                "deleted": deletes,
            }
        )
        prefix = _PREFIX[repo.repo_type]
        return _json(
            200,
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.base_url}/{prefix}{repo.repo_id}/commit/{oid}",
            },
        )

    def _entry(self, repo: HubRepo, path: str) -> dict | None:
        if path in repo.files:
            data = repo.files[path]
            entry = {"type": "file", "path": path, "size": len(data), "oid": _git_blob_sha1(data)}
            if path in repo.lfs_paths:
                entry["lfs"] = {
                    "oid": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": 134,
                }
            return entry
        if path == "" or any(p.startswith(path + "/") for p in repo.files):
            return {"type": "directory", "path": path, "size": 0, "oid": "0" * 40}
        return None

    def _tree(self, repo: HubRepo, path: str, query: dict) -> _Reply:
        if path and self._entry(repo, path) is None:
            return _error(404, f"Entry not found: {path}", "EntryNotFound")
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        base = path + "/" if path else ""
        seen: dict[str, dict] = {}
        for name in sorted(repo.files):
            if not name.startswith(base):
                continue
            rest = name[len(base) :]
            parts = rest.split("/")
            if recursive:
                for i in range(1, len(parts)):
                    sub = base + "/".join(parts[:i])
                    seen.setdefault(sub, self._entry(repo, sub))
                seen[name] = self._entry(repo, name)
            else:
                child = base + parts[0]
                seen.setdefault(child, self._entry(repo, child))
        return _json(200, list(seen.values()))

    def _paths_info(self, repo: HubRepo, raw: bytes, headers: dict[str, str]) -> _Reply:
        if headers.get("content-type", "").startswith("application/json"):
            paths = json.loads(raw or b"{}").get("paths", [])
        else:
            paths = parse_qs(raw.decode()).get("paths", [])
        entries = [e for p in paths if (e := self._entry(repo, p.strip("/"))) is not None]
        return _json(200, entries)

    def _lfs_batch(self, payload: dict) -> _Reply:
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], obj["size"]
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{self.base_url}/__lfs/{oid}"}}
            objects.append(entry)
        return _json(200, {"transfer": "basic", "objects": objects}, **{})

    def _lfs_put(self, oid: str, raw: bytes) -> _Reply:
        if hashlib.sha256(raw).hexdigest() != oid:
            return _error(400, "LFS object does not match its oid")
        with self._lock:
            self.lfs_objects[oid] = raw
        return _Reply(200, b"")


def _make_handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not length and self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raw = self._read_chunked()
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = hub.handle(self.command, self.path, headers, raw)
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        def _read_chunked(self) -> bytes:
            out = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet: requests are in hub.requests

    return Handler
