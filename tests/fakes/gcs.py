"""Cloud Storage for tests: a real GCS JSON-API emulator on loopback, and a server that refuses.

`GcsEmulator` runs `gcp-storage-emulator` (a pure-Python implementation of the Cloud Storage
JSON API: buckets, objects, multipart and resumable uploads, ranged downloads, listing with a
prefix, 404s for missing buckets and objects) in a thread of the test process, in memory, on
`127.0.0.1` and a free port. `env` holds `STORAGE_EMULATOR_HOST`, which makes
`google.cloud.storage.Client()` talk to it with anonymous credentials.

The emulator has no IAM: it never answers 403. `DenyingGcs` is a loopback HTTP server that
answers every request with the 403 body Cloud Storage sends when the caller lacks a permission,
so the client raises its real `google.api_core.exceptions.Forbidden` from a real HTTP exchange.
The emulator also refuses object names with `..` segments, which Cloud Storage allows;
`AnyNameGcs` serves such names, for the tests that check they never leave their folder.

    with GcsEmulator(buckets=["data"]) as gcs:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.host)
        ...
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["AnyNameGcs", "DenyingGcs", "GcsEmulator"]


class GcsEmulator:
    """`gcp-storage-emulator` in memory on loopback; `buckets` are created at start."""

    def __init__(self, buckets: Iterable[str] = ()) -> None:
        self.buckets = list(buckets)
        self._server = None
        self._port: int | None = None

    def start(self) -> GcsEmulator:
        if self._server is not None:
            return self
        from gcp_storage_emulator.server import create_server

        # The emulator logs every 404 at ERROR; tests provoke those on purpose.
        logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)
        server = create_server("127.0.0.1", 0, in_memory=True)
        # Its API thread is not a daemon; make it one so a failed test cannot hang the run.
        server._api.daemon = True
        server.start()
        self._server = server
        # Port 0 asks the OS for a free port; the emulator keeps the bound socket here.
        self._port = server._api._httpd.server_address[1]
        for name in self.buckets:
            self.create_bucket(name)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> GcsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        if self._port is None:
            raise RuntimeError("emulator not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.host}

    def wipe(self) -> None:
        """Drop every bucket and object."""
        self._server.wipe()

    def create_bucket(self, name: str) -> None:
        from gcp_storage_emulator.handlers import buckets as bucket_handlers

        bucket_handlers.create_bucket(name, self._server._storage)


class _LoopbackGcs:
    """A loopback HTTP server speaking as much of the Cloud Storage JSON API as a subclass's
    `_respond(method, path)` answers (status, content type, body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                fake.requests.append({"method": self.command, "path": self.path})
                status, content_type, body = fake._respond(self.command, self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.host}


class DenyingGcs(_LoopbackGcs):
    """A loopback server that answers every Cloud Storage request with 403 Forbidden."""

    def __init__(self, principal: str = "pipeline@example-project.iam.gserviceaccount.com"):
        super().__init__()
        self.principal = principal

    def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        permission = "storage.objects.get" if method == "GET" else "storage.objects.create"
        if "/o?" in path or path.endswith("/o"):
            permission = "storage.objects.list" if method == "GET" else permission
        message = (
            f"{self.principal} does not have {permission} access to the Google Cloud Storage "
            f"object. Permission '{permission}' denied on resource (or it may not exist)."
        )
        body = {
            "error": {
                "code": 403,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": "forbidden"}],
            }
        }
        return 403, "application/json; charset=UTF-8", json.dumps(body).encode()


class AnyNameGcs(_LoopbackGcs):
    """A read-only bucket that serves objects under any name, `..` segments included, as Cloud
    Storage itself allows (the emulator refuses such names): object metadata, listing by prefix
    and media downloads of `objects` ({name: bytes}) in bucket `bucket`."""

    def __init__(self, bucket: str, objects: dict[str, bytes]):
        super().__init__()
        self.bucket = bucket
        self.objects = dict(objects)

    @property
    def downloads(self) -> list[str]:
        """The object names whose bytes were asked for."""
        return [
            unquote(r["path"].split("/o/", 1)[1].split("?", 1)[0])
            for r in self.requests
            if "alt=media" in r["path"]
        ]

    def _resource(self, name: str) -> dict:
        return {
            "kind": "storage#object",
            "bucket": self.bucket,
            "name": name,
            "size": str(len(self.objects[name])),
            "generation": "1",
            "contentType": "application/octet-stream",
        }

    def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        url = urlsplit(path)
        query = parse_qs(url.query)
        json_type = "application/json; charset=UTF-8"
        prefix = f"/storage/v1/b/{self.bucket}/o"
        route = url.path.removeprefix("/download")
        if method != "GET" or not route.startswith(prefix):
            return 404, json_type, b'{"error": {"code": 404, "message": "Not Found"}}'
        if route == prefix:  # listing
            wanted = query.get("prefix", [""])[0]
            items = [self._resource(n) for n in sorted(self.objects) if n.startswith(wanted)]
            return 200, json_type, json.dumps({"kind": "storage#objects", "items": items}).encode()
        name = unquote(route[len(prefix) + 1 :])
        if name not in self.objects:
            return 404, json_type, b'{"error": {"code": 404, "message": "No such object"}}'
        if query.get("alt") == ["media"]:
            return 200, "application/octet-stream", self.objects[name]
        return 200, json_type, json.dumps(self._resource(name)).encode()
