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


# --- Celery's lines about beat's periodic tasks (the terminal of the run command) -----------------------


def celery_lines_about(task: str, *, failed: bool = False) -> None:
    """What Celery logs for one run of ``task``: beat sends it, a worker receives it, then finishes it."""
    from celery.app.trace import LOG_FAILURE, LOG_RECEIVED, LOG_SUCCESS

    context = {"id": "4e1c", "name": task, "args": "()", "kwargs": "{}", "eta": None, "runtime": 0.01}
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", f"{task}-entry", task)
    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, context, extra={"data": context})
    if failed:
        context = {**context, "exc": "OperationalError('no database')", "description": "raised unexpected"}
        logging.getLogger("celery.app.trace").error(LOG_FAILURE, context, extra={"data": context})
    else:
        context = {**context, "return_value": "0"}
        logging.getLogger("celery.app.trace").info(LOG_SUCCESS, context, extra={"data": context})


def test_routine_lines_about_periodic_tasks_are_debug_and_other_tasks_stay_info(settings, caplog):
    # given a task beat runs every two seconds, and a task that processes events
    periodic = settings.CELERY_BEAT_SCHEDULE["webhooks-dispatch-due"]["task"]

    # when Celery logs a run of each, at INFO
    with caplog.at_level(logging.INFO):
        celery_lines_about(periodic)
        celery_lines_about("events.process_events")

    # then only the event task's lines are there, at INFO
    assert [(record.levelname, record.name) for record in caplog.records] == [
        ("INFO", "celery.beat"),
        ("INFO", "celery.worker.strategy"),
        ("INFO", "celery.app.trace"),
    ]
    assert all("events.process_events" in record.getMessage() for record in caplog.records)


def test_periodic_task_lines_show_at_debug_and_their_failures_always(settings, caplog):
    # given a task beat runs every two seconds
    periodic = settings.CELERY_BEAT_SCHEDULE["webhooks-dispatch-due"]["task"]

    # when a run is logged at DEBUG, and a failed run at INFO
    with caplog.at_level(logging.DEBUG):
        celery_lines_about(periodic)
    at_debug = [(record.levelname, record.name) for record in caplog.records if periodic in record.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        celery_lines_about(periodic, failed=True)

    # then the routine lines were there as DEBUG, and the failure is an error at INFO too
    assert at_debug == [
        ("DEBUG", "celery.beat"),
        ("DEBUG", "celery.worker.strategy"),
        ("DEBUG", "celery.app.trace"),
    ]
    assert [(record.levelname, record.name) for record in caplog.records] == [("ERROR", "celery.app.trace")]
