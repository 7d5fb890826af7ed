import json
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest

from events import registry
from events.catalogue import DetailType
from events.samples import sample_envelope

API_KEY = "test-intake-key"


@dataclass
class Recorder:
    """A real handler for tests: records each call; behaviour per detail-type is configurable."""

    calls: list[tuple[str, int, dict]] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    on_call: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler_for(self, detail_type: str):
        def handle(event, detail):
            with self.lock:
                self.calls.append((detail_type, event.pk, detail))
            if self.on_call is not None:
                self.on_call(event, detail)
            error = self.errors.get(detail_type)
            if error is not None:
                raise error
            return self.results.get(detail_type, {"handled": detail_type})

        return handle

    def count(self, event_pk: int | None = None) -> int:
        return sum(1 for _, pk, _ in self.calls if event_pk is None or pk == event_pk)


@pytest.fixture
def recorder():
    """Every catalogue type handled by a recording handler for the test; the registry is restored after."""
    rec = Recorder()
    with ExitStack() as stack:
        for detail_type in DetailType.ALL:
            stack.enter_context(registry.override(detail_type, handler=rec.handler_for(detail_type)))
        yield rec


@pytest.fixture
def sample():
    return sample_envelope


def post_event(client, body, *, url="/api/events/", key=API_KEY, content_type="application/json", **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    if key is not None:
        headers["HTTP_X_API_KEY"] = key
    if not data:  # the test client drops the content type of an empty body; a real sender does not
        headers["CONTENT_TYPE"] = content_type
    return client.post(url, data=data, content_type=content_type, **headers)


@pytest.fixture
def intake(client):
    def send(body, **kwargs):
        return post_event(client, body, **kwargs)

    return send
