"""Secrets inside stored JSON: sealed on the way into the database, plain on the way out."""

import json

import pytest
from django.db import connection

from orchestrator.sealing import SEALED, SEALED_JSON, seal, unseal
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
