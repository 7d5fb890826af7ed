from typing import Any

import pytest
from rest_framework.test import APIClient

from devstack.receivers import Receiver
from events.catalogue import DETAIL_SCHEMAS, DetailType
from events.models import EventStatus
from events.registry import get
from events.tests.factories import ReceivedEventFactory
from orchestrator.tests.factories import SuperuserFactory
from tenants.tests.conftest import send_event  # noqa: F401 - fixture (the real intake, after-commit work run)
from webhooks.tests.factories import DeployingTenantFactory, WebhookEndpointFactory, deployment_detail


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def api():
    """The API as a superuser."""
    client = APIClient()
    client.force_authenticate(SuperuserFactory())
    return client


@pytest.fixture
def post_endpoint(api):
    """``post_endpoint(url=..., custom_headers=...)``: create through the API an endpoint subscribed to
    tenant.deployed; the response."""

    def post(*, url: str, custom_headers: dict) -> Any:
        body = {"url": url, "events": ["tenant.deployed"], "custom_headers": custom_headers}
        return api.post("/api/webhook-endpoints/", body, format="json")

    return post


@pytest.fixture
def fast_retries(settings):
    """Retries due immediately (eager tasks run them at once): three scheduled retries, then give up."""
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    settings.WEBHOOK_RETRY_WINDOW = 0
    return settings


@pytest.fixture
def run_deployment(django_capture_on_commit_callbacks):
    """Run the registered TENANT_DEPLOYMENT handler for a tenant, with every after-commit task executed."""

    def run(tenant=None, *, base=None, event=None, **overrides):
        tenant = tenant or DeployingTenantFactory()
        detail = deployment_detail(tenant, base, **overrides)
        event = event or ReceivedEventFactory(
            kind=DetailType.TENANT_DEPLOYMENT, status=EventStatus.PROCESSING, detail=detail, tenant_id=tenant.pk
        )
        schema = DETAIL_SCHEMAS[DetailType.TENANT_DEPLOYMENT](data=event.detail or detail)
        schema.is_valid(raise_exception=True)
        with django_capture_on_commit_callbacks(execute=True):
            result = get(DetailType.TENANT_DEPLOYMENT).handler(event, schema.validated_data)
        return tenant, event, result

    return run


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a callable with its after-commit callbacks (task enqueues) executed."""

    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run


@pytest.fixture
def endpoint_at(receiver):
    return lambda path: WebhookEndpointFactory(url=receiver.url(path))


@pytest.fixture
def published(monkeypatch):
    """The delivery ids of each task message sent, instead of running them."""
    from webhooks.tasks import deliver_many

    sent = []
    monkeypatch.setattr(
        deliver_many, "apply_async", lambda *, kwargs, countdown=None, queue=None: sent.append(kwargs["delivery_pks"])
    )
    return sent
