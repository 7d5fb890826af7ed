"""Serializers of the portal's API: the tenant timeline (each history entry with what it refers to) and the
doctor's findings."""

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from orchestrator.links import admin_url
from portal.doctor.base import Finding, Fix
from portal.doctor.fixes import FIX_ACTIONS
from tenants.models import BuildStatus, HistoryKind


class HistoryEventRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    event_id = serializers.CharField()
    detail_type = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()


class HistoryBuildRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    build_id = serializers.CharField()
    purpose = serializers.CharField()
    attempt = serializers.IntegerField()
    status = serializers.ChoiceField(choices=BuildStatus.choices)
    status_reason = serializers.CharField()
    logs_url = serializers.CharField()


class HistoryDeliveryRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    step = serializers.CharField()
    event_type = serializers.CharField()
    url = serializers.CharField()
    status = serializers.CharField()
    status_reason = serializers.CharField()
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer):
    """One timeline entry (``TenantHistory``) with the current state of what it is about."""

    id = serializers.IntegerField(source="entry.pk")
    at = serializers.DateTimeField(source="entry.at")
    kind = serializers.ChoiceField(source="entry.kind", choices=HistoryKind.choices)
    summary = serializers.CharField(source="entry.summary")
    details = serializers.JSONField(source="entry.details", help_text="Secrets masked.")
    actor = serializers.CharField(source="entry.actor", help_text='"system" or the staff user\'s username.')
    ref_type = serializers.CharField(source="entry.ref_type", help_text='"event", "build", "delivery" or "".')
    ref_id = serializers.CharField(source="entry.ref_id")
    event = HistoryEventRefSerializer(allow_null=True, help_text="The received event, when ref_type is event.")
    build = HistoryBuildRefSerializer(allow_null=True, help_text="The build, when ref_type is build.")
    delivery = HistoryDeliveryRefSerializer(allow_null=True, help_text="The delivery, when ref_type is delivery.")


class DoctorFixSerializer(serializers.Serializer):
    """A one-click fix: POST it to ``/api/doctor/fixes/`` (or press its button on the dashboard)."""

    action = serializers.ChoiceField(choices=[(name, action.label) for name, action in FIX_ACTIONS.items()])
    target = serializers.CharField(max_length=255)
    label = serializers.CharField(read_only=True)  # type: ignore[assignment]  # a field named like Field.label

    def to_representation(self, instance: Fix) -> dict[str, Any]:
        return {"action": instance.action, "target": instance.target, "label": FIX_ACTIONS[instance.action].label}


class DoctorFindingSerializer(serializers.Serializer):
    key = serializers.CharField()
    rule = serializers.CharField()
    title = serializers.CharField()
    tenant_id = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    reason = serializers.CharField()
    since = serializers.DateTimeField()
    age_seconds = serializers.SerializerMethodField()
    admin_url = serializers.SerializerMethodField()
    fixes = DoctorFixSerializer(many=True)

    def get_age_seconds(self, finding: Finding) -> int:
        return finding.age_seconds(self.context.get("now") or timezone.now())

    def get_admin_url(self, finding: Finding) -> str:
        return admin_url(finding.admin_path)


class DoctorReportSerializer(serializers.Serializer):
    needs_attention = serializers.BooleanField()
    count = serializers.IntegerField()
    findings = DoctorFindingSerializer(many=True)


def doctor_report(findings: list[Finding]) -> dict[str, Any]:
    """The doctor's answer (API and ``manage.py doctor --json``)."""
    context = {"now": timezone.now()}
    rows = DoctorFindingSerializer(findings, many=True, context=context).data
    return {"needs_attention": bool(findings), "count": len(findings), "findings": rows}
