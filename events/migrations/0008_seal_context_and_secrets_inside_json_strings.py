"""Seal what stored events still hold in plain now that ``context`` is a secret name and strings that hold
JSON are looked into; mask secrets in handler results (stored for staff to read, never read back)."""

from django.db import migrations

from orchestrator.migration_secrets import mask_secrets, models_rewrite, seal_secrets


def seal_existing(apps, schema_editor):
    models_rewrite(
        apps,
        {
            "events.receivedevent": {"envelope": seal_secrets, "detail_override": seal_secrets, "result": mask_secrets},
            "events.outboxevent": {"detail": seal_secrets},
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0007_oauth_client"),
    ]

    operations = [
        migrations.RunPython(seal_existing, migrations.RunPython.noop, elidable=True),
    ]
