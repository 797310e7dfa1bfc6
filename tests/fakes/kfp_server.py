"""A loopback server for the Kubeflow Pipelines v2beta1 REST endpoints that `kfp.Client` calls
to submit a run: health, experiments (look up, create) and runs (create, get). It keeps what it
receives so a test can check the submitted pipeline spec and parameters."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class KfpServer:
    def __init__(self, token: str | None = None):
        self.token = token
        self.requests: list[dict] = []
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> KfpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _route(self, method: str, url: str, headers: dict, body) -> tuple[int, dict]:
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "unauthenticated", "code": 16}
        path, query = urlparse(url).path, parse_qs(urlparse(url).query)
        if path == "/apis/v2beta1/healthz":
            return 200, {"multi_user": False}
        if path == "/apis/v2beta1/experiments" and method == "GET":
            wanted = json.dumps(query.get("filter", [""])[0])
            found = [e for e in self.experiments.values() if e["display_name"] in wanted]
            return 200, {"experiments": found, "total_size": len(found)}
        if path == "/apis/v2beta1/experiments" and method == "POST":
            exp_id = f"exp-{len(self.experiments) + 1}"
            experiment = {**body, "experiment_id": exp_id, "storage_state": "AVAILABLE"}
            self.experiments[exp_id] = experiment
            return 200, experiment
        if path == "/apis/v2beta1/runs" and method == "POST":
            run_id = f"run-{len(self.runs) + 1}"
            run = {**body, "run_id": run_id, "state": "PENDING"}
            self.runs[run_id] = run
            return 200, run
        if path.startswith("/apis/v2beta1/runs/") and method == "GET":
            run = self.runs.get(path.rsplit("/", 1)[1])
            return (200, run) if run else (404, {"error": "not found", "code": 5})
        return 404, {"error": f"no route {method} {path}", "code": 5}

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _do(self, method):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                with owner._lock:
                    owner.requests.append(
                        {"method": method, "path": self.path, "headers": headers, "json": body}
                    )
                    status, payload = owner._route(method, self.path, headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._do("GET")

            def do_POST(self):
                self._do("POST")

        return Handler
