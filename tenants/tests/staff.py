"""Staff users at each permission level, for the portal's admin, API and browser tests."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from orchestrator.staff import OPERATORS_GROUP, READ_ONLY_GROUP, staff_groups_ensure

PASSWORD = "portal-test-pw"
LEVELS = ("anonymous", "read_only", "operator", "superuser")


def staff_user(level: str, username: str | None = None):
    """A user of ``level`` (``read_only``, ``operator`` or ``superuser``) with password ``PASSWORD``.

    The groups come from the data migration; a transactional test's flush removes them, so they are
    ensured here (idempotent).
    """
    staff_groups_ensure()
    users = get_user_model().objects
    username = username or f"{level}-{users.count() + 1}"
    if level == "superuser":
        return users.create_superuser(username=username, password=PASSWORD, email="")
    user = users.create_user(username=username, password=PASSWORD, is_staff=True)
    group = {"read_only": READ_ONLY_GROUP, "operator": OPERATORS_GROUP}[level]
    user.groups.add(Group.objects.get(name=group))
    return user
