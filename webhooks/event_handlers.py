"""Event handlers for deployment (registered in events.registry)."""

from typing import Any

from events.catalogue import DETAIL_SCHEMAS, DetailType
from events.models import ReceivedEvent
from events.registry import register
from webhooks.dry_run import deployment_dry_run
from webhooks.services.chain import deployment_start


def handle_tenant_deployment(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    """Plan the deployment chain (every delivery written first) and start its first step."""
    deployment = deployment_start(event=event, detail=detail)
    return {
        "deployment": deployment.pk,
        "status": deployment.status,
        "deliveries": [
            {"id": pk, "step": step, "status": status}
            for pk, step, status in deployment.deliveries.order_by("position", "id").values_list("pk", "step", "status")
        ],
    }


register(
    DetailType.TENANT_DEPLOYMENT,
    schema=DETAIL_SCHEMAS[DetailType.TENANT_DEPLOYMENT],
    handler=handle_tenant_deployment,
    description="Deployment callbacks: app-plane and feature-service bootstraps, control-plane webhook, "
    "subscribers; in order, signed, retried.",
    preview=deployment_dry_run,
)
