"""The bodies the original service sent, field for field (see notes/original.md §2.5), and the subscriber body.

Key order follows the original's ``JSON.stringify`` calls; ``Number(x)`` is mirrored by ``js_number``
(``Number(undefined)`` is ``NaN``, which JSON writes as ``null``).
"""

from datetime import datetime
from typing import Any


def js_number(value: Any) -> int | float | None:
    """JavaScript's ``Number(value)`` for the string values a build exports; NaN becomes None (null)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if value is None:
        return None
    text = str(value).strip()
    if text == "":
        return 0
    try:
        number = float(text)
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() else number


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    """``JSON.stringify`` drops undefined values; absent keys in the input stay absent in the output."""
    return {key: value for key, value in mapping.items() if value is not None}


def app_plane_bootstrap_payload(*, tenant: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    """``createTenantPayload``: the tenant, its first contact, and the auth client the app plane sets up."""
    contacts = tenant.get("contacts") or []
    contact = contacts[0] if contacts and isinstance(contacts[0], dict) else {}
    auth_client = {
        "clientId": detail.get("CLIENT_ID"),
        "clientSecret": detail.get("CLIENT_SECRET"),
        "redirectUrl": detail.get("APP_PLANE_REDIRECT_URL"),
        "secret": detail.get("secret"),
        "accessTokenExpiration": js_number(detail.get("ACCESS_TOKEN_EXPIRATION")),
        "refreshTokenExpiration": js_number(detail.get("REFRESH_TOKEN_EXPIRATION")),
        "authCodeExpiration": js_number(detail.get("AUTH_CODE_EXPIRATION")),
    }
    payload = {
        "tenant": tenant,
        "email": contact.get("email"),
        "phone": contact.get("phone"),
        "username": contact.get("username"),
        "tenantName": tenant.get("name"),
        "tenantKey": tenant.get("key"),
        "firstName": contact.get("firstName"),
        "lastName": contact.get("lastName"),
        "middleName": contact.get("middleName"),
        "cognitoAuthId": detail.get("COGNITO_AUTH_ID"),
        "authClient": {
            key: value
            for key, value in auth_client.items()
            # Number(undefined) is NaN -> null (kept); undefined strings are dropped.
            if value is not None or key.endswith("Expiration")
        },
    }
    return _drop_none({k: v for k, v in payload.items() if k == "authClient" or v is not None})


def feature_service_bootstrap_payload(*, tenant: dict[str, Any], plan: dict[str, Any] | None) -> dict[str, Any]:
    """``{"tenant", "plan"}`` with the stored plan config (the original lost it and sent no ``plan``)."""
    return _drop_none({"tenant": tenant, "plan": plan or None})


def control_plane_webhook_payload(*, tenant_id: str, detail: dict[str, Any], status: int) -> dict[str, Any]:
    """``createPayload``: type 0 (RESOURCES_PROVISIONED) with status 1 (success) or 0 (failure)."""
    return {
        "initiatorId": tenant_id,
        "type": 0,
        "data": _drop_none(
            {
                "status": status,
                "resources": [
                    {
                        "type": "s3",
                        "metadata": _drop_none({"bucket": detail.get("TF_STATE_BUCKET"), "path": detail.get("TF_KEY")}),
                    }
                ],
                "appPlaneUrl": detail.get("APP_PLANE_REDIRECT_URL"),
            }
        ),
    }


def subscriber_payload(*, event_type: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """Standard Webhooks body: ``{"type", "timestamp", "data"}``."""
    return {"type": event_type, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}
