"""What the apps' staff API views share: the admin's model permissions, and reading a validated body."""

from typing import Any

from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request

from orchestrator.permissions import StaffModelPermissions


# No docstring: drf-spectacular would take it as the description of every operation that has none.
# An endpoint on one model for staff holding the admin's permission on it (``queryset`` names the model).
class StaffModelApi(GenericAPIView):
    permission_classes = [StaffModelPermissions]


def validated_body(serializer_class: type[serializers.Serializer], request: Request, **options: Any) -> dict[str, Any]:
    """The request body as ``serializer_class`` validates it; invalid input answers 400 naming the fields."""
    body = serializer_class(data=request.data, **options)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)
