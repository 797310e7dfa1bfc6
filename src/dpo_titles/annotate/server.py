"""The local web server of `dpo-titles annotate`, and the labelling session it serves.

Standard library only (`http.server.ThreadingHTTPServer`): the page is one HTML file and four
small JSON calls, and the tool's images need no new dependency for it. The server listens on
127.0.0.1 alone and trusts no request by where it comes from:

- a random token (`secrets.token_urlsafe(32)`) is in the URL printed for the person, and every
  request must carry it: the page in its query (`?token=`), the API calls in the
  `X-Annotate-Token` header (which a cross-site form or image cannot send, and which makes a
  cross-origin `fetch` ask first, a question this server never answers). A missing or wrong
  token gets 403 and no data; tokens are compared with `hmac.compare_digest`.
- the Host header must be 127.0.0.1:PORT or localhost:PORT, so a DNS-rebinding page that made
  its own name point here is refused; an Origin, where sent, must be this server's.
- POST bodies are JSON, at most `MAX_BODY` bytes.
- every response has a Content-Security-Policy (`default-src 'none'`, the page's one script and
  one style allowed by a fresh nonce, `connect-src 'self'`), `X-Content-Type-Options: nosniff`,
  `Referrer-Policy: no-referrer` (the token stays out of any Referer) and `Cache-Control:
  no-store`. The page inserts every title and idea with `textContent`, never as HTML.

Request lines are not logged: they hold the token.
"""

from __future__ import annotations

import hmac
import json
import secrets
import socketserver
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from ..errors import UserError
from .answers import CHOICES, Answers
from .pairs import Pair

TOKEN_HEADER = "X-Annotate-Token"
MAX_BODY = 4096
HOST = "127.0.0.1"
# Long enough for the page to show the summary after the last answer, short enough that the
# command ends by itself.
LINGER_S = 3.0


def page_template() -> str:
    """The page's HTML, with `{{NONCE}}` and `{{TOKEN}}` still to fill in."""
    return resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


class Session:
    """A labelling session: the pairs still to ask (in order), the answers file, and the
    server that shows them. Every change happens under one lock: the server is threaded."""

    def __init__(self, pairs: list[Pair], answers: Answers, labeller: str):
        self.answers, self.labeller = answers, labeller
        self.token = secrets.token_urlsafe(32)
        selected = {p.id: p for p in pairs}  # a pair listed twice is asked once
        self._by_id = selected
        self.total = len(selected)
        self.queue = [p for p in selected.values() if p.id not in answers.ids]
        self._cond = threading.Condition(threading.RLock())
        self._version = 0
        self._closed = False
        self._started = time.monotonic()
        self._finished_at: float | None = None if self.queue else self._started
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._template = page_template()
        self.port = 0

    @property
    def url(self) -> str:
        """The address to open, token included."""
        return f"http://{HOST}:{self.port}/?token={self.token}"

    # --- What the page asks ------------------------------------------------------------------

    def state(self, message: str = "") -> dict:
        """What the page shows now: the next pair (or none), progress, and the counts."""
        with self._cond:
            end = self._finished_at if self._finished_at is not None else time.monotonic()
            seconds = max(0.0, end - self._started)
            answered = len(self.answers.session)
            return {
                "pair": self.queue[0].public() if self.queue and not self._closed else None,
                "done": self.total - len(self.queue),
                "total": self.total,
                "remaining": len(self.queue),
                "finished": not self.queue,
                "session": {
                    "answered": answered,
                    "seconds": round(seconds, 1),
                    "per_minute": round(answered * 60 / seconds, 1) if seconds > 0 else 0.0,
                },
                "sides": self.answers.sides(),
                "can_undo": bool(self.answers.session),
                "stopped": self._closed,
                "message": message,
            }

    def answer(self, pair_id: str, choice: str) -> dict:
        """Record `choice` (left, right, tie) on a pair still to ask; returns the new state."""
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {', '.join(CHOICES)}")
        with self._cond:
            pair = self._pending(pair_id)
            if self._closed:
                return self.state("this session has stopped: nothing was saved")
            if pair is None:
                return self.state("that pair is answered already")
            self.answers.add(pair, choice, self.labeller)
            self.queue.remove(pair)
            self._changed()
            return self.state()

    def skip(self, pair_id: str) -> dict:
        """Send a pair to the end of this session's queue, unanswered."""
        with self._cond:
            pair = self._pending(pair_id)
            if pair is not None and not self._closed:
                self.queue.remove(pair)
                self.queue.append(pair)
                self._changed()
            return self.state()

    def undo(self) -> dict:
        """Take back this session's last answer; its pair is asked next."""
        with self._cond:
            if self._closed:
                return self.state("this session has stopped: nothing was changed")
            key = self.answers.undo()
            if key is None:
                return self.state("nothing to undo in this session")
            self.queue.insert(0, self._by_id[key])
            self._changed()
            return self.state()

    def _pending(self, pair_id: str) -> Pair | None:
        return next((p for p in self.queue if p.id == pair_id), None)

    def _changed(self) -> None:
        self._version += 1
        if self.queue:
            self._finished_at = None
        elif self._finished_at is None:
            self._finished_at = time.monotonic()
        self._cond.notify_all()

    # --- Who may ask -------------------------------------------------------------------------

    def host_ok(self, host: str | None) -> bool:
        """The Host header names this server by its loopback address or `localhost`."""
        return (host or "").strip().lower() in (f"{HOST}:{self.port}", f"localhost:{self.port}")

    def origin_ok(self, origin: str | None) -> bool:
        """No Origin (not a browser's cross-site call), or this server's own."""
        return origin is None or origin.lower() in (
            f"http://{HOST}:{self.port}",
            f"http://localhost:{self.port}",
        )

    def token_ok(self, given: str | None) -> bool:
        """The token given matches, compared in constant time."""
        if not given:
            return False
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    def page(self, nonce: str) -> bytes:
        """The page, with this response's nonce and the token its calls send."""
        html = self._template.replace("{{NONCE}}", nonce).replace("{{TOKEN}}", self.token)
        return html.encode("utf-8")

    # --- Running -----------------------------------------------------------------------------

    def serve(self, port: int = 0) -> None:
        """Listen on 127.0.0.1:`port` (0: any free port) and serve in a background thread."""
        try:
            server = _Server((HOST, port), _Handler)
        except OSError as exc:
            raise UserError(
                f"cannot listen on {HOST}:{port} ({exc.strerror or exc}): choose another "
                "--port, or 0 for any free one"
            ) from None
        server.session = self
        self._server, self.port = server, server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, name="annotate-server", daemon=True
        )
        self._thread.start()

    def wait(self, linger: float = LINGER_S) -> dict:
        """Block until every pair is answered and `linger` seconds have passed without a
        change (an undo in that time reopens the session); returns the summary."""
        with self._cond:
            while True:
                self._cond.wait_for(lambda: not self.queue or self._closed)
                if self._closed:
                    break
                if not self._cond.wait_for(self._changed_since(self._version), timeout=linger):
                    break
        return self.summary()

    def _changed_since(self, version: int):
        return lambda: self._version != version

    def close(self) -> None:
        """Stop serving; an answer being saved is saved first, and none is taken after."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def summary(self) -> dict:
        """The command's result: the file, how many answers it holds by verdict, and how many
        of the selected pairs are still to ask."""
        with self._cond:
            return {
                "out": str(self.answers.path),
                "answered": len(self.answers.rows),
                **self.answers.counts(),
                "this_session": len(self.answers.session),
                "remaining": len(self.queue),
            }

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start(pairs: list[Pair], answers: Answers, labeller: str, *, port: int = 0) -> Session:
    """A session on `pairs` saving to `answers`, served on 127.0.0.1:`port` in a thread."""
    session = Session(pairs, answers, labeller)
    session.serve(port)
    return session


class _Server(ThreadingHTTPServer):
    session: Session

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's full name, which can stall for seconds
        # on a machine without DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]


_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def page_csp(nonce: str) -> str:
    """The page's policy: its own nonce-tagged script and style, calls to itself, nothing else."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "dpo-titles-annotate"
    sys_version = ""
    timeout = 30  # a client that stops sending mid-request frees its thread
    _csp = _STRICT_CSP

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # the request line holds the token

    def version_string(self) -> str:
        return self.server_version

    def end_headers(self) -> None:
        for name, value in _COMMON_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Security-Policy", self._csp)
        super().end_headers()

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    # Any other method is checked like the rest (host, token) and then not found: a
    # cross-origin preflight (OPTIONS) gets no answer that would let the call through.
    def _other(self) -> None:
        self._handle(self.command)

    do_OPTIONS = do_PUT = do_DELETE = do_PATCH = _other

    def _handle(self, method: str) -> None:
        session = self.server.session
        url = urlsplit(self.path)
        api = url.path.startswith("/api/")
        if not session.host_ok(self.headers.get("Host")):
            return self._plain(HTTPStatus.FORBIDDEN, "forbidden")
        if api:
            given = self.headers.get(TOKEN_HEADER)
        else:
            values = parse_qs(url.query).get("token", [])
            given = values[0] if len(values) == 1 else None
        if not session.token_ok(given):
            return self._plain(HTTPStatus.FORBIDDEN, "forbidden")
        route = (method, url.path)
        if route == ("GET", "/"):
            return self._page(session)
        if route == ("GET", "/favicon.ico"):
            return self._plain(HTTPStatus.NO_CONTENT, "")
        if route == ("GET", "/api/state"):
            return self._json(HTTPStatus.OK, session.state())
        if method == "POST" and url.path in ("/api/answer", "/api/skip", "/api/undo"):
            if not session.origin_ok(self.headers.get("Origin")):
                return self._plain(HTTPStatus.FORBIDDEN, "forbidden")
            body = self._body()
            if body is None:
                return None
            return self._call(session, url.path, body)
        return self._plain(HTTPStatus.NOT_FOUND, "not found")

    def _call(self, session: Session, path: str, body: dict) -> None:
        pair = body.get("pair")
        if path != "/api/undo" and not isinstance(pair, str):
            return self._json(HTTPStatus.BAD_REQUEST, {"error": "pair must be a pair id"})
        try:
            if path == "/api/answer":
                choice = body.get("choice")
                if choice not in CHOICES:
                    return self._json(
                        HTTPStatus.BAD_REQUEST,
                        {"error": f"choice must be one of {', '.join(CHOICES)}"},
                    )
                state = session.answer(pair, choice)
            elif path == "/api/skip":
                state = session.skip(pair)
            else:
                state = session.undo()
        except UserError as exc:  # the file could not be saved: the page says so
            return self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})
        return self._json(HTTPStatus.OK, state)

    def _body(self) -> dict | None:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send application/json"})
            return None
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
            return None
        if not 0 <= length <= MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "send a JSON object"})
            return None
        return body

    def _page(self, session: Session) -> None:
        nonce = secrets.token_urlsafe(16)
        data = session.page(nonce)
        self.send_response(HTTPStatus.OK)
        self._csp = page_csp(nonce)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: HTTPStatus, data: dict) -> None:
        text = json.dumps(data, ensure_ascii=True)
        # Markup characters escaped too (they only occur inside strings): even a browser that
        # ignored the content type would find no tag in a response.
        for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(char, escaped)
        body = text.encode("ascii")
        self._send(status, "application/json; charset=utf-8", body)

    def _plain(self, status: HTTPStatus, text: str) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode("utf-8"))

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != HTTPStatus.NO_CONTENT:
            self.wfile.write(body)
