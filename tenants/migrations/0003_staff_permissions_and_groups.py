"""Staff roles: the tenant action permissions, and the "Read-only staff" and "Operators" groups.

Read-only staff get every view permission of the events, tenants and webhooks apps; operators also retry
provisioning, deprovision, resync, replay events and retry deliveries. Tiers and webhook endpoints are
changed by superusers only (no group holds those change permissions). Permissions are created here
(``post_migrate`` would only create them after every migration ran).

The roles as they were when this migration was written (``orchestrator.staff`` holds today's): a later
change of the live code must not change what this step did.
"""

from django.db import migrations

READ_ONLY_GROUP = "Read-only staff"
OPERATORS_GROUP = "Operators"
STAFF_APPS = ("events", "tenants", "webhooks")
# (app_label, model_name, codename, name)
ACTION_PERMISSIONS = (
    ("tenants", "tenant", "retry_provisioning_tenant", "Can retry a tenant's provisioning"),
    ("tenants", "tenant", "deprovision_tenant", "Can deprovision a tenant"),
    ("tenants", "tenant", "resync_tenant", "Can write a tenant to DynamoDB again"),
    ("events", "receivedevent", "replay_receivedevent", "Can replay received events"),
    ("webhooks", "webhookdelivery", "retry_webhookdelivery", "Can retry webhook deliveries"),
)


def create_groups(apps, schema_editor):
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    group_model = apps.get_model("auth", "Group")

    wanted = []  # (app_label, model, codename, name)
    for label in STAFF_APPS:
        for model in apps.get_app_config(label).get_models():
            opts = model._meta
            wanted.append((label, opts.model_name, f"view_{opts.model_name}", f"Can view {opts.verbose_name_raw}"))
    wanted.extend(ACTION_PERMISSIONS)

    content_types = {}
    for label, model_name in {(label, model_name) for label, model_name, _c, _n in wanted}:
        content_types[label, model_name], _ = content_type_model.objects.get_or_create(
            app_label=label, model=model_name
        )
    existing = {
        (p.content_type_id, p.codename): p
        for p in permission_model.objects.filter(content_type__in=list(content_types.values()))
    }
    view_permissions, action_permissions = [], []
    for label, model_name, codename, name in wanted:
        content_type = content_types[label, model_name]
        permission = existing.get((content_type.pk, codename))
        if permission is None:
            permission = permission_model.objects.create(content_type=content_type, codename=codename, name=name)
        (view_permissions if codename.startswith("view_") else action_permissions).append(permission)

    read_only, _ = group_model.objects.get_or_create(name=READ_ONLY_GROUP)
    read_only.permissions.set(view_permissions)
    operators, _ = group_model.objects.get_or_create(name=OPERATORS_GROUP)
    operators.permissions.set(view_permissions + action_permissions)


def remove_groups(apps, schema_editor):
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
