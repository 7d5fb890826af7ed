"""Bad input: schemathesis against the OpenAPI document (every documented operation, authenticated, a
bounded number of examples): no 5xx, every response conforms. Plus a corpus of malformed envelopes
(wrong types, huge strings, deep nesting, invalid UTF-8, a 10 MB body): always a 4xx, nothing stored.

Runs in-process (WSGI) so it works on SQLite too. Tasks are not run eagerly here: they are published to
a private Redis nobody consumes, so generated events never reach a handler (which could call out).
"""

import json
import tempfile
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.processes import free_port
from devstack.pytest_plugin import start_embedded_redis, use_broker
from tests.faults.support import API_KEY, DrillSummary, provisioning_envelope, report

pytestmark = pytest.mark.faults

MAX_EXAMPLES = 25
INTAKE_PATHS = ("/api/events/", "/orchestrator/events/{eventType}")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def quiet_broker() -> Iterator[str]:
    """Publish tasks to a private Redis that no worker reads (restored afterwards)."""
    directory = tempfile.mkdtemp(prefix="orchestrator-badinput-")
    port = free_port()
    process = start_embedded_redis(port, directory)
    try:
        with use_broker(f"redis://127.0.0.1:{port}/0") as url:
            yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def auth_headers(db) -> dict[str, str]:
    """A staff user's DRF token plus the intake's API key: every operation is called authenticated."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(
        username=f"drill-{uuid.uuid4().hex[:8]}", password="x", is_staff=True, is_superuser=True
    )
    token = Token.objects.create(user=user)
    return {"Authorization": f"Token {token.key}", "x-api-key": API_KEY}


@pytest.fixture
def api_schema(db, quiet_broker):
    """The schema, called through the real WSGI application in-process. Like Django's test client, keep
    requests from closing the test's database connection (``close_old_connections``)."""
    from django.core import signals
    from django.db import close_old_connections

    from orchestrator.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_every_documented_operation_answers_without_5xx_and_as_documented(request, api_schema, auth_headers, aws):
    """Each operation runs as its own Hypothesis test (schemathesis' lazy pytest integration does not work
    with pytest 9, so the operations are driven here); every failure is collected, then reported at once."""
    from events.models import ReceivedEvent

    failures: dict[str, str] = {}
    operations = 0
    calls = 0
    accepted_ids: set[str] = set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:
            nonlocal calls
            calls += 1
            response = case.call_and_validate(headers=auth_headers, checks=CHECKS)
            if case.method.upper() == "POST" and response.status_code == 202 and case.path in INTAKE_PATHS:
                accepted_ids.add(response.json()["id"])

        try:
            run()
        except (Exception, BaseExceptionGroup) as error:  # one operation's failure must not hide another's
            failures[operation.label] = f"{error.__class__.__name__}: {str(error)[:2000]}"

    stored = ReceivedEvent.objects.filter(event_id__in=accepted_ids).count()
    summary = DrillSummary(
        "schemathesis", sent=calls, accepted=len(accepted_ids), processed=0, lost=len(accepted_ids) - stored
    )
    summary.notes.append(
        f"requests to {operations} operations, up to {MAX_EXAMPLES} examples each, {len(failures)} failing; "
        "accepted events stored and queued (no worker in this drill)"
    )
    report(request, summary)
    assert operations > 0
    assert summary.lost == 0
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


# --- Malformed envelopes --------------------------------------------------------------------------


def _valid() -> dict:
    return provisioning_envelope()


def _with(**changes: object) -> bytes:
    envelope = _valid()
    envelope.update({key.replace("_", "-"): value for key, value in changes.items()})
    return json.dumps(envelope).encode()


def deep_detail_body() -> bytes:
    """An otherwise valid envelope whose detail nests 5 000 objects deep (written by hand: ``json.dumps``
    itself would hit Python's recursion limit)."""
    envelope = _valid()
    envelope["detail"]["appConfig"] = "__DEEP__"
    text = json.dumps(envelope)
    return text.replace('"__DEEP__"', '{"a":' * 5_000 + '"leaf"' + "}" * 5_000).encode()


def corpus() -> list[tuple[str, bytes, str]]:
    """(name, body, content type)."""
    valid = _valid()
    items = [
        ("id is a number", _with(id=12345), "application/json"),
        ("id is empty", _with(id=""), "application/json"),
        ("id is null", _with(id=None), "application/json"),
        ("detail-type is a list", _with(detail_type=["TENANT_PROVISIONING"]), "application/json"),
        ("detail-type unknown", _with(detail_type="TENANT_EXPLODED"), "application/json"),
        ("account has 11 digits", _with(account="12345678901"), "application/json"),
        ("account is a number", _with(account=123456789012), "application/json"),
        ("time is not ISO-8601", _with(time="yesterday"), "application/json"),
        ("resources is a string", _with(resources="arn:aws:x"), "application/json"),
        ("resources holds objects", _with(resources=[{"a": 1}]), "application/json"),
        ("detail is a string", _with(detail="{}"), "application/json"),
        ("detail is a list", _with(detail=[1, 2]), "application/json"),
        ("detail.tenant missing", _with(detail={"planConfig": {"tier": "BASIC"}}), "application/json"),
        ("envelope is a list", json.dumps([valid]).encode(), "application/json"),
        ("envelope is a string", json.dumps("event").encode(), "application/json"),
        ("envelope is null", b"null", "application/json"),
        ("empty body", b"", "application/json"),
        ("truncated JSON", json.dumps(valid).encode()[:-7], "application/json"),
        ("NaN literal", json.dumps(valid).encode().replace(b'"version": "0"', b'"version": NaN'), "application/json"),
        ("huge id (1 MB)", _with(id="x" * 1_000_000), "application/json"),
        ("huge source (200 KB)", _with(source="s" * 200_000), "application/json"),
        ("NUL in a string", _with(source="saas\u0000evil"), "application/json"),
        (
            "lone surrogate",
            json.dumps(valid).encode().replace(b'"saas.fault-drills"', b'"\\ud800"'),
            "application/json",
        ),
        ("invalid UTF-8", json.dumps(valid).encode().replace(b"Drill", b"Dr\xff\xfell"), "application/json"),
        (
            "Latin-1 body",
            json.dumps(valid, ensure_ascii=False).replace("Drill", "Drïll").encode("latin-1"),
            "application/json",
        ),
        ("deep nesting (200 000 levels)", b"[" * 200_000 + b"]" * 200_000, "application/json"),
        ("deep nesting in detail (5 000)", deep_detail_body(), "application/json"),
        ("10 MB body", _with(detail={"blob": "b" * (10 * 1024 * 1024)}), "application/json"),
        ("form-encoded", b"id=1&detail-type=TENANT_PROVISIONING", "application/x-www-form-urlencoded"),
        ("text/plain JSON", json.dumps(valid).encode(), "text/plain"),
        ("no content type", json.dumps(valid).encode(), ""),
    ]
    return items


CORPUS = corpus()


@pytest.mark.parametrize(("name", "body", "content_type"), CORPUS, ids=[item[0] for item in CORPUS])
def test_malformed_envelopes_are_answered_with_a_4xx_and_nothing_is_stored(client, db, name, body, content_type):
    from events.models import ReceivedEvent

    response = client.generic(
        "POST",
        "/api/events/",
        data=body,
        content_type=content_type,
        HTTP_X_API_KEY=API_KEY,
    )

    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert response.json()["error"]["code"]
    assert ReceivedEvent.objects.count() == 0


def test_malformed_corpus_summary(request, client, db):
    """The corpus above once more, counted into the drill's summary line."""
    from events.models import ReceivedEvent

    answers = []
    for _name, body, content_type in CORPUS:
        response = client.generic("POST", "/api/events/", data=body, content_type=content_type, HTTP_X_API_KEY=API_KEY)
        answers.append(response.status_code)
    accepted = sum(1 for status in answers if status < 300)
    summary = DrillSummary("malformed envelopes", sent=len(CORPUS), accepted=accepted, processed=0, lost=0)
    summary.notes.append(f"answers {sorted(set(answers))}; rows stored {ReceivedEvent.objects.count()}")
    report(request, summary)
    assert all(400 <= status < 500 for status in answers), dict(zip([c[0] for c in CORPUS], answers, strict=True))


def test_the_real_server_refuses_a_10_mb_body_and_invalid_utf8_with_a_4xx(request, make_stack):
    """The same through gunicorn (its own body handling in front of Django)."""
    import requests

    from events.models import ReceivedEvent

    web = make_stack().start_web(workers=1, threads=2)
    bodies = {
        "10 MB body": _with(detail={"blob": "b" * (10 * 1024 * 1024)}),
        "invalid UTF-8": json.dumps(_valid()).encode().replace(b"Drill", b"Dr\xff\xfell"),
        "deep nesting": b"[" * 200_000 + b"]" * 200_000,
    }
    answers = {}
    for name, body in bodies.items():
        response = requests.post(
            f"{web.url}/api/events/",
            data=body,
            headers={"Content-Type": "application/json", "x-api-key": API_KEY},
            timeout=60,
        )
        answers[name] = response.status_code
        assert response.json()["error"]["code"]
    assert all(400 <= status < 500 for status in answers.values()), answers
    assert ReceivedEvent.objects.count() == 0
    summary = DrillSummary("malformed envelopes via gunicorn", sent=len(bodies), accepted=0, processed=0, lost=0)
    summary.notes.append(str(answers))
    report(request, summary)
