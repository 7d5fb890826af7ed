"""Intake authentication: API key header (several keys) or HTTP Basic; failures are 401 and store nothing."""

import base64

import pytest
from django.test import override_settings

from events.catalogue import DetailType
from events.models import ReceivedEvent

pytestmark = pytest.mark.django_db


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def body(sample):
    return sample(DetailType.TENANT_DEPROVISIONING)


def assert_unauthorized(response):
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Basic")
    assert set(response.json()["error"]) >= {"code", "message"}
    assert ReceivedEvent.objects.count() == 0


@pytest.mark.parametrize("url", ["/api/events/", "/orchestrator/events/TENANT_DEPROVISIONING"])
def test_no_credentials_is_401_and_nothing_is_stored(intake, body, recorder, url):
    assert_unauthorized(intake(body, key=None, url=url))
    assert recorder.count() == 0


@pytest.mark.parametrize("key", ["wrong", "", "test-intake-key ", "TEST-INTAKE-KEY", "test-intake-ke"])
def test_wrong_api_key_is_401(intake, body, recorder, key):
    assert_unauthorized(intake(body, key=key))


def test_invalid_body_without_credentials_is_401_not_400(intake, recorder):
    assert_unauthorized(intake(b"{garbage", key=None))


@pytest.mark.parametrize("key", ["test-intake-key", "test-intake-key-next"])
def test_every_configured_key_is_accepted_for_rotation(intake, body, recorder, key):
    assert intake(body, key=key).status_code == 202


@override_settings(INTAKE_API_KEY_HEADER="X-EventBridge-Key")
def test_the_header_name_is_configurable(intake, body, recorder):
    assert_unauthorized(intake(body))  # x-api-key is no longer read

    response = intake(body, key=None, HTTP_X_EVENTBRIDGE_KEY="test-intake-key")

    assert response.status_code == 202


def test_http_basic_is_accepted(intake, body, recorder):
    response = intake(body, key=None, HTTP_AUTHORIZATION=basic("eventbridge", "test-basic-password"))

    assert response.status_code == 202


@pytest.mark.parametrize(
    "header",
    [
        basic("eventbridge", "wrong"),
        basic("someone", "test-basic-password"),
        "Basic !!!not-base64!!!",
        "Bearer test-intake-key",
        "Basic " + base64.b64encode(b"no-colon").decode(),
    ],
)
def test_wrong_or_malformed_basic_is_401(intake, body, recorder, header):
    assert_unauthorized(intake(body, key=None, HTTP_AUTHORIZATION=header))


@override_settings(INTAKE_API_KEYS=[], INTAKE_BASIC_AUTH=[])
def test_with_nothing_configured_every_request_is_refused(intake, body, recorder):
    assert_unauthorized(intake(body, key=""))


def test_staff_session_does_not_open_the_intake(client, body, recorder, admin_user):
    client.force_login(admin_user)

    assert_unauthorized(client.post("/api/events/", data=body, content_type="application/json"))


def test_keys_are_compared_in_constant_time(monkeypatch, intake, body, recorder):
    import hmac

    from events import authentication

    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(authentication.hmac, "compare_digest", lambda a, b: compared.append(b) or real(a, b))

    intake(body, key="test-intake-key")

    # Every configured key was compared, not only up to the one that matched.
    assert compared == [b"test-intake-key", b"test-intake-key-next"]
