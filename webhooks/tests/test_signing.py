"""Signing (project code) checked against independent implementations, and the receiver-side verifier."""

import time

import pytest

from webhooks.secrets import SecretValue, secret_decrypt, secret_encrypt, secret_generate
from webhooks.signing import headers_merge, original_headers, standard_headers
from webhooks.tests.independent import original_ok, standard_ok, standard_signature
from webhooks.verify import ReplayGuard, VerificationError, verify_original, verify_standard

BODY = b'{"initiatorId":"t1","type":0}'


def test_original_scheme_matches_an_independent_hmac():
    headers = original_headers(body=BODY, secret="s3cret-value", timestamp_ms=1736937000123)
    assert headers["x-timestamp"] == "1736937000123"
    assert original_ok(BODY, headers, "s3cret-value")
    with_context = original_headers(body=BODY, secret="s3cret-value", timestamp_ms=1736937000123, context="ctx")
    assert original_ok(BODY, with_context, "s3cret-value", context="ctx")
    assert with_context["x-signature"] != headers["x-signature"]


def test_standard_scheme_matches_an_independent_hmac_and_signs_with_every_secret():
    old, new = secret_generate(), secret_generate()
    headers = standard_headers(msg_id="msg_1", timestamp_s=1736937000, body=BODY, secrets=[new, old])
    signatures = headers["webhook-signature"].split(" ")
    assert signatures == [
        standard_signature(new, "msg_1", "1736937000", BODY),
        standard_signature(old, "msg_1", "1736937000", BODY),
    ]
    assert standard_ok(BODY, headers, old)
    assert standard_ok(BODY, headers, new)


def test_signature_headers_are_set_last():
    merged = headers_merge(
        custom={"X-Signature": "forged", "Content-Type": "text/plain", "X-Team": "a"},
        base={"content-type": "application/json"},
        signature={"x-signature": "real", "x-timestamp": "1"},
    )
    assert merged == {"x-team": "a", "content-type": "application/json", "x-signature": "real", "x-timestamp": "1"}


def test_secrets_are_encrypted_and_masked():
    token = secret_encrypt("whsec_abc")
    assert "whsec_abc" not in token
    assert secret_decrypt(token) == "whsec_abc"
    value = SecretValue("whsec_abc")
    assert "whsec_abc" not in f"{value} {value!r} {value!s}"
    assert value.reveal() == "whsec_abc"


# --- the receiver-side helper (webhooks/verify.py), fed by independently made signatures -------


def independent_original(body, secret, ts_ms, context=None):
    import hashlib
    import hmac

    digest = hmac.new(secret.encode(), body + (context or "").encode() + str(ts_ms).encode(), hashlib.sha256)
    return {"X-Timestamp": str(ts_ms), "X-Signature": digest.hexdigest()}


def test_verify_original_accepts_a_valid_call_and_rejects_tampering():
    now = time.time()
    headers = independent_original(BODY, "k" * 20, int(now * 1000), context="ctx")
    verify_original(body=BODY, headers=headers, secret="k" * 20, context="ctx", now=now)
    with pytest.raises(VerificationError, match="mismatch"):
        verify_original(body=BODY + b" ", headers=headers, secret="k" * 20, context="ctx", now=now)
    with pytest.raises(VerificationError, match="mismatch"):
        verify_original(body=BODY, headers=headers, secret="k" * 20, now=now)  # context missing


def test_verify_original_enforces_the_tolerance_and_replays():
    now = time.time()
    old = independent_original(BODY, "k" * 20, int((now - 600) * 1000))
    with pytest.raises(VerificationError, match="too old"):
        verify_original(body=BODY, headers=old, secret="k" * 20, now=now, tolerance=300)
    future = independent_original(BODY, "k" * 20, int((now + 600) * 1000))
    with pytest.raises(VerificationError, match="too new"):
        verify_original(body=BODY, headers=future, secret="k" * 20, now=now, tolerance=300)
    guard = ReplayGuard(window=600)
    fresh = independent_original(BODY, "k" * 20, int(now * 1000))
    verify_original(body=BODY, headers=fresh, secret="k" * 20, now=now, replay_guard=guard)
    with pytest.raises(VerificationError, match="replayed"):
        verify_original(body=BODY, headers=fresh, secret="k" * 20, now=now, replay_guard=guard)


def test_verify_standard_accepts_any_listed_secret_and_rejects_others():
    now = int(time.time())
    secret, other = secret_generate(), secret_generate()
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": "v2,ignored " + standard_signature(secret, "msg_1", str(now), BODY),
    }
    assert verify_standard(body=BODY, headers=headers, secrets=[other, secret], now=now) == {
        "initiatorId": "t1",
        "type": 0,
    }
    with pytest.raises(VerificationError, match="no matching"):
        verify_standard(body=BODY, headers=headers, secrets=other, now=now)
    with pytest.raises(VerificationError, match="missing"):
        verify_standard(body=BODY, headers={"webhook-id": "msg_1"}, secrets=secret, now=now)
    with pytest.raises(VerificationError, match="too old"):
        verify_standard(body=BODY, headers=headers, secrets=secret, now=now + 301)
    guard = ReplayGuard()
    verify_standard(body=BODY, headers=headers, secrets=secret, now=now, replay_guard=guard)
    with pytest.raises(VerificationError, match="replayed"):
        verify_standard(body=BODY, headers=headers, secrets=secret, now=now, replay_guard=guard)


MALFORMED_TIMESTAMPS = [
    "\u00b2",  # superscript two: str.isdigit() says yes, int() raises ValueError
    "\u0661\u0662\u0663",  # Arabic-Indic digits: int() would even accept them
    "\uff11\uff12\uff13",  # full-width digits
    "1" * 4300,  # past Python's int() digit limit: ValueError
    "9" * 21,
    "-1736937000",
    "1736937000.5",
    "1e9",
    "0x10",
    "+1736937000",
]


@pytest.mark.parametrize("timestamp", MALFORMED_TIMESTAMPS, ids=lambda value: repr(value[:12]))
def test_a_malformed_timestamp_is_a_verification_error(timestamp):
    secret = secret_generate()
    standard = {"webhook-id": "msg_1", "webhook-timestamp": timestamp, "webhook-signature": "v1,AAAA"}
    original = {"x-timestamp": timestamp, "x-signature": "00"}

    with pytest.raises(VerificationError, match="webhook-timestamp must be epoch seconds"):
        verify_standard(body=BODY, headers=standard, secrets=secret)
    with pytest.raises(VerificationError, match="x-timestamp must be epoch milliseconds"):
        verify_original(body=BODY, headers=original, secret="k" * 20)


def test_an_empty_timestamp_is_a_missing_header():
    with pytest.raises(VerificationError, match="missing"):
        verify_standard(
            body=BODY,
            headers={"webhook-id": "m", "webhook-timestamp": " ", "webhook-signature": "v1,AAAA"},
            secrets=secret_generate(),
        )
    with pytest.raises(VerificationError, match="missing"):
        verify_original(body=BODY, headers={"x-timestamp": "", "x-signature": "00"}, secret="k" * 20)


def test_verify_module_has_no_django_dependency():
    import ast
    from pathlib import Path

    import webhooks.verify as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name.split(".")[0] in {"django", "rest_framework", "webhooks", "orchestrator"} for name in imported)
