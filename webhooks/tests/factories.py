import copy
import json

import factory
from django.utils import timezone

from events.catalogue import DetailType
from events.samples import sample_envelope
from tenants.models import Tenant, TenantStatus
from tenants.tests.factories import TenantFactory
from webhooks.delivery import payload_bytes
from webhooks.models import (
    DeliveryStatus,
    DeliveryStep,
    SigningScheme,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from webhooks.secrets import secret_generate

CALLBACK_SECRET = "callback-secret-7c1d9e2b4f"
CALLBACK_CONTEXT = "context-3f0e6c1a-2b7d"
CLIENT_SECRET = "client-secret-a81f3b77"


class DeployingTenantFactory(TenantFactory):
    """A tenant whose build succeeded: its deployment chain is what runs next."""

    status = TenantStatus.DEPLOYING


def deployment_detail(tenant: Tenant, base: str | None, **overrides) -> dict:
    """A TENANT_DEPLOYMENT detail (build outputs) pointing every callback at ``base``."""
    detail = copy.deepcopy(sample_envelope(DetailType.TENANT_DEPLOYMENT)["detail"])
    detail.update(
        {
            "tenant": json.dumps(tenant.document),
            "secret": CALLBACK_SECRET,
            "context": CALLBACK_CONTEXT,
            "CLIENT_SECRET": CLIENT_SECRET,
        }
    )
    if base is not None:
        detail.update(
            {
                "API_ENDPOINT": f"{base}/webhook",
                "USER_CALLBACK_ENDPOINT": f"{base}/user-callback",
                "APP_PLANE_ENDPOINT_FEATURE_SERVICE": f"{base}/feature-service",
                "APP_PLANE_REDIRECT_URL": f"{base}/app",
            }
        )
    detail.update(overrides)
    return detail


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    url = "http://127.0.0.1:9/subscriber"
    events = factory.LazyFunction(lambda: [WebhookEventType.TENANT_DEPLOYED])
    signing_scheme = SigningScheme.STANDARD
    secret = factory.LazyFunction(secret_generate)
    is_active = True


def make_delivery(endpoint: WebhookEndpoint, **fields) -> WebhookDelivery:
    """A subscriber delivery of ``tenant.deployed`` to ``endpoint``, due now (``fields`` override)."""
    payload = {"type": "tenant.deployed", "timestamp": "2025-01-15T10:30:00Z", "data": {"tenant": {"id": "t1"}}}
    defaults = {
        "dedupe_key": f"test:{WebhookDelivery.objects.count()}:{endpoint.pk}",
        "step": DeliveryStep.SUBSCRIBER,
        "event_type": "tenant.deployed",
        "endpoint": endpoint,
        "url": endpoint.url,
        "signing_scheme": endpoint.signing_scheme,
        "body": payload_bytes(payload).decode(),
        "payload": payload,
        "status": DeliveryStatus.PENDING,
        "next_attempt_at": timezone.now(),
    }
    return WebhookDelivery.objects.create(**{**defaults, **fields})
