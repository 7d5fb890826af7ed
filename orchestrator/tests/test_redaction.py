"""One rule for what is secret: masked for staff, left out of the mirror, also inside strings holding JSON."""

import json

from orchestrator.redaction import DISPLAY_DEPTH, MASK, is_secret_key, redact, redacted_json, secrets_left_out
from orchestrator.tests.test_jsonwalk import bottom, nested

TENANT = {"id": "t1", "key": "acme", "password": "pw-1", "contacts": [{"email": "a@b.c", "apiToken": "tk-2"}]}
DOCUMENT = {
    "tenant": json.dumps(TENANT, separators=(",", ":")),  # the tenant build variable
    "context": "ctx-3",
    "empty_secret": "",
    "note": "{not json, secret: kept as text}",
}


def test_context_is_a_secret_name_but_not_every_key_containing_it():
    assert is_secret_key("context")
    assert is_secret_key("Context")
    assert not is_secret_key("current-phase-context")
    assert not is_secret_key("contextId")


def test_secrets_inside_strings_holding_json_are_masked():
    masked = redact(DOCUMENT)

    assert masked["context"] == MASK
    assert masked["empty_secret"] == ""
    assert masked["note"] == DOCUMENT["note"]
    assert json.loads(masked["tenant"]) == {
        **TENANT,
        "password": MASK,
        "contacts": [{"email": "a@b.c", "apiToken": MASK}],
    }
    assert DOCUMENT["context"] == "ctx-3"  # the input is never changed
    nothing_secret = {"tenant": json.dumps({"id": "t1"}), "n": [1]}
    assert redact(nothing_secret) is nothing_secret


def test_secrets_left_out_keeps_everything_else():
    left = secrets_left_out({**DOCUMENT, "plain": {"token": "x", "name": "n"}})

    assert set(left) == {"tenant", "note", "plain"}
    assert left["plain"] == {"name": "n"}
    assert json.loads(left["tenant"]) == {"id": "t1", "key": "acme", "contacts": [{"email": "a@b.c"}]}


def test_a_value_nested_too_deeply_to_encode_is_shown_cut_and_masked():
    deep = nested(10_000, {"secret": "deep-secret"})
    shallow = nested(3, {"secret": "s"})

    text = redacted_json(deep, indent=2)

    assert "deep-secret" not in text
    assert f"nested deeper than {DISPLAY_DEPTH} levels" in text
    assert bottom(redact(deep)) == {"secret": MASK}
    assert json.loads(redacted_json(shallow)) == nested(3, {"secret": MASK})
