"""Shared pieces of the fault drills: events to send, posting them, waiting, and the summary line."""

import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import requests

from devstack import envelopes
from devstack.receivers import RecordingHandler
from tests.conftest import DRILL_PROPERTY

API_KEY = "test-intake-key"
TIER = "BASIC"
PROVISION_PROJECT = "orchestrator-basic-provision"


def provisioning_envelope(
    *, event_id: str | None = None, tenant_id: str | None = None, builder: str = "CODE_BUILD"
) -> dict[str, Any]:
    """A valid TENANT_PROVISIONING envelope for a new tenant (unique id and key) on tier BASIC."""
    tenant_id = tenant_id or str(uuid.uuid4())
    key = "t" + tenant_id.replace("-", "")[:20]
    return envelopes.provisioning_envelope(
        tenant_id=tenant_id,
        key=key,
        name=f"Drill {key}",
        source="saas.fault-drills",
        secret="drill-hmac-secret",
        context=str(uuid.uuid4()),
        builder=builder,
        event_id=event_id,
    )


def post_event(base_url: str, envelope: dict[str, Any], *, timeout: float = 15.0) -> int:
    """POST one envelope to the intake; the status code, or 0 when no HTTP answer came back."""
    try:
        response = requests.post(
            f"{base_url}/api/events/",
            data=json.dumps(envelope),
            headers={"Content-Type": "application/json", "x-api-key": API_KEY},
            timeout=timeout,
        )
    except requests.RequestException:
        return 0
    return response.status_code


def post_concurrently(base_url: str, envelopes: list[dict[str, Any]], *, threads: int = 50) -> list[int]:
    """POST every envelope at once from ``threads`` threads released together by a barrier."""
    barrier = threading.Barrier(min(threads, len(envelopes)))
    session_local = threading.local()

    def send(envelope: dict[str, Any]) -> int:
        session = getattr(session_local, "session", None)
        if session is None:
            session = session_local.session = requests.Session()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=30)
        try:
            response = session.post(
                f"{base_url}/api/events/",
                data=json.dumps(envelope),
                headers={"Content-Type": "application/json", "x-api-key": API_KEY},
                timeout=30,
            )
        except requests.RequestException:
            return 0
        return response.status_code

    with ThreadPoolExecutor(max_workers=min(threads, len(envelopes))) as pool:
        return list(pool.map(send, envelopes))


def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 0.25,
    what: "str | Callable[[], str]" = "condition",
) -> Any:
    """Poll until ``predicate()`` is truthy; ``what`` (or what it returns) names the condition on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


@dataclass
class DrillSummary:
    """``events sent / accepted / processed / lost`` for one drill; ``lost`` must be 0."""

    name: str
    sent: int = 0
    accepted: int = 0
    processed: int = 0
    lost: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        extra = f"  ({'; '.join(self.notes)})" if self.notes else ""
        return (
            f"drill {self.name}: events sent {self.sent} / accepted {self.accepted} / "
            f"processed {self.processed} / lost {self.lost}{extra}"
        )


def report(request: Any, summary: DrillSummary) -> None:
    """Print the summary line and attach it to the report (listed in the "fault drills" section)."""
    line = summary.line()
    print(line)
    request.node.user_properties.append((DRILL_PROPERTY, line))


def event_outcomes(event_ids: Iterable[str]) -> dict[str, str]:
    """event id -> status for the ids given (missing ids are absent)."""
    from events.models import ReceivedEvent

    ids = list(event_ids)
    return dict(ReceivedEvent.objects.filter(event_id__in=ids).values_list("event_id", "status"))


def count_statuses(event_ids: Iterable[str]) -> Counter:
    return Counter(event_outcomes(event_ids).values())


# --- A local HTTP receiver ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """A threaded HTTP server on 127.0.0.1 recording every POST; ``hold()`` keeps answers back."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.released.set()
        self.waiting = 0
        receiver = self

        class Handler(RecordingHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                with receiver.lock:
                    receiver.requests.append(Received(self.path, self.lowercase_headers(), body, time.monotonic()))
                    receiver.waiting += 1
                receiver.released.wait(timeout=120)
                with receiver.lock:
                    receiver.waiting -= 1
                payload = b'{"ok": true}'
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the caller is gone (a killed worker)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
