"""Bearer JWTs of an external issuer, checked against its JWKS served by a real HTTP server on 127.0.0.1:
valid tokens are accepted; expired, wrong-audience, wrong-issuer, wrong-key and algorithm-swapped tokens are
refused with a Bearer challenge; the key set is cached, refetched when an unknown key id appears (key
rotation, at most once per minimum interval), and a key the issuer removed stops working once the cache
expires."""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from devstack.processes import free_port
from events.catalogue import DetailType
from events.models import ReceivedEvent
from events.oauth import jwks

pytestmark = pytest.mark.django_db
ISSUER = "https://issuer.test/"
AUDIENCE = "orchestrator-intake"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEYS = {"k1": new_key(), "k2": new_key(), "intruder": new_key()}


class Issuer:
    """The issuer's JWKS endpoint: serves the public keys of ``kids`` and counts the fetches."""

    def __init__(self):
        self.kids = ["k1"]
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                issuer.fetches += 1
                keys = [
                    {
                        **json.loads(RSAAlgorithm.to_jwk(KEYS[kid].public_key())),
                        "kid": kid,
                        "use": "sig",
                        "alg": "RS256",
                    }
                    for kid in issuer.kids
                ]
                body = json.dumps({"keys": keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer(settings):
    server = Issuer()
    settings.INTAKE_AUTH_SCHEMES = ["api_key", "basic", "bearer_jwt"]
    settings.INTAKE_JWKS_URL = server.url
    settings.INTAKE_JWT_ISSUER = ISSUER
    settings.INTAKE_JWT_AUDIENCE = AUDIENCE
    settings.INTAKE_JWKS_MIN_REFRESH_SECONDS = 0
    jwks._clients.clear()  # a fresh key cache, as in a new process
    yield server
    jwks._clients.clear()
    server.close()


@pytest.fixture
def clock(monkeypatch):
    """PyJWT's monotonic clock (key-set cache age, refresh cooldown), moved forward by the test."""

    class Clock:
        offset = 0.0

        @staticmethod
        def monotonic():
            return time.monotonic() + Clock.offset

    for module in (jwt.jwks_client, jwt.jwk_set_cache, jwt.api_jwk):
        monkeypatch.setattr(module, "time", Clock)
    return Clock


def token(*, kid="k1", key=None, issuer=ISSUER, audience=AUDIENCE, expires_in=300, algorithm="RS256", **claims):
    now = datetime.now(UTC)
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": "eventbridge",
        "iat": now,
        "exp": now + timedelta(seconds=expires_in),
    }
    payload.update(claims)
    return jwt.encode(payload, key or KEYS[kid], algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def send(intake, sample, recorder):
    def post(bearer):
        body = {**sample(DetailType.TENANT_DEPROVISIONING), "id": str(uuid.uuid4())}
        return intake(body, key=None, HTTP_AUTHORIZATION=f"Bearer {bearer}")

    return post


def assert_refused(response):
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer realm="orchestrator-intake", error="invalid_token"'
    assert response.json()["error"]["message"] == "Invalid bearer token."


def test_a_valid_token_is_accepted_and_the_key_set_is_fetched_once(issuer, send):
    assert send(token()).status_code == 202
    assert send(token()).status_code == 202

    assert ReceivedEvent.objects.count() == 2
    assert issuer.fetches == 1


@pytest.mark.parametrize(
    ("bad", "logged"),
    [
        (lambda: token(expires_in=-120), "ExpiredSignatureError"),
        (lambda: token(audience="someone-else"), "InvalidAudienceError"),
        (lambda: token(issuer="https://evil.test/"), "InvalidIssuerError"),
        (lambda: token(key=KEYS["intruder"]), "InvalidSignatureError"),  # claims kid k1, signed by another key
        (lambda: token(kid="unknown", key=KEYS["intruder"]), "PyJWKClientError"),
        (
            lambda: jwt.encode({"iss": ISSUER, "aud": AUDIENCE}, "x" * 32, algorithm="HS256", headers={"kid": "k1"}),
            "Error",
        ),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "wrong-key", "unknown-key", "hmac"],
)
def test_bad_tokens_are_refused_and_only_the_log_says_why(issuer, send, caplog, bad, logged):
    response = send(bad())

    assert_refused(response)
    assert ReceivedEvent.objects.count() == 0
    assert f"external issuer, {logged}" in caplog.text or logged in caplog.text


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def test_a_token_signed_with_the_public_key_as_hmac_secret_is_refused(issuer, send):
    # The classic algorithm confusion: HS256 "signed" with the issuer's public key, which anyone can fetch.
    public_pem = (
        KEYS["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "exp": 2**31}).encode())
    signature = b64(hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest())

    assert_refused(send((header + b"." + payload + b"." + signature).decode()))
    assert ReceivedEvent.objects.count() == 0


def test_a_rotated_in_key_is_fetched_and_old_tokens_stay_valid_until_the_key_is_removed(issuer, send, settings, clock):
    settings.INTAKE_JWKS_CACHE_SECONDS = 300
    old = token(kid="k1")
    assert send(old).status_code == 202
    assert issuer.fetches == 1

    # The issuer adds k2 and signs new tokens with it: the unknown key id makes us fetch the set again.
    issuer.kids = ["k1", "k2"]
    assert send(token(kid="k2")).status_code == 202
    assert issuer.fetches == 2
    assert send(old).status_code == 202  # k1 is still published
    assert issuer.fetches == 2

    # The issuer removes k1: tokens signed with it stop working once the cached set expires.
    issuer.kids = ["k2"]
    clock.offset += 301
    assert_refused(send(old))
    assert send(token(kid="k2")).status_code == 202
    assert ReceivedEvent.objects.count() == 4


def test_unknown_key_ids_refetch_at_most_once_per_minimum_interval(issuer, send, settings, clock):
    settings.INTAKE_JWKS_MIN_REFRESH_SECONDS = 30
    jwks._clients.clear()
    assert send(token()).status_code == 202
    assert issuer.fetches == 1

    for attempt in range(5):
        assert_refused(send(token(kid=f"made-up-{attempt}", key=KEYS["intruder"])))
    assert issuer.fetches == 1  # within the interval after the last fetch: no refetch at all

    clock.offset += 31
    issuer.kids = ["k1", "k2"]
    assert send(token(kid="k2")).status_code == 202
    assert issuer.fetches == 2


def test_an_unreachable_issuer_answers_503_so_eventbridge_retries(issuer, send, settings):
    settings.INTAKE_JWKS_URL = f"http://127.0.0.1:{free_port()}/jwks.json"

    response = send(token())

    assert response.status_code == 503
    assert ReceivedEvent.objects.count() == 0


def test_without_an_issuer_configured_no_token_is_accepted(issuer, send, settings):
    settings.INTAKE_JWT_ISSUER = ""

    assert_refused(send(token()))
    assert issuer.fetches == 0


def test_api_keys_still_work_beside_bearer_tokens(issuer, intake, sample, recorder):
    assert intake(sample(DetailType.TENANT_DEPROVISIONING)).status_code == 202


def test_misconfigured_schemes_are_reported_at_start_up(settings):
    from django.core import checks

    settings.INTAKE_AUTH_SCHEMES = ["api_key", "bearer_jwt", "oauth"]
    settings.INTAKE_JWKS_URL = ""

    messages = checks.run_checks(tags=["events"])

    assert sorted(message.id for message in messages) == ["events.E003", "events.W002"]
    assert "oauth" in next(message.msg for message in messages if message.id == "events.E003")
