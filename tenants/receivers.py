"""Model signal receivers: every committed change of a tier is mirrored to DynamoDB, and a tenant's failed
event is put on its timeline (the events app does not know tenants).

Tenants are written by the tenants services only, which schedule their DynamoDB write themselves; tiers and
their variables are also saved by the admin's forms, so these receivers catch every ``save()``/``delete()``.
sbt-aws's control plane is answered from here too: on a tenant's status change and when one of its requests
fails.
"""

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from events.models import EventStatus, ReceivedEvent
from tenants.models import TenantStatus, Tier, TierVariable
from tenants.services.history import history_record_event_failure
from tenants.services.sbt import sbt_answer_failed_request, sbt_answer_status_change, sbt_answers_status
from tenants.services.sync import tier_mark_changed, tier_sync_schedule
from tenants.signals import TenantStatusChange, tenant_status_changed

logger = logging.getLogger(__name__)


@receiver(post_save, sender=Tier, dispatch_uid="tenants.tier_saved")
def tier_saved(sender: type[Tier], instance: Tier, **kwargs: Any) -> None:
    tier_sync_schedule(name=instance.name)
    previous = getattr(instance, "_loaded_name", None)
    if previous and previous != instance.name:
        tier_sync_schedule(name=previous)  # the old name's item is deleted (no tier has that name now)
    instance._loaded_name = instance.name


@receiver(post_delete, sender=Tier, dispatch_uid="tenants.tier_deleted")
def tier_deleted(sender: type[Tier], instance: Tier, **kwargs: Any) -> None:
    tier_sync_schedule(name=instance.name)


@receiver(post_save, sender=TierVariable, dispatch_uid="tenants.tier_variable_saved")
@receiver(post_delete, sender=TierVariable, dispatch_uid="tenants.tier_variable_deleted")
def tier_variable_changed(sender: type[TierVariable], instance: TierVariable, **kwargs: Any) -> None:
    tier_mark_changed(tier_id=instance.tier_id)


@receiver(post_save, sender=ReceivedEvent, dispatch_uid="tenants.event_failed")
def event_failed(sender: type[ReceivedEvent], instance: ReceivedEvent, **kwargs: Any) -> None:
    """A tenant's event ended ``failed`` (refused, or out of attempts): put it on the tenant's timeline."""
    update_fields = kwargs.get("update_fields")
    if instance.status != EventStatus.FAILED or not instance.tenant_id:
        return
    if update_fields is not None and "status" not in update_fields:
        return
    history_record_event_failure(event=instance)
    sbt_answer_failed_request(event=instance)


@receiver(tenant_status_changed, dispatch_uid="tenants.sbt_status_answer")
def sbt_status_answer(sender: type, *, change: TenantStatusChange, **_: Any) -> None:
    """Tell sbt-aws's control plane (through the outbox, in the status change's transaction) what became of a
    tenant it asked for. A failure here is logged and never undoes the status change (a savepoint isolates it).
    ACTIVE answers an onboarding only when it ends a deployment: after an update or a resumption it answers
    nothing (sbt-aws's activate/deactivate requests are still refused, ``sbt_activation_refuse``)."""
    if not sbt_answers_status(to_status=change.to_status):  # no savepoint for what answers nothing
        return
    if change.to_status == TenantStatus.ACTIVE and change.from_status != TenantStatus.DEPLOYING:
        return
    try:
        with transaction.atomic():
            sbt_answer_status_change(
                tenant=change.tenant,
                to_status=change.to_status,
                reason=change.reason,
                context=change.cause.timeline_details(),
            )
    except Exception:
        logger.exception("tenant %s: answering sbt-aws of %s failed", change.tenant.pk, change.to_status)
