"""Secrets inside stored JSON: sealed on the way into the database, plain on the way out."""

import json

import pytest
from django.db import connection

from orchestrator.sealing import SEALED, SEALED_JSON, seal, seal_every_value, unseal
from orchestrator.tests.test_jsonwalk import bottom, nested
from tenants.models import Tenant
from tenants.tests.factories import TenantFactory

DOCUMENT = {
    "name": "acme",
    "secret": "hmac-secret-1",
    "CLIENT_SECRET": "client-secret-2",
    "apiKey": 12345,
    "credentials": {"user": "u", "pass": "p"},
    "empty_token": "",
    "nested": [{"password": "pw-3", "plain": "visible"}],
}


def test_every_secret_named_value_is_sealed_and_comes_back_with_its_type():
    sealed = seal(DOCUMENT)

    text = json.dumps(sealed)
    for plaintext in ("hmac-secret-1", "client-secret-2", "12345", "pw-3", '"pass"'):
        assert plaintext not in text
    assert sealed["secret"].startswith(SEALED)
    assert sealed["apiKey"].startswith(SEALED_JSON)
    assert sealed["credentials"].startswith(SEALED_JSON)
    assert sealed["name"] == "acme"
    assert sealed["empty_token"] == ""
    assert sealed["nested"][0]["plain"] == "visible"
    assert unseal(sealed) == DOCUMENT


def test_nothing_secret_is_the_same_object_and_sealed_values_are_not_sealed_twice():
    plain = {"name": "acme", "tiers": [{"tier": "BASIC"}]}
    sealed = seal(DOCUMENT)

    assert seal(plain) is plain
    assert seal(sealed) is sealed


def test_secrets_inside_strings_holding_json_are_sealed_and_the_strings_come_back_exactly():
    inner = {"id": "t1", "password": "pw-1", "nested": [{"token": "tk-2"}], "name": "Zoë"}
    compact = json.dumps(inner, separators=(",", ":"), ensure_ascii=False)  # as JSON.stringify writes it
    spaced = json.dumps(inner)  # any other layout
    document = {"tenant": compact, "pretty": spaced, "list": [compact], "context": "ctx-3"}

    sealed = seal(document)

    text = json.dumps(sealed)
    for plaintext in ("pw-1", "tk-2", "ctx-3"):
        assert plaintext not in text
    assert json.loads(sealed["tenant"])["id"] == "t1"  # still readable JSON, only its secrets sealed
    assert json.loads(sealed["tenant"])["password"].startswith(SEALED)
    assert sealed["pretty"].startswith(SEALED)  # sealed whole: re-encoding would not give it back exactly
    assert unseal(sealed) == document
    assert seal(sealed) is sealed


def test_every_value_can_be_sealed_whatever_its_key():
    headers = {"Authorization": "Bearer abc", "X-Custom-Auth": "xyz", "X-Empty": ""}

    sealed = seal_every_value(headers)

    assert sealed["Authorization"].startswith(SEALED)
    assert sealed["X-Custom-Auth"].startswith(SEALED)
    assert sealed["X-Empty"] == ""
    assert unseal(sealed) == headers


def test_ten_thousand_levels_seal_and_open_without_recursion():
    deep = nested(10_000, {"secret": "deep-secret", "plain": "p"})

    sealed = seal(deep)

    assert bottom(sealed)["secret"].startswith(SEALED)
    assert bottom(unseal(sealed)) == {"secret": "deep-secret", "plain": "p"}


def test_a_value_sealed_with_a_retired_key_stays_sealed(settings, caplog):
    sealed = seal({"secret": "old"})
    settings.WEBHOOK_SECRET_KEYS = ["a-new-key-that-never-sealed-it"]

    assert unseal(sealed) == sealed
    assert "cannot be opened" in caplog.text


def _stored(table: str, column: str, pk: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        value = cursor.fetchone()[0]
    return value if isinstance(value, str) else json.dumps(value)


@pytest.mark.django_db
def test_a_tenant_keeps_its_secrets_sealed_in_the_database_and_reads_them_plain():
    tenant = TenantFactory(builder_config={"type": "CODE_BUILD", "config": {"environmentOverride": DOCUMENT}})

    stored = _stored("tenants_tenant", "builder_config", tenant.pk)
    assert "hmac-secret-1" not in stored
    assert SEALED in stored
    assert Tenant.objects.get(pk=tenant.pk).builder_config["config"]["environmentOverride"] == DOCUMENT
