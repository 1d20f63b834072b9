"""A real OAuth2 token endpoint (and device authorization endpoint) on a loopback port, for tests
of the client's sign-in: it answers what the test scripts and records what it was sent.

    with TokenServer() as server:
        server.answers.append((200, {"access_token": "t1", "expires_in": 3600}))
        ... server.url("/token") ...
        server.requests[0].form["grant_type"]
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Seen:
    path: str
    form: dict[str, str]
    headers: dict[str, str]
    at: float


class TokenServer:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay  # seconds each answer waits: keeps concurrent callers overlapping
        self.requests: list[Seen] = []
        # Scripted answers by path, consumed in order; the last one repeats. A body that is a
        # str or bytes goes out as text, anything else as JSON.
        self.answers: dict[str, list[tuple[int, Any]]] = {}
        self.issued = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                with server._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    server.requests.append(Seen(self.path, form, headers, time.monotonic()))
                    script = server.answers.get(self.path) or [(404, {"error": "not_found"})]
                    status, body = script.pop(0) if len(script) > 1 else script[0]
                    if callable(body):
                        server.issued += 1
                        body = body(server.issued)
                if server.delay:
                    time.sleep(server.delay)
                data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else None
                kind = "text/html" if data is not None else "application/json"
                if data is None:
                    data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def issue(expires_in: float | None = 3600, prefix: str = "tok") -> Any:
    """An answer body that makes a new token each time: ``tok-1``, ``tok-2``, ..."""

    def body(n: int) -> dict[str, Any]:
        out: dict[str, Any] = {"access_token": f"{prefix}-{n}", "token_type": "Bearer"}
        if expires_in is not None:
            out["expires_in"] = expires_in
        return out

    return body
