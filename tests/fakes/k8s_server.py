"""A loopback fake of the Kubernetes API, enough for a Kubeflow Trainer v2 TrainJob as
``dpo_titles.trainjob`` drives it through the ``kubernetes`` client (30.x).

Point a client here with ``server.api_client()`` (a ``kubernetes.client.ApiClient`` whose host is
this server). The server keeps TrainJobs in memory, plays each one's life (no status, then
``Complete`` or ``Failed`` after a number of reads), synthesizes node 0's pod with the labels
JobSet gives it, serves its log, and records every request (method, path, query, JSON body), so
tests check the bodies that arrived and that nothing else was called.

Served:

* ``POST /apis/trainer.kubeflow.org/v1alpha1/namespaces/{ns}/trainjobs``: 201 with the object;
  409 ``AlreadyExists`` (a ``Status`` object, as the API server writes it) for a taken name.
* ``GET  .../trainjobs/{name}``: the object, with ``status.conditions`` as the script says.
* ``GET  /api/v1/namespaces/{ns}/pods?labelSelector=k=v,...``: a ``PodList`` of the pods whose
  labels match every pair.
* ``GET  /api/v1/namespaces/{ns}/pods/{name}/log?container=node&follow=true``: the log text.

Anything else is a 404 ``NotFound`` and is listed in ``unhandled``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeKubernetes", "JobScript"]

_TRAINJOBS = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/"
_CORE = "/api/v1/namespaces/"


@dataclass
class JobScript:
    """How a TrainJob's life goes: `outcome` ("Complete", "Failed" or None: never ends) once it
    has been read `reads_until_done` times; `on_done(trainjob)` runs then (a test writes the
    model onto the volume there, as node 0 would); `log` is node 0's log."""

    outcome: str | None = "Complete"
    reads_until_done: int = 2
    reason: str = ""
    message: str = ""
    log: str = "step 1 loss 0.69\nstep 2 loss 0.41\n"
    on_done: Any = None


@dataclass
class _Job:
    body: dict
    script: JobScript
    reads: int = 0
    done: bool = False
    pods: list = field(default_factory=list)


class FakeKubernetes:
    """The fake API server; `with FakeKubernetes() as k8s:` starts and stops it."""

    def __init__(self, script: JobScript | None = None, namespace: str = "team-a"):
        self.script = script or JobScript()
        self.namespace = namespace
        self.jobs: dict[str, _Job] = {}
        self._requests: list[dict] = []
        self.unhandled: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeKubernetes:
        """Listen on 127.0.0.1 at a free port, in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: the tests read `requests`
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

            def do_DELETE(self):
                fake._handle(self, "DELETE")

            def do_PATCH(self):
                fake._handle(self, "PATCH")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeKubernetes:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT."""
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def api_client(self):
        """A kubernetes.client.ApiClient that talks to this server."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.base_url
        return client.ApiClient(config)

    @property
    def requests(self) -> list[dict]:
        """Every request so far: method, path, query (dict of lists), json (the body or None)."""
        with self._lock:
            return list(self._requests)

    def add_trainjob(self, body: dict, script: JobScript | None = None) -> None:
        """A TrainJob that exists before the test's code runs (an earlier attempt's)."""
        name = body["metadata"]["name"]
        with self._lock:
            self.jobs[name] = self._new_job(body, script or self.script)

    # -- routing -----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        path, query = unquote(url.path), parse_qs(url.query)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self._lock:
            self._requests.append({"method": method, "path": path, "query": query, "json": body})
        status, answer, text = self._route(method, path, query, body)
        if text is not None:
            data, kind = text.encode("utf-8"), "text/plain"
        else:
            data, kind = json.dumps(answer).encode("utf-8"), "application/json"
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, method, path, query, body):
        ns = self.namespace
        jobs = f"{_TRAINJOBS}{ns}/trainjobs"
        if method == "POST" and path == jobs:
            return self._create(body)
        if (
            method == "GET"
            and path.startswith(jobs + "/")
            and path.count("/") == jobs.count("/") + 1
        ):
            return self._get(path.rsplit("/", 1)[1])
        pods = f"{_CORE}{ns}/pods"
        if method == "GET" and path == pods:
            return self._list_pods(query.get("labelSelector", [""])[0])
        if method == "GET" and path.startswith(pods + "/") and path.endswith("/log"):
            return self._log(path[len(pods) + 1 : -len("/log")])
        self.unhandled.append(f"{method} {path}")
        return 404, _status(404, "NotFound", f"{path} not found"), None

    # -- TrainJobs ---------------------------------------------------------------------------

    def _new_job(self, body: dict, script: JobScript) -> _Job:
        body = json.loads(json.dumps(body))
        body["metadata"].setdefault("namespace", self.namespace)
        body["metadata"].setdefault("uid", f"uid-{body['metadata']['name']}")
        return _Job(body=body, script=script)

    def _create(self, body):
        name = body["metadata"]["name"]
        with self._lock:
            if name in self.jobs:
                message = f'trainjobs.trainer.kubeflow.org "{name}" already exists'
                return 409, _status(409, "AlreadyExists", message, name), None
            self.jobs[name] = self._new_job(body, self.script)
            return 201, self.jobs[name].body, None

    def _get(self, name):
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                message = f'trainjobs.trainer.kubeflow.org "{name}" not found'
                return 404, _status(404, "NotFound", message, name), None
            job.reads += 1
            script = job.script
            finishing = (
                not job.done and script.outcome is not None and job.reads > script.reads_until_done
            )
            if finishing:
                job.done = True
        if finishing and script.on_done is not None:
            script.on_done(job.body)
        with self._lock:
            conditions = []
            if job.done:
                conditions.append(
                    {
                        "type": script.outcome,
                        "status": "True",
                        "reason": script.reason or script.outcome,
                        "message": script.message,
                    }
                )
            answer = dict(job.body, status={"conditions": conditions})
            return 200, answer, None

    # -- pods --------------------------------------------------------------------------------

    def _pods(self) -> list[dict]:
        pods = []
        for name, job in self.jobs.items():
            phase = "Succeeded" if job.done and job.script.outcome == "Complete" else "Running"
            pods.append(
                {
                    "metadata": {
                        "name": f"{name}-node-0-0-abcde",
                        "namespace": self.namespace,
                        "creationTimestamp": "2026-01-01T00:00:00Z",
                        "labels": {
                            "jobset.sigs.k8s.io/jobset-name": name,
                            "jobset.sigs.k8s.io/replicatedjob-name": "node",
                            "batch.kubernetes.io/job-completion-index": "0",
                        },
                    },
                    "spec": {"containers": [{"name": "node", "image": "x"}]},
                    "status": {"phase": phase},
                }
            )
        return pods

    def _list_pods(self, selector: str):
        wanted = dict(pair.split("=", 1) for pair in selector.split(",") if pair)
        with self._lock:
            items = [
                p
                for p in self._pods()
                if all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())
            ]
        return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}, None

    def _log(self, pod: str):
        with self._lock:
            for name, job in self.jobs.items():
                if pod.startswith(name + "-node-0-0"):
                    return 200, None, job.script.log
        return 404, _status(404, "NotFound", f'pods "{pod}" not found', pod), None


def _status(code: int, reason: str, message: str, name: str = "") -> dict:
    """A metav1.Status, as the API server answers an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "group": "trainer.kubeflow.org", "kind": "trainjobs"},
        "code": code,
    }
