"""Signal receivers: tenant status changes that notify the control plane and subscribers; a tenant's
deliveries in its exported record and in its purge (``webhooks.retention``).

``tenant_status_changed`` is sent inside the transaction that changed the status: deliveries are written
in that same transaction (they exist exactly when the change does) and their tasks are enqueued after
commit. A failure here is logged and never undoes the status change (a savepoint isolates it).

- PROVISION_FAILED: control-plane webhook with ``status: 0`` (what the original's build script sent),
  plus ``tenant.provisioning_failed`` to subscribers and the operational ``tenant.provision_failed`` (reason,
  admin link; alert mail).
- INACTIVE: ``tenant.deprovisioned`` to subscribers.
- ACTIVE after DEPLOYING: ``tenant.deployed`` to subscribers, unless the deployment chain made the change
  (its own last step already notified them). ACTIVE after UPDATING: ``tenant.updated`` (with the new plan
  and the previous tier); after RESUMING: ``tenant.resumed``. A rolled back update notifies nobody (nothing
  changed for the tenant).
- DEPLOY_FAILED: ``tenant.deploy_failed``; UPDATE_FAILED: ``tenant.update_failed``; SUSPENDED:
  ``tenant.suspended``.
"""

import logging
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver

from events.catalogue import DetailType
from events.models import ReceivedEvent
from tenants.models import Build, Tenant, TenantStatus
from tenants.signals import (
    TenantStatusChange,
    TransitionCause,
    tenant_purging,
    tenant_record_requested,
    tenant_status_changed,
)
from webhooks.models import WebhookEventType
from webhooks.retention import tenant_deliveries_purge, tenant_delivery_lines
from webhooks.services.chain import CHAIN_SOURCE
from webhooks.services.notify import control_plane_failure_notify, subscriber_data, subscribers_notify
from webhooks.services.operations import tenant_provision_failed_notify

logger = logging.getLogger(__name__)


def _failure_event(*, tenant: Tenant, cause: TransitionCause) -> ReceivedEvent | None:
    """The failure event behind the change: the one that caused it; else the failure event of the build that
    failed (CodeBuild's own state change names only the build), or, without a build, the latest failure
    event about this tenant."""
    if cause.event_pk is not None:
        event = ReceivedEvent.objects.filter(pk=cause.event_pk).first()
        if event is not None:
            return event
    failures = ReceivedEvent.objects.filter(
        tenant_id=tenant.pk, detail_type=DetailType.TENANT_PROVISIONING_FAILURE
    ).order_by("-received_at", "-id")
    build_id = cause.build_id or ""
    if not build_id and cause.build_pk:
        build_id = Build.objects.filter(pk=cause.build_pk).values_list("build_id", flat=True).first() or ""
    if build_id:
        # The detail is stored once: the validated copy when validation changed it, else the envelope's.
        return failures.filter(
            Q(detail_override__CODEBUILD_BUILD_ID=build_id)
            | Q(detail_override__isnull=True, envelope__detail__CODEBUILD_BUILD_ID=build_id)
        ).first()
    return failures.first()


def failure_detail(*, tenant: Tenant, cause: TransitionCause) -> tuple[dict[str, Any], ReceivedEvent | None]:
    """The build outputs of the failed provisioning (API_ENDPOINT, secret, context, TF_*), best effort.

    From the failure event (the cause's, else the latest one for the tenant); the secret and context fall
    back to the provisioning request's environment overrides.
    """
    event = _failure_event(tenant=tenant, cause=cause)
    detail: dict[str, Any] = {}
    if event is not None and isinstance(event.detail, dict):
        detail.update(event.detail)
    overrides = ((tenant.builder_config or {}).get("config") or {}).get("environmentOverride") or {}
    for key in ("API_ENDPOINT", "secret", "context", "APP_PLANE_REDIRECT_URL", "TF_STATE_BUCKET", "TF_KEY"):
        if not detail.get(key) and overrides.get(key):
            detail[key] = overrides[key]
    return detail, event


@receiver(tenant_status_changed, dispatch_uid="webhooks.tenant_status_changed")
def on_tenant_status_changed(sender: type, *, change: TenantStatusChange, **_: Any) -> None:
    if not _notifies(change):  # most changes notify nobody: no savepoint for them
        return
    try:
        with transaction.atomic():
            _notify(change)
    except Exception:
        logger.exception("tenant %s: notifying webhooks of %s failed", change.tenant.pk, change.to_status)


def _notifies(change: TenantStatusChange) -> bool:
    """True when ``_notify`` has something to send for this change."""
    return change.to_status in (TenantStatus.PROVISION_FAILED, TenantStatus.INACTIVE) or bool(
        _subscriber_event_type(change)
    )


def _notify(change: TenantStatusChange) -> None:
    tenant, to_status, reason = change.tenant, change.to_status, change.reason
    prefix = f"tenant:{tenant.pk}:v{tenant.version}:{to_status}"
    if to_status == TenantStatus.PROVISION_FAILED:
        detail, event = failure_detail(tenant=tenant, cause=change.cause)
        control_plane_failure_notify(tenant=tenant, detail=detail, dedupe_prefix=prefix, event=event)
        subscribers_notify(
            tenant=tenant,
            event_type=WebhookEventType.TENANT_PROVISIONING_FAILED,
            dedupe_prefix=prefix,
            data=subscriber_data(tenant=tenant, reason=reason),
            event=event,
        )
        tenant_provision_failed_notify(tenant=tenant, reason=reason)
    elif to_status == TenantStatus.INACTIVE:
        subscribers_notify(
            tenant=tenant,
            event_type=WebhookEventType.TENANT_DEPROVISIONED,
            dedupe_prefix=prefix,
            data=subscriber_data(tenant=tenant, reason=reason),
        )
    elif event_type := _subscriber_event_type(change):
        extra = {}
        if event_type in (WebhookEventType.TENANT_UPDATED, WebhookEventType.TENANT_UPDATE_FAILED):
            plan = tenant.plan if event_type == WebhookEventType.TENANT_UPDATED else tenant.pending_plan
            extra = {
                "plan": {key: plan.get(key) for key in ("id", "name", "tier")},
                "previous_tier": tenant.previous_tier,
            }
        subscribers_notify(
            tenant=tenant,
            event_type=event_type,
            dedupe_prefix=prefix,
            data=subscriber_data(tenant=tenant, reason=reason, **extra),
        )


# (from status or None for any, to status) → what subscribers hear of it.
_SUBSCRIBER_EVENTS: dict[tuple[str | None, str], str] = {
    (TenantStatus.DEPLOYING, TenantStatus.ACTIVE): WebhookEventType.TENANT_DEPLOYED,
    (None, TenantStatus.DEPLOY_FAILED): WebhookEventType.TENANT_DEPLOY_FAILED,
    (TenantStatus.UPDATING, TenantStatus.ACTIVE): WebhookEventType.TENANT_UPDATED,
    (None, TenantStatus.UPDATE_FAILED): WebhookEventType.TENANT_UPDATE_FAILED,
    (None, TenantStatus.SUSPENDED): WebhookEventType.TENANT_SUSPENDED,
    (TenantStatus.RESUMING, TenantStatus.ACTIVE): WebhookEventType.TENANT_RESUMED,
}


def _subscriber_event_type(change: TenantStatusChange) -> str:
    """The subscriber event of a status change ("" for none); the chain notifies its own ACTIVE."""
    if change.to_status == TenantStatus.ACTIVE and change.cause.source == CHAIN_SOURCE:
        return ""
    return _SUBSCRIBER_EVENTS.get((change.from_status, change.to_status)) or _SUBSCRIBER_EVENTS.get(
        (None, change.to_status), ""
    )


@receiver(tenant_record_requested, dispatch_uid="webhooks-tenant-record")
def tenant_record_add_deliveries(sender: Any, tenant: Tenant, **kwargs: Any) -> Iterator[str]:
    """The tenant's deployments, deliveries and attempts go into its exported record."""
    return tenant_delivery_lines(tenant_id=tenant.pk)


@receiver(tenant_purging, dispatch_uid="webhooks-tenant-purge")
def tenant_purge_deliveries(sender: Any, tenant: Tenant, **kwargs: Any) -> int:
    """A purged tenant's deliveries and deployments go first (they would cascade from it)."""
    return tenant_deliveries_purge(tenant_id=tenant.pk)
