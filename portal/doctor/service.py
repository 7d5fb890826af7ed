"""Running the doctor: its findings, its fixes (permission-checked, only while the finding lasts) and the
announcement of new findings as ``tenant.stuck``."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from orchestrator.errors import ApplicationError
from portal.doctor.base import Finding, Fix
from portal.doctor.fixes import FIX_ACTIONS
from portal.doctor.rules import RULES
from portal.models import DoctorNotice
from tenants.models import Tenant
from webhooks.models import WebhookEventType
from webhooks.services.operations import OperationalNotice, operational_notice_emit

logger = logging.getLogger(__name__)


def doctor_findings(*, now: datetime | None = None) -> list[Finding]:
    """Everything that needs attention, oldest first. A generic rule's finding is left out for a tenant a
    specific rule already explains."""
    now = now or timezone.now()
    specific: list[Finding] = []
    generic: list[Finding] = []
    for rule in RULES:
        (generic if rule.generic else specific).extend(rule.findings(now=now))
    explained = {finding.tenant_id for finding in specific if finding.tenant_id}
    findings = specific + [finding for finding in generic if finding.tenant_id not in explained]
    return sorted(findings, key=lambda finding: finding.since)


@dataclass(frozen=True)
class FixResult:
    changed: bool  # False: nothing needed fixing any more ("already fixed" is a message, not an error)
    message: str


def doctor_fix(*, fix: Fix, user: User) -> FixResult:
    """Apply one fix a current finding offers, as ``user`` (who needs the fix's permission)."""
    action = FIX_ACTIONS.get(fix.action)
    if action is None:
        raise ApplicationError(f"Unknown fix {fix.action!r}.", fields={"action": [f"One of: {', '.join(FIX_ACTIONS)}"]})
    if not user.has_perm(action.permission):
        raise PermissionDenied(f"You need the {action.permission} permission.")
    if not any(fix in finding.fixes for finding in doctor_findings()):
        return FixResult(False, f"Nothing to do: no finding needs {action.label.lower()} for {fix.target} any more.")
    message = action.run(fix.target, user)
    logger.info("doctor fix %s on %s by %s", fix.action, fix.target, user.get_username())
    return FixResult(True, message)


def doctor_announce(*, now: datetime | None = None) -> int:
    """Announce each new finding once (``tenant.stuck`` to subscribers, an alert mail); forget the findings
    that are gone. Returns how many were announced."""
    findings = doctor_findings(now=now)
    keys = {finding.key for finding in findings}
    announced = 0
    for finding in findings:
        with transaction.atomic():
            _notice, created = DoctorNotice.objects.get_or_create(
                key=finding.key, defaults={"rule": finding.rule, "tenant_id": finding.tenant_id}
            )
            if created:
                _announce(finding)
                announced += 1
    DoctorNotice.objects.exclude(key__in=keys).delete()
    return announced


def _announce(finding: Finding) -> None:
    tenant = Tenant.objects.filter(pk=finding.tenant_id).first() if finding.tenant_id else None
    operational_notice_emit(
        notice=OperationalNotice(
            kind=WebhookEventType.TENANT_STUCK,
            subject_key=f"{finding.rule}:{finding.object_type}:{finding.object_id}",
            occurrence=finding.key,
            title=f"{finding.title} ({finding.object_type} {finding.object_id})",
            reason=finding.reason,
            admin_path=finding.admin_path,
            tenant=tenant,
            details={
                "rule": finding.rule,
                "object": {"type": finding.object_type, "id": finding.object_id},
                "since": finding.since.isoformat(),
                "fixes": [{"action": fix.action, "target": fix.target} for fix in finding.fixes],
            },
        )
    )
