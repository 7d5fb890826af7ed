"""``POST /oauth/token``: the client credentials grant (RFC 6749 sections 4.4, 2.3.1, 5.1 and 5.2).

Answers in OAuth's own shapes, not the API's ``{"error": {...}}``: an OAuth client (an EventBridge
connection) reads ``access_token`` / ``expires_in``, and ``error`` as a string. Client authentication by
HTTP Basic or by ``client_id`` / ``client_secret`` in the body, not both. Form-encoded per the RFC; JSON is
accepted too, as some clients send it. Mounted only when ``oauth_client`` is in INTAKE_AUTH_SCHEMES.
"""

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.oauth.services import OAuthError, oauth_token_issue
from orchestrator.openapi import error_response

REALM = "orchestrator-token"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from an HTTP Basic header (each form-urlencoded, RFC 6749 2.3.1)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise OAuthError("invalid_client", "Malformed Basic credentials.", status=401) from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise OAuthError("invalid_client", "Malformed Basic credentials.", status=401)
    return unquote_plus(client_id), unquote_plus(secret)


def _field(data: Any, name: str) -> str:
    value = data.get(name, "") if hasattr(data, "get") else ""
    if not isinstance(value, str):
        raise OAuthError("invalid_request", f"{name} must be a string.")
    return value


TOKEN_REQUEST = inline_serializer(
    "ClientCredentialsTokenRequest",
    {
        "grant_type": serializers.ChoiceField(choices=["client_credentials"]),
        "scope": serializers.CharField(required=False, help_text='Optional; the only scope is "intake".'),
        "client_id": serializers.CharField(required=False, help_text="Unless sent with HTTP Basic."),
        "client_secret": serializers.CharField(required=False, help_text="Unless sent with HTTP Basic."),
    },
)
TOKEN_RESPONSE = inline_serializer(
    "AccessTokenResponse",
    {
        "access_token": serializers.CharField(),
        "token_type": serializers.ChoiceField(choices=["Bearer"]),
        "expires_in": serializers.IntegerField(),
        "scope": serializers.CharField(),
    },
)
TOKEN_ERROR = inline_serializer(
    "OAuthErrorResponse", {"error": serializers.CharField(), "error_description": serializers.CharField()}
)


class TokenApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser, JSONParser]

    @extend_schema(
        operation_id="oauth_token",
        tags=["oauth"],
        summary="Get an intake access token (OAuth 2.0 client credentials)",
        description=(
            "For EventBridge connections with `OAUTH_CLIENT_CREDENTIALS` authorization: authenticate with a "
            "client id and secret created in the admin (HTTP Basic, or `client_id`/`client_secret` in the body) "
            "and send the token to the intake as `Authorization: Bearer ...`."
        ),
        request={"application/x-www-form-urlencoded": TOKEN_REQUEST, "application/json": TOKEN_REQUEST},
        responses={
            200: TOKEN_RESPONSE,
            400: OpenApiResponse(TOKEN_ERROR, description="invalid_request, unsupported_grant_type, invalid_scope"),
            401: OpenApiResponse(TOKEN_ERROR, description="invalid_client: unknown, wrong or revoked credentials"),
            404: error_response("The endpoint is off (oauth_client not in INTAKE_AUTH_SCHEMES)."),
        },
        examples=[
            OpenApiExample(
                "client credentials (or send them with HTTP Basic)",
                value={"grant_type": "client_credentials", "client_id": "oc-3f2a...", "client_secret": "********"},
                request_only=True,
            ),
            OpenApiExample(
                "token",
                value={
                    "access_token": "eyJhbGciOiJIUzI1NiIs...",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": "intake",
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        if "oauth_client" not in settings.INTAKE_AUTH_SCHEMES:
            raise exceptions.NotFound("The token endpoint is off (oauth_client is not in INTAKE_AUTH_SCHEMES).")
        authorization = request.headers.get("Authorization", "")
        basic = authorization.lower().startswith("basic ")
        try:
            try:
                data = request.data
            except (exceptions.ParseError, exceptions.UnsupportedMediaType):
                raise OAuthError("invalid_request", "Send a form-encoded (or JSON) body.") from None
            credentials = _basic_credentials(authorization)
            in_body = _field(data, "client_id") or _field(data, "client_secret")
            if basic and in_body:
                raise OAuthError("invalid_request", "Authenticate the client one way only (Basic or the body).")
            client_id, client_secret = credentials or (_field(data, "client_id"), _field(data, "client_secret"))
            issued = oauth_token_issue(
                grant_type=_field(data, "grant_type"),
                client_id=client_id,
                client_secret=client_secret,
                scope=_field(data, "scope"),
            )
        except OAuthError as error:
            headers = dict(NO_STORE)
            if error.status == 401 and basic:
                headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
            body: dict[str, str | int] = {"error": error.error, "error_description": error.description}
            return Response(body, status=error.status, headers=headers)
        body = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        return Response(body, headers=NO_STORE)
