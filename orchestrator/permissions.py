"""API permission classes: the same Django permissions the admin checks (see ``orchestrator.staff``).

- ``StaffModelPermissions``: active staff, and the model permission of the method (GET needs ``view``,
  DRF's default lets any authenticated user read).
- ``SuperuserWrites``: reads as above, writes by superusers only (tiers).
- ``action_permission("tenants.resync_tenant")``: active staff holding that action permission.
"""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.views import APIView


def is_active_staff(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def acting_user(user: User | AnonymousUser) -> User:
    """The signed-in user a staff action (admin or API) is recorded against: ``request.user`` narrowed to a
    user row. Both let no anonymous request reach an action; one that got through would be refused."""
    if isinstance(user, AnonymousUser):
        raise PermissionDenied
    return user


def _is_staff(request: Request) -> bool:
    return is_active_staff(request.user)


class StaffModelPermissions(DjangoModelPermissions):
    message = "You need staff access and the model permission for this."
    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: APIView) -> bool:
        return _is_staff(request) and super().has_permission(request, view)


class SuperuserWrites(StaffModelPermissions):
    message = "Only superusers change this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method not in SAFE_METHODS and not request.user.is_superuser:
            return False
        return super().has_permission(request, view)


def action_permission(perm: str) -> type[BasePermission]:
    """A permission class for one staff action (``"app_label.codename"``)."""

    class ActionPermission(BasePermission):
        message = f"You need the {perm} permission."

        def has_permission(self, request: Request, view: Any) -> bool:
            return _is_staff(request) and request.user.has_perm(perm)

    ActionPermission.__name__ = f"Has_{perm.replace('.', '_')}"
    return ActionPermission
