"""boto3 client factory: one place that knows endpoints, region, timeouts and retry policy.

Endpoints come from settings (``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``). With an endpoint
set and no credentials anywhere in the default chain (an emulator such as moto or DynamoDB Local), fixed
placeholder credentials are used; with no endpoint the normal chain talks to real AWS.
"""

import threading
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config
from django.conf import settings

# Errors that mean "AWS did not answer", as opposed to "AWS refused": callers retry these.
TRANSIENT_AWS_ERRORS: tuple[type[Exception], ...] = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectTimeoutError,
)
_THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalServerError",
    "InternalFailure",
    "InternalServiceError",
}

_local = threading.local()


def is_transient(error: Exception) -> bool:
    """True for errors worth retrying: no answer, throttling, or a server-side fault."""
    if isinstance(error, TRANSIENT_AWS_ERRORS):
        return True
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _THROTTLING_CODES or status >= 500
    return False


def endpoint_url(service: str) -> str | None:
    return settings.AWS_SERVICE_ENDPOINT_URLS.get(service) or settings.AWS_ENDPOINT_URL


def _session() -> boto3.session.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = boto3.session.Session()
    return session


def aws_client(service: str) -> Any:
    """A cached (per thread) boto3 client for ``service`` configured from settings."""
    url = endpoint_url(service)
    key = (service, url, settings.AWS_REGION, settings.AWS_CONNECT_TIMEOUT, settings.AWS_READ_TIMEOUT)
    clients: dict = _local.__dict__.setdefault("clients", {})
    if key in clients:
        return clients[key]
    session = _session()
    kwargs: dict[str, Any] = {
        "region_name": settings.AWS_REGION,
        "config": Config(
            connect_timeout=settings.AWS_CONNECT_TIMEOUT,
            read_timeout=settings.AWS_READ_TIMEOUT,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    }
    if url:
        kwargs["endpoint_url"] = url
        if session.get_credentials() is None:
            kwargs["aws_access_key_id"] = "local"  # emulator placeholder, not a credential
            kwargs["aws_secret_access_key"] = "local"  # noqa: S105
    clients[key] = client = session.client(service, **kwargs)
    return client


def reset_clients() -> None:
    """Forget cached clients (tests that move an endpoint, workers after fork)."""
    _local.__dict__.pop("clients", None)
    _local.__dict__.pop("session", None)
