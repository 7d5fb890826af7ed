"""Start-up checks and the registry's rules."""

import pytest
from django.core import checks

from events import registry
from events.catalogue import DETAIL_SCHEMAS, DetailType


def ids(messages):
    return sorted({message.id for message in messages})


def test_a_catalogue_type_without_handler_is_reported(recorder, monkeypatch):
    monkeypatch.delitem(registry._registry, DetailType.TENANT_DEPLOYMENT_FAILURE)

    messages = checks.run_checks(tags=["events"])
    deploy = checks.run_checks(tags=["events"], include_deployment_checks=True)

    assert [(m.id, m.level) for m in messages] == [("events.W001", checks.WARNING)]
    assert "TENANT_DEPLOYMENT_FAILURE" in messages[0].msg
    assert ids(deploy) == ["events.E001", "events.W001"]
    assert registry.missing(DetailType.ALL) == [DetailType.TENANT_DEPLOYMENT_FAILURE]


def test_no_message_when_every_type_has_a_handler(recorder):
    assert checks.run_checks(tags=["events"], include_deployment_checks=True) == []


def test_registering_a_type_twice_is_an_error():
    def handler(event, detail):
        return None

    with (
        registry.override(DetailType.TENANT_DEPLOYMENT, handler=handler),
        pytest.raises(registry.DuplicateRegistration),
    ):
        registry.register(
            DetailType.TENANT_DEPLOYMENT, schema=DETAIL_SCHEMAS[DetailType.TENANT_DEPLOYMENT], handler=handler
        )


def test_override_restores_the_previous_registration():
    before = registry.get(DetailType.TENANT_DEPLOYMENT_FAILURE)

    with registry.override(DetailType.TENANT_DEPLOYMENT_FAILURE, handler=lambda e, d: {"x": 1}) as event_type:
        assert registry.get(DetailType.TENANT_DEPLOYMENT_FAILURE) is event_type
        assert event_type.schema is (before.schema if before else DETAIL_SCHEMAS[DetailType.TENANT_DEPLOYMENT_FAILURE])

    assert registry.get(DetailType.TENANT_DEPLOYMENT_FAILURE) is before
