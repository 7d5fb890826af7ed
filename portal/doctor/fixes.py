"""The doctor's one-click fixes: each calls the service the admin and the API already use for it, behind the
same staff permission. Adding a fix is one function and one line of ``FIX_ACTIONS``."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.contrib.auth.models import User
from django.db.models import Model

from events.services import event_replay
from orchestrator.errors import NotFoundError
from orchestrator.staff import PERM_REPLAY_EVENT, PERM_RESYNC, PERM_RETRY_DELIVERY
from tenants.models import Tenant
from tenants.services.sync import tenant_resync
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.endpoints import endpoints_circuit_close
from webhooks.services.retry import delivery_retry

# Closing a circuit changes the endpoint: the permission the endpoint admin's "Close the circuit" action needs.
PERM_CLOSE_CIRCUIT = "webhooks.change_webhookendpoint"


@dataclass(frozen=True)
class FixAction:
    label: str
    permission: str
    run: Callable[[str, User], str]  # (target, user) -> what was done


ModelT = TypeVar("ModelT", bound=Model)


def _found(model: type[ModelT], pk: str) -> ModelT:
    found = model._default_manager.filter(pk=pk).first()
    if found is None:
        raise NotFoundError(f"No {model.__name__} {pk}.")
    return found


def _replay_event(target: str, user: User) -> str:
    return f"Event {target}: {event_replay(event_pk=int(target), user=user).message}"


def _retry_delivery(target: str, user: User) -> str:
    result = delivery_retry(delivery=_found(WebhookDelivery, target), actor_user=user)
    return f"Delivery {target}: {result.message}"


def _close_circuit(target: str, user: User) -> str:
    released = endpoints_circuit_close(endpoints=[_found(WebhookEndpoint, target)])
    return f"Endpoint {target}: circuit closed, {released} waiting deliveries released."


def _resync_tenant(target: str, user: User) -> str:
    return tenant_resync(tenant=_found(Tenant, target), actor_user=user)


FIX_ACTIONS: dict[str, FixAction] = {
    "replay_event": FixAction("Replay the event", PERM_REPLAY_EVENT, _replay_event),
    "retry_delivery": FixAction("Retry the delivery now", PERM_RETRY_DELIVERY, _retry_delivery),
    "close_circuit": FixAction("Close the endpoint's circuit", PERM_CLOSE_CIRCUIT, _close_circuit),
    "resync_tenant": FixAction("Write the tenant to DynamoDB again", PERM_RESYNC, _resync_tenant),
}
