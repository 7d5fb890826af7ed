"""The control planes the intake speaks ("dialects"), switched on by ``EVENT_DIALECTS``.

- ``original``: the original tenant-management service's ``TENANT_PROVISIONING`` / ``TENANT_DEPROVISIONING``;
- ``sbt``: AWS's SaaS Builder Toolkit (``events.dialects.sbt``), whose requests are mapped onto the same
  operations (``tenants.services.sbt``) and answered on its bus.

Both may be on at once. The types that are not a control plane's requests (build outcomes, the deployment
step, CodeBuild's own events) are always accepted. A dialect that is off has its requests refused at the
intake (400, unsupported detail-type) and left out of the EventBridge rules ``bootstrap_aws`` creates.
"""

import functools

from django.conf import settings
from rest_framework import serializers

from events.catalogue import DETAIL_SCHEMAS, DetailType
from events.dialects.sbt import SBT_DETAIL_SCHEMAS, SbtDetailType

ORIGINAL = "original"
SBT = "sbt"
DIALECT_REQUESTS: dict[str, tuple[str, ...]] = {
    ORIGINAL: (DetailType.TENANT_PROVISIONING, DetailType.TENANT_DEPROVISIONING),
    SBT: SbtDetailType.REQUESTS,
}


def enabled_dialects() -> frozenset[str]:
    return frozenset(name.strip() for name in settings.EVENT_DIALECTS)


def dialect_enabled(name: str) -> bool:
    return name in enabled_dialects()


@functools.cache
def _refused(enabled: frozenset[str]) -> frozenset[str]:
    return frozenset(name for dialect, names in DIALECT_REQUESTS.items() if dialect not in enabled for name in names)


def refused_detail_types() -> frozenset[str]:
    """The requests of the dialects that are off (computed once per setting value: the intake asks per event)."""
    return _refused(enabled_dialects())


def detail_schema(detail_type: str) -> type[serializers.Serializer]:
    """The detail schema of any type a dialect or the catalogue defines."""
    return DETAIL_SCHEMAS.get(detail_type) or SBT_DETAIL_SCHEMAS[detail_type]
