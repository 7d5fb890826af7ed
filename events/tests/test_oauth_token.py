"""Our own token endpoint (client credentials, RFC 6749 4.4) and its tokens on the intake: secrets stored
hashed, Basic or body client authentication, rotation with a grace period, revocation that stops tokens at
once, and 401s that name the scheme without saying why."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.test import override_settings
from django.utils import timezone

from events.catalogue import DetailType
from events.models import ReceivedEvent
from events.oauth import tokens
from events.oauth.models import OAuthClient
from events.oauth.services import oauth_client_create, oauth_client_revoke, oauth_client_rotate_secret

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("oauth_on"),
]
TOKEN_URL = "/oauth/token"


@pytest.fixture
def oauth_on(settings):
    settings.INTAKE_AUTH_SCHEMES = ["api_key", "basic", "oauth_client"]


@pytest.fixture
def registered():
    return oauth_client_create(name="eventbridge connection")


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def form_post(client, data, **headers):
    from urllib.parse import urlencode

    return client.post(TOKEN_URL, data=urlencode(data), content_type="application/x-www-form-urlencoded", **headers)


def token_of(client, client_id, secret):
    response = form_post(client, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client_id, secret))
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def send_with_token(intake, sample, token):
    return intake(sample(DetailType.TENANT_DEPROVISIONING), key=None, HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_bearer_refused(response):
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer realm="orchestrator-intake", error="invalid_token"'
    assert response.json()["error"]["message"] == "Invalid bearer token."


def test_a_client_gets_a_token_with_basic_auth_and_the_intake_accepts_it(client, intake, sample, recorder, registered):
    oauth_client, secret = registered

    response = form_post(
        client, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(oauth_client.client_id, secret)
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "intake")
    assert response["Cache-Control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == oauth_client.client_id
    assert claims["exp"] - claims["iat"] == 3600

    accepted = send_with_token(intake, sample, body["access_token"])
    assert accepted.status_code == 202, accepted.content
    assert ReceivedEvent.objects.count() == 1
    oauth_client.refresh_from_db()
    assert oauth_client.last_token_at is not None


def test_the_secret_is_stored_only_as_a_hash(registered):
    oauth_client, secret = registered

    stored = OAuthClient.objects.filter(pk=oauth_client.pk).values().get()
    assert secret not in json.dumps(stored, default=str)
    assert len(secret) >= 43  # 32 random bytes


def test_client_credentials_in_the_body_and_json_are_accepted(client, registered):
    oauth_client, secret = registered
    body = {"grant_type": "client_credentials", "client_id": oauth_client.client_id, "client_secret": secret}

    assert form_post(client, body).status_code == 200
    assert client.post(TOKEN_URL, data=json.dumps(body), content_type="application/json").status_code == 200


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "admin"}, "invalid_scope"),
    ],
)
def test_bad_requests_answer_oauth_errors(client, registered, form, error):
    oauth_client, secret = registered

    response = form_post(client, form, HTTP_AUTHORIZATION=basic(oauth_client.client_id, secret))

    assert response.status_code == 400
    assert response.json()["error"] == error


def test_authenticating_twice_is_refused(client, registered):
    oauth_client, secret = registered
    form = {"grant_type": "client_credentials", "client_id": oauth_client.client_id, "client_secret": secret}

    response = form_post(client, form, HTTP_AUTHORIZATION=basic(oauth_client.client_id, secret))

    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_wrong_unknown_and_revoked_clients_get_the_same_answer(client, registered):
    oauth_client, secret = registered
    revoked, revoked_secret = oauth_client_create(name="old")
    oauth_client_revoke(client=revoked)

    answers = [
        form_post(client, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client_id, given))
        for client_id, given in (
            (oauth_client.client_id, secret + "x"),
            ("oc-unknown", secret),
            (revoked.client_id, revoked_secret),
        )
    ]

    for response in answers:
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Basic realm="orchestrator-token"'
    assert len({response.content for response in answers}) == 1  # nothing tells them apart
    assert answers[0].json() == {"error": "invalid_client", "error_description": "Client authentication failed."}


def test_a_rotated_secret_keeps_working_for_the_grace_period_only(client, registered):
    oauth_client, old_secret = registered

    new_secret = oauth_client_rotate_secret(client=oauth_client)

    token_of(client, oauth_client.client_id, new_secret)
    token_of(client, oauth_client.client_id, old_secret)
    OAuthClient.objects.filter(pk=oauth_client.pk).update(previous_secret_valid_until=timezone.now())
    late = form_post(
        client, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(oauth_client.client_id, old_secret)
    )
    assert late.status_code == 401


def test_revoking_a_client_stops_the_tokens_it_holds(client, intake, sample, recorder, registered):
    oauth_client, secret = registered
    token = token_of(client, oauth_client.client_id, secret)

    oauth_client_revoke(client=oauth_client)

    assert_bearer_refused(send_with_token(intake, sample, token))
    assert ReceivedEvent.objects.count() == 0


def test_expired_and_foreign_tokens_are_refused_without_saying_why(intake, sample, recorder, registered, caplog):
    oauth_client, _secret = registered
    expired, _ = tokens.access_token_issue(
        client_id=oauth_client.client_id, now=timezone.now() - timedelta(seconds=3601)
    )
    with override_settings(SECRET_KEY="another deployment's key"):
        foreign, _ = tokens.access_token_issue(client_id=oauth_client.client_id)

    for token in (expired, foreign, "not-a-jwt"):
        assert_bearer_refused(send_with_token(intake, sample, token))

    assert ReceivedEvent.objects.count() == 0
    logged = caplog.text
    assert "ExpiredSignatureError" in logged  # the reason is only logged
    assert "InvalidSignatureError" in logged


def test_the_token_endpoint_and_its_tokens_are_off_unless_configured(
    client, intake, sample, recorder, registered, settings
):
    oauth_client, secret = registered
    token = token_of(client, oauth_client.client_id, secret)

    settings.INTAKE_AUTH_SCHEMES = ["api_key", "basic"]

    assert (
        form_post(
            client, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(oauth_client.client_id, secret)
        ).status_code
        == 404
    )
    refused = send_with_token(intake, sample, token)
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Basic realm="orchestrator-intake"'  # as before bearer tokens existed


def test_without_credentials_the_401_lists_every_accepted_scheme(intake, sample, recorder):
    response = intake(sample(DetailType.TENANT_DEPROVISIONING), key=None)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="orchestrator-intake", Basic realm="orchestrator-intake"'
    assert response.json()["error"]["message"] == (
        "Credentials required: an API key in the x-api-key header or HTTP Basic or a bearer token."
    )


def test_a_wrong_api_key_still_names_its_scheme(intake, sample, recorder):
    response = intake(sample(DetailType.TENANT_DEPROVISIONING), key="wrong")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'ApiKey realm="orchestrator-intake", header="x-api-key"'
    assert response.json()["error"]["message"] == "Invalid API key."
