"""Endpoints' custom header values are sealed at rest (every value: they carry credentials under any name);
rows written before are sealed here. Request headers stored on attempts keep only the engine's own
non-secret values; deliveries' payloads get ``context`` and secrets inside JSON strings masked."""

from django.db import migrations

import orchestrator.sealing
from orchestrator import migration_secrets


def seal_existing(apps, schema_editor):
    migration_secrets.rows_rewrite(
        apps.get_model("webhooks", "webhookendpoint"), {"custom_headers": migration_secrets.seal_every_value}
    )
    migration_secrets.rows_rewrite(
        apps.get_model("webhooks", "deliveryattempt"), {"request_headers": migration_secrets.mask_request_headers}
    )
    migration_secrets.rows_rewrite(
        apps.get_model("webhooks", "webhookdelivery"), {"payload": migration_secrets.mask_secrets}
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
