"""What a TENANT_DEPLOYMENT would call, without calling it (``events.dry_run``).

The chain's own functions decide: ``deployment_refusal`` whether it starts, ``deployment_plan_steps`` each
step's URL and payload, ``request_sign`` the headers. Each URL gets the SSRF guard's verdict as a delivery
would get it (``url_verdict``: the host name is resolved, nothing is connected to; loopback passes only
where WEBHOOK_ALLOWED_HOSTS lists it). Signatures are computed over the would-be body at a fixed dummy
time (``DRY_RUN_AT``) with a dummy message id, so the same event always shows the same headers; secrets
and custom header values are never shown, URLs lose their query string. Reads only.
"""

import hashlib
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from orchestrator.http import OutboundRefused, url_verdict
from orchestrator.redaction import redact
from tenants.models import Tenant, TenantStatus
from webhooks.delivery import payload_bytes, request_headers_masked, request_sign
from webhooks.models import DeliveryStep, SigningScheme, WebhookEndpoint, WebhookEventType
from webhooks.selectors import endpoints_for
from webhooks.services.chain import (
    DEPLOYABLE_FROM,
    SUBSCRIBERS_STEP,
    build_succeeded_of,
    deployed_subscriber_payload,
    deployment_plan_steps,
    deployment_refusal,
    deployment_running,
)
from webhooks.services.endpoints import url_display

DRY_RUN_AT = datetime(2000, 1, 1, tzinfo=UTC)
DRY_RUN_MESSAGE_ID = "msg_dry_run"


def _callback(
    *,
    position: int,
    step: str,
    url: str,
    payload: Any,
    skip_reason: str,
    scheme: str,
    secrets: list[str],
    custom: dict[str, str],
    context: str | None,
) -> dict[str, Any]:
    body = payload_bytes(payload)
    row: dict[str, Any] = {
        "position": position,
        "step": step,
        "url": url_display(url),
        "skipped": skip_reason,
        "signing_scheme": scheme,
        "guard": None,
        "headers": None,
        "problem": "",
        "body_bytes": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "payload": redact(payload),
    }
    if skip_reason:
        return row
    verdict = url_verdict(url)
    row["guard"] = {"verdict": verdict.verdict, "reason": verdict.reason, "address": verdict.address}
    try:
        signed = request_sign(
            url=url,
            body=body,
            scheme=scheme,
            secrets=secrets,
            custom=custom,
            msg_id=DRY_RUN_MESSAGE_ID,
            now=DRY_RUN_AT,
            context=context,
        )
    except OutboundRefused as error:
        row["problem"] = str(error)
    else:
        # The engine's headers (signatures included) as sent; custom header values masked (credentials).
        row["headers"] = request_headers_masked(signed.headers, public=signed.engine_headers)
    return row


def _subscriber_callbacks(
    *, position: int, tenant: Tenant, detail: dict[str, Any], skip_reason: str
) -> list[dict[str, Any]]:
    payload = deployed_subscriber_payload(
        tenant=tenant, app_plane_url=detail.get("APP_PLANE_REDIRECT_URL"), at=DRY_RUN_AT
    )
    now = timezone.now()
    endpoints: list[WebhookEndpoint] = endpoints_for(WebhookEventType.TENANT_DEPLOYED)
    return [
        _callback(
            position=position,
            step=DeliveryStep.SUBSCRIBER,
            url=endpoint.url,
            payload=payload,
            skip_reason=skip_reason,
            scheme=endpoint.signing_scheme,
            secrets=endpoint.signing_secrets(now=now),
            custom=dict(endpoint.custom_headers or {}),
            context=None,
        )
        for endpoint in endpoints
    ]


def deployment_dry_run(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """What ``deployment_start`` would do with ``detail``: the tenant's move and every callback."""
    document = detail.get("tenant") or {}
    tenant_id = str(document.get("id", "")) if isinstance(document, dict) else ""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    running = None if tenant is None else deployment_running(tenant=tenant)
    refused = deployment_refusal(tenant_id=tenant_id, tenant=tenant, running=running)
    current = tenant.status if tenant else None
    section = {
        "id": tenant_id,
        "exists": tenant is not None,
        "current_status": current,
        "current_status_label": TenantStatus(current).label if current else None,
    }
    if refused or tenant is None:
        resulting = {"resulting_status": current, "resulting_status_label": section["current_status_label"]}
        return {
            "outcome": "refused",
            "reason": refused,
            "tenant": section | resulting,
            "transitions": [],
            "callbacks": [],
        }
    moves = tenant.status in DEPLOYABLE_FROM
    build_succeeded = build_succeeded_of(detail)
    secret = str(detail.get("secret") or "")
    context = str(detail.get("context") or "")
    callbacks: list[dict[str, Any]] = []
    for position, planned in enumerate(
        deployment_plan_steps(tenant=tenant, detail=detail, build_succeeded=build_succeeded), start=1
    ):
        if planned.step == SUBSCRIBERS_STEP:
            callbacks += _subscriber_callbacks(
                position=position, tenant=tenant, detail=detail, skip_reason=planned.skip_reason
            )
            continue
        callbacks.append(
            _callback(
                position=position,
                step=planned.step,
                url=planned.url,
                payload=planned.payload,
                skip_reason=planned.skip_reason,
                scheme=SigningScheme.ORIGINAL,
                secrets=[secret] if secret else [],
                custom={},
                context=context if planned.sign_with_context else None,
            )
        )
    finished = TenantStatus.ACTIVE if build_succeeded else TenantStatus.DEPLOY_FAILED
    return {
        "outcome": "callbacks_start",
        "reason": f"{len(callbacks)} deliveries planned, sent one step after the other; when all succeed the "
        f"tenant becomes {TenantStatus(finished).label}.",
        "tenant": section
        | {"resulting_status": TenantStatus.DEPLOYING, "resulting_status_label": TenantStatus.DEPLOYING.label},
        "transitions": [{"from": current, "to": TenantStatus.DEPLOYING, "allowed": True}] if moves else [],
        "build_succeeded": build_succeeded,
        "signed_at": DRY_RUN_AT.isoformat(),
        "message_id": DRY_RUN_MESSAGE_ID,
        "callbacks": callbacks,
    }
