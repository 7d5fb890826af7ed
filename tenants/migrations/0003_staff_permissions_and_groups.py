"""Staff roles: the tenant action permissions, and the "Read-only staff" and "Operators" groups.

See ``orchestrator.staff``: read-only staff get every view permission of the events, tenants and webhooks
apps; operators also retry provisioning, deprovision, resync, replay events and retry deliveries.
Tiers and webhook endpoints are changed by superusers only (no group holds those change permissions).
Permissions are created here (``post_migrate`` would only create them after every migration ran).
"""

from django.db import migrations


def create_groups(apps, schema_editor):
    from orchestrator.staff import staff_groups_ensure

    staff_groups_ensure(apps=apps)


def remove_groups(apps, schema_editor):
    from orchestrator.staff import OPERATORS_GROUP, READ_ONLY_GROUP

    apps.get_model("auth", "Group").objects.filter(name__in=[READ_ONLY_GROUP, OPERATORS_GROUP]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("events", "0003_replay_permission"),
        ("tenants", "0002_build_event_claim_history_ref"),
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="tenant",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("retry_provisioning_tenant", "Can retry a tenant's provisioning"),
                    ("deprovision_tenant", "Can deprovision a tenant"),
                    ("resync_tenant", "Can write a tenant to DynamoDB again"),
                ],
            },
        ),
        migrations.RunPython(create_groups, remove_groups),
    ]
