"""Users, for the tests of every app: plain users, staff at each permission level, superusers.

Here, at the bottom of the layers, so that each app's tests (and the portal's) share one definition.
"""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from orchestrator.redis_clients import redis_client, redis_key
from orchestrator.staff import OPERATORS_GROUP, READ_ONLY_GROUP, staff_groups_ensure

PASSWORD = "test-password-7f3c"
LEVELS = ("anonymous", "read_only", "operator", "superuser")
LEVEL_GROUPS = {"read_only": READ_ONLY_GROUP, "operator": OPERATORS_GROUP}


class UserFactory(factory.django.DjangoModelFactory):
    """A user who can log in with ``PASSWORD``; no staff access."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    """Staff with no permission yet (add them, or use ``staff_user`` for a level)."""

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True


class SuperuserFactory(StaffFactory):
    username = factory.Sequence(lambda n: f"superuser{n}")
    is_superuser = True


def staff_user(level: str, username: str | None = None):
    """A user of ``level`` (``read_only``, ``operator`` or ``superuser``) with password ``PASSWORD``.

    The groups come from a data migration; a transactional test's flush removes them, so they are ensured
    here (idempotent).
    """
    named = {"username": username} if username else {}
    if level == "superuser":
        return SuperuserFactory(**named)
    staff_groups_ensure()
    user = StaffFactory(**named)
    user.groups.add(Group.objects.get(name=LEVEL_GROUPS[level]))
    return user


def signed_in_superuser(client: Client) -> Client:
    """``client`` (Django's test client) signed in as a new superuser, kept as ``client.user`` so a test can
    check who its staff actions are recorded with."""
    client.user = SuperuserFactory()
    client.force_login(client.user)
    return client


def alert_mail_windows_clear() -> None:
    """Forget the alert mails' rate-limit windows of this test database: Redis outlives a test run, and a window
    an earlier run left (same database name, same endpoint ids) would hold this run's mail back."""
    client = redis_client()
    for key in client.scan_iter(match=redis_key("alert-mail", "*")):
        client.delete(key)
