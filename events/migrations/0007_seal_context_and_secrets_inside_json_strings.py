"""Seal what stored events still hold in plain now that ``context`` is a secret name and strings that hold
JSON are looked into; mask secrets in handler results (stored for staff to read, never read back)."""

from django.db import migrations

from orchestrator import migration_secrets


def seal_existing(apps, schema_editor):
    received, outbox = apps.get_model("events", "receivedevent"), apps.get_model("events", "outboxevent")
    seal = migration_secrets.seal_secrets
    migration_secrets.rows_rewrite(
        received, {"envelope": seal, "detail_override": seal, "result": migration_secrets.mask_secrets}
    )
    migration_secrets.rows_rewrite(outbox, {"detail": seal})


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0006_detail_stored_once"),
    ]

    operations = [
        migrations.RunPython(seal_existing, migrations.RunPython.noop, elidable=True),
    ]
