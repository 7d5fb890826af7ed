"""Seal what stored tenants still hold in plain now that ``context`` is a secret name and strings that hold
JSON (the ``tenant`` build variable) are looked into; mask the same in build environments and history
entries, which are stored masked (nothing reads them back in plain)."""

from django.db import migrations

from orchestrator import migration_secrets


def seal_existing(apps, schema_editor):
    seal = migration_secrets.seal_secrets
    migration_secrets.rows_rewrite(
        apps.get_model("tenants", "tenant"),
        {"document": seal, "plan": seal, "builder_config": seal, "app_config": seal},
    )
    migration_secrets.rows_rewrite(
        apps.get_model("tenants", "build"), {"environment": migration_secrets.mask_build_environment}
    )
    migration_secrets.rows_rewrite(
        apps.get_model("tenants", "tenanthistory"), {"details": migration_secrets.mask_secrets}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_sealed_secrets"),
    ]

    operations = [
        migrations.RunPython(seal_existing, migrations.RunPython.noop, elidable=True),
    ]
