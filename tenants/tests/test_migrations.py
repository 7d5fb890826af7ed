"""The tenants app's data migrations, run again on today's tables: each keeps its own copy of what it needs."""

import importlib
import json

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.db import connection

from tenants.models import Tenant
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

STAFF_GROUPS = importlib.import_module("tenants.migrations.0003_staff_permissions_and_groups")
SEALED_SECRETS = importlib.import_module("tenants.migrations.0004_sealed_secrets")
OPERATIONS = importlib.import_module("tenants.migrations.0009_tenant_operations")


def _stored_plan(tenant: Tenant) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT plan FROM tenants_tenant WHERE id = %s", [tenant.pk])
        value = cursor.fetchone()[0]
    return value if isinstance(value, str) else json.dumps(value)


def test_rows_stored_before_sealing_are_sealed_by_the_migration_step():
    # given a tenant row written before sealing existed (a plain secret in its plan)
    tenant = TenantFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tenants_tenant SET plan = %s WHERE id = %s",
            [json.dumps({"tier": "BASIC", "token": "t-4"}), tenant.pk],
        )
    assert Tenant.objects.get(pk=tenant.pk).plan["token"] == "t-4"  # plaintext rows still read

    # when the migration's data step runs
    SEALED_SECRETS.seal_existing(apps, None)

    # then the secret is sealed in the database and reads plain; running it again changes nothing
    sealed = _stored_plan(tenant)
    assert "t-4" not in sealed
    assert Tenant.objects.get(pk=tenant.pk).plan == {"tier": "BASIC", "token": "t-4"}
    SEALED_SECRETS.seal_existing(apps, None)
    assert _stored_plan(tenant) == sealed


def test_the_staff_groups_step_creates_both_groups_and_removes_them_when_reversed():
    # given no staff groups
    Group.objects.filter(name__in=[STAFF_GROUPS.READ_ONLY_GROUP, STAFF_GROUPS.OPERATORS_GROUP]).delete()

    # when the migration's data step runs
    STAFF_GROUPS.create_groups(apps, None)

    # then read-only staff may view every model of the three apps, and operators also take the actions
    read_only = set(Group.objects.get(name="Read-only staff").permissions.values_list("codename", flat=True))
    operators = set(Group.objects.get(name="Operators").permissions.values_list("codename", flat=True))
    assert {"view_tenant", "view_receivedevent", "view_webhookdelivery"} <= read_only
    assert all(codename.startswith("view_") for codename in read_only)
    assert operators - read_only == {codename for _, _, codename, _ in STAFF_GROUPS.ACTION_PERMISSIONS}

    # and reversing it removes them
    STAFF_GROUPS.remove_groups(apps, None)
    assert not Group.objects.filter(name__in=["Read-only staff", "Operators"]).exists()


def test_the_operations_step_gives_operators_the_new_permissions_and_takes_them_back():
    # given the staff groups without the operation permissions
    STAFF_GROUPS.create_groups(apps, None)
    OPERATIONS.revoke_operators(apps, None)

    # when the migration's data step runs
    OPERATIONS.grant_operators(apps, None)

    # then operators may update and suspend tenants, read-only staff may not
    operators = set(Group.objects.get(name="Operators").permissions.values_list("codename", flat=True))
    read_only = set(Group.objects.get(name="Read-only staff").permissions.values_list("codename", flat=True))
    assert {"update_tenant", "suspend_tenant"} <= operators
    assert not {"update_tenant", "suspend_tenant"} & read_only

    # and reversing it removes the permissions
    OPERATIONS.revoke_operators(apps, None)
    operators = set(Group.objects.get(name="Operators").permissions.values_list("codename", flat=True))
    assert not {"update_tenant", "suspend_tenant"} & operators
