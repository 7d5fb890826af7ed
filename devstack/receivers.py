"""A real HTTP receiver on 127.0.0.1 (ephemeral port, own thread) for webhook tests.

Records every request (path, headers, exact body bytes); answers from a per-path script of replies,
then a default. A reply can hold its answer until the test releases it (timeouts without sleeping).
"""

import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hold: threading.Event | None = None


class RecordingHandler(BaseHTTPRequestHandler):
    """What every test receiver's handler needs: keep-alive (HTTP/1.1), the request read whole, and no
    request log on stderr."""

    protocol_version = "HTTP/1.1"

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def lowercase_headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self.defaults: dict[str, Reply] = {}
        self.lock = threading.Lock()
        self.released = threading.Event()
        receiver = self

        class Handler(RecordingHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                with receiver.lock:
                    receiver.requests.append(Received(self.path, self.lowercase_headers(), body))
                    script = receiver.scripts[self.path]
                    reply = script.popleft() if script else receiver.defaults.get(self.path, Reply())
                if reply.hold is not None:
                    reply.hold.wait(timeout=10)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.scripts[path].extend(replies)

    def default(self, path: str, reply: Reply) -> None:
        self.defaults[path] = reply

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
