"""Endpoints' custom header values are sealed at rest (every value: they carry credentials under any name);
rows written before are sealed here. Request headers stored on attempts keep only the engine's own
non-secret values; deliveries' payloads get ``context`` and secrets inside JSON strings masked."""

from django.db import migrations

import orchestrator.sealing
from orchestrator.migration_secrets import mask_request_headers, mask_secrets, models_rewrite, seal_every_value


def seal_existing(apps, schema_editor):
    models_rewrite(
        apps,
        {
            "webhooks.webhookendpoint": {"custom_headers": seal_every_value},
            "webhooks.deliveryattempt": {"request_headers": mask_request_headers},
            "webhooks.webhookdelivery": {"payload": mask_secrets},
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0003_endpoint_circuit_breaker"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookendpoint",
            name="custom_headers",
            field=orchestrator.sealing.SealedValuesJSONField(
                blank=True,
                default=dict,
                help_text="Sent with every call; cannot override signatures. Values are write-only.",
            ),
        ),
        migrations.RunPython(seal_existing, migrations.RunPython.noop, elidable=True),
    ]
