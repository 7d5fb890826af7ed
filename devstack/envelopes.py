"""EventBridge envelopes as the bus hands them to the intake, for the bench and the drills.

One shape for every sender so a change to the envelope (or to a provisioning request) is made once.
"""

import json
import uuid
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"


def bus_envelope(
    *, detail_type: str, source: str, detail: dict[str, Any], time: str, event_id: str | None = None
) -> dict[str, Any]:
    """``detail`` wrapped as EventBridge delivers it (a fresh id unless given)."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def provisioning_envelope(
    *,
    tenant_id: str,
    key: str,
    name: str,
    source: str,
    secret: str,
    context: str,
    builder: str = "CODE_BUILD",
    event_id: str | None = None,
) -> dict[str, Any]:
    """TENANT_PROVISIONING for one tenant on tier BASIC, the build's secret and context in its environment."""
    tenant = {
        "id": tenant_id,
        "name": name,
        "key": key,
        "contacts": [{"email": f"ops@{key}.example", "firstName": "Ada", "lastName": "Lovelace", "isPrimary": True}],
    }
    detail = {
        "tenant": tenant,
        "planConfig": {"id": "plan-basic", "name": "Basic", "tier": "BASIC", "sizeConfig": {"MAX_USERS": "50"}},
        "builderConfig": {
            "type": builder,
            "config": {
                "environmentOverride": {
                    "tenant": json.dumps(tenant, separators=(",", ":")),
                    "secret": secret,
                    "context": context,
                }
            },
        },
        "appConfig": {"preferredSubdomain": key},
    }
    return bus_envelope(
        detail_type="TENANT_PROVISIONING", source=source, detail=detail, time="2025-01-15T10:30:00Z", event_id=event_id
    )
