import io
import json
import logging

from django.test import override_settings
from pythonjsonlogger.json import JsonFormatter

from orchestrator.logging import RequestIdFilter, SecretMaskingFilter, request_id_var


def render(message: str, *args: object, exc: BaseException | None = None) -> dict:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(SecretMaskingFilter())
    logger = logging.getLogger("orchestrator.tests.logging")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc is not None:
            try:
                raise exc
            except BaseException:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return json.loads(stream.getvalue())


def test_log_lines_are_json_with_the_request_id():
    token = request_id_var.set("req-123")
    try:
        line = render("tenant %s provisioned", "t-1")
    finally:
        request_id_var.reset(token)
    assert line["message"] == "tenant t-1 provisioned"
    assert line["request_id"] == "req-123"
    assert line["levelname"] == "WARNING"


@override_settings(INTAKE_API_KEYS=["configured-intake-key-value"])
def test_configured_keys_and_secret_pairs_are_masked_in_messages_and_tracebacks():
    line = render(
        "calling with key %s and secret=%s and whsec_abcDEF123==",
        "configured-intake-key-value",
        "s3cr3t-value",
        exc=ValueError('{"password": "hunter2-long"}'),
    )
    rendered = json.dumps(line)
    for secret in ("configured-intake-key-value", "s3cr3t-value", "whsec_abcDEF123", "hunter2-long"):
        assert secret not in rendered
    assert "********" in line["message"]


def test_request_id_is_echoed_or_generated(client):
    echoed = client.get("/docs", HTTP_X_REQUEST_ID="abc-123")
    generated = client.get("/docs")
    assert echoed["X-Request-ID"] == "abc-123"
    assert len(generated["X-Request-ID"]) == 32
