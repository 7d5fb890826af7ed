"""Staff roles: the permissions behind the portal's actions and the two groups built from them.

- "Read-only staff": the view permission of every model of the orchestrator's apps; no action.
- "Operators": the same, plus the action permissions below (retry, replay, deprovision, resync, update and roll
  back, suspend and resume).
- Superusers (every permission) are the only ones who change tiers and webhook endpoints: neither group
  holds an add/change/delete permission.

The groups were first created by a data migration (``tenants/migrations/0003_staff_permissions_and_groups.py``,
which keeps its own copy of these roles); ``staff_groups_ensure`` creates or completes them (idempotent).
"""

from typing import Any

from django.apps import apps as global_apps

READ_ONLY_GROUP = "Read-only staff"
OPERATORS_GROUP = "Operators"
STAFF_APPS = ("events", "tenants", "webhooks")

# (app_label, model_name, codename, name): the actions staff can be allowed to take.
ACTION_PERMISSIONS: tuple[tuple[str, str, str, str], ...] = (
    ("tenants", "tenant", "retry_provisioning_tenant", "Can retry a tenant's provisioning"),
    ("tenants", "tenant", "deprovision_tenant", "Can deprovision a tenant"),
    ("tenants", "tenant", "resync_tenant", "Can write a tenant to DynamoDB again"),
    ("tenants", "tenant", "update_tenant", "Can update a tenant's plan or roll an update back"),
    ("tenants", "tenant", "suspend_tenant", "Can suspend and resume a tenant"),
    ("events", "receivedevent", "replay_receivedevent", "Can replay received events"),
    ("webhooks", "webhookdelivery", "retry_webhookdelivery", "Can retry webhook deliveries"),
)

# Dotted names, for ``user.has_perm`` and the API's permission classes.
PERM_RETRY_PROVISIONING = "tenants.retry_provisioning_tenant"
PERM_DEPROVISION = "tenants.deprovision_tenant"
PERM_RESYNC = "tenants.resync_tenant"
PERM_UPDATE = "tenants.update_tenant"
PERM_SUSPEND = "tenants.suspend_tenant"
PERM_REPLAY_EVENT = "events.replay_receivedevent"
PERM_RETRY_DELIVERY = "webhooks.retry_webhookdelivery"
# Django's own view permission: enough for reads that write nothing (the dry run).
PERM_VIEW_EVENT = "events.view_receivedevent"
# Pipeline runs (PipelineRun's Meta): granted to users or groups one by one, not (yet) to "Operators".
PERM_APPROVE_STEP = "tenants.approve_pipeline_step"
PERM_MANAGE_RUN = "tenants.manage_pipeline_run"


def staff_groups_ensure(*, apps: Any = global_apps) -> dict[str, int]:
    """Create (or complete) the action permissions and the two staff groups. Returns permissions per group.

    ``apps`` is the historical registry when run from a migration: permissions are created here rather than
    left to ``post_migrate``, which runs only after every migration.
    """
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    group_model = apps.get_model("auth", "Group")

    wanted: list[tuple[str, str, str, str]] = []  # (app_label, model, codename, name)
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
    view_permissions: list[Any] = []
    action_permissions: list[Any] = []
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
    return {READ_ONLY_GROUP: len(view_permissions), OPERATORS_GROUP: len(view_permissions) + len(action_permissions)}
