"""Output serializers of the tenant timeline API: each history entry with what it refers to."""

from rest_framework import serializers

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
