"""Structured logs: a request id on every line and secrets masked before anything is written."""

import contextvars
import logging
import random
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from orchestrator.redaction import redact_text

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_ATTRIBUTE = "request_id"  # set on the request for the code behind the middleware (HttpRequest declares none)


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (or makes one), exposes it to logs and echoes it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # Not secret, only unique: random bits from the process's generator, not a system call per request.
        request_id = (
            incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else f"{random.getrandbits(128):032x}"
        )
        token = request_id_var.set(request_id)
        setattr(request, REQUEST_ID_ATTRIBUTE, request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def _configured_secrets() -> list[str]:
    secrets = list(getattr(settings, "INTAKE_API_KEYS", []))
    secrets += [pair.partition(":")[2] for pair in getattr(settings, "INTAKE_BASIC_AUTH", [])]
    return [secret for secret in secrets if secret]


class SecretMaskingFilter(logging.Filter):
    """Masks configured credentials and secret-looking values in the rendered message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        secrets = _configured_secrets()
        record.msg = redact_text(message, secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, secrets)
            record.exc_info = None
        return True


def _periodic_task_names() -> set[str]:
    return {entry["task"] for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values()}


def _task_name(record: logging.LogRecord) -> str | None:
    """The task a Celery line is about: workers pass it in ``data`` (received, succeeded), beat as an argument."""
    data = getattr(record, "data", None)
    if isinstance(data, dict):
        return data.get("name")
    if record.name == "celery.beat" and isinstance(record.args, tuple) and len(record.args) == 2:
        return str(record.args[1])  # "Scheduler: Sending due task %s (%s)": entry name, task name
    return None


class PeriodicTaskFilter(logging.Filter):
    """Celery's routine lines about beat's periodic tasks (sent, received, succeeded: several every two seconds)
    are DEBUG, so a log at INFO shows the work and the errors rather than the clock. Their warnings and errors,
    and every line about other tasks, are left as they are. Set on the loggers ``celery.beat``,
    ``celery.worker.strategy`` and ``celery.app.trace`` (settings ``LOGGING``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or _task_name(record) not in _periodic_task_names():
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
