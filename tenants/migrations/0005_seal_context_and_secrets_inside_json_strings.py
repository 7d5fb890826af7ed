"""Seal what stored tenants still hold in plain now that ``context`` is a secret name and strings that hold
JSON (the ``tenant`` build variable) are looked into; mask the same in build environments and history
entries, which are stored masked (nothing reads them back in plain)."""

from django.db import migrations

from orchestrator.migration_secrets import mask_build_environment, mask_secrets, models_rewrite, seal_secrets


def seal_existing(apps, schema_editor):
    models_rewrite(
        apps,
        {
            "tenants.tenant": dict.fromkeys(["document", "plan", "builder_config", "app_config"], seal_secrets),
            "tenants.build": {"environment": mask_build_environment},
            "tenants.tenanthistory": {"details": mask_secrets},
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_sealed_secrets"),
    ]

    operations = [
        migrations.RunPython(seal_existing, migrations.RunPython.noop, elidable=True),
    ]
