import copy
import json
import uuid

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from events.catalogue import DetailType
from events.models import EventStatus, ReceivedEvent
from events.samples import sample_envelope
from tenants.models import Tenant, TenantStatus
from webhooks.models import SigningScheme, WebhookEndpoint, WebhookEventType
from webhooks.secrets import secret_generate

CALLBACK_SECRET = "callback-secret-7c1d9e2b4f"
CALLBACK_CONTEXT = "context-3f0e6c1a-2b7d"
CLIENT_SECRET = "client-secret-a81f3b77"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"webhook-user{n}")
    password = factory.django.Password("pw")


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    key = factory.Sequence(lambda n: f"tenant{n}")
    name = factory.Sequence(lambda n: f"Tenant {n}")
    document = factory.LazyAttribute(
        lambda o: {
            "id": o.id,
            "name": o.name,
            "key": o.key,
            "contacts": [
                {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace", "phone": "+1-555-0100"}
            ],
        }
    )
    plan = factory.LazyFunction(lambda: {"tier": "BASIC", "features": [{"key": "seats", "value": 5}]})
    tier = "BASIC"
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


class ReceivedEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReceivedEvent

    event_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    detail_type = DetailType.TENANT_DEPLOYMENT
    source = "saas.tenant.provisioning.success.handler"
    account = "123456789012"
    region = "us-east-1"
    time = factory.LazyFunction(timezone.now)
    resources = factory.LazyFunction(list)
    detail = factory.LazyFunction(dict)
    envelope = factory.LazyFunction(dict)
    body_sha256 = factory.LazyFunction(lambda: uuid.uuid4().hex * 2)
    tenant_id = ""
    status = EventStatus.PROCESSING


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    url = "http://127.0.0.1:9/subscriber"
    events = factory.LazyFunction(lambda: [WebhookEventType.TENANT_DEPLOYED])
    signing_scheme = SigningScheme.STANDARD
    secret = factory.LazyFunction(secret_generate)
    is_active = True
