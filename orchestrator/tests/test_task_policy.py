"""Every registered task, as the broker and the workers see it: its name (the wire), its queue, and what it
retries. A change here changes what happens to queued messages: the table says it out loud."""

from django.conf import settings

from orchestrator.celery import app

DATABASE = ("django.db.utils.OperationalError", "django.db.utils.InterfaceError")
DYNAMODB = (
    "tenants.services.sync.SyncUnavailable",
    "botocore.exceptions.EndpointConnectionError",
    "botocore.exceptions.ConnectionClosedError",
    "botocore.exceptions.ReadTimeoutError",
    "botocore.exceptions.ConnectTimeoutError",
)
BUILDER = ("tenants.builders.base.BuildUnavailable",)
NO_RETRY = None

# name: (queue, (retried exceptions, max retries, backoff factor in seconds, backoff cap in seconds) or NO_RETRY)
EXPECTED = {
    "events.process_event": ("default", (DATABASE, 10, 1, 300)),
    "events.process_events": ("default", (DATABASE, 10, 1, 300)),
    "events.publish_outbox": ("default", (DATABASE, 10, 1, 300)),
    "events.publish_pending_outbox": ("default", NO_RETRY),
    "events.relay_emulator_events": ("default", NO_RETRY),
    "events.sweep_stale_events": ("default", NO_RETRY),
    "orchestrator.retention_purge": ("default", NO_RETRY),
    "orchestrator.send_alert_mail": ("default", (("smtplib.SMTPException", "builtins.OSError"), 6, 30, 600)),
    "portal.doctor_announce": ("default", NO_RETRY),
    "tenants.advance_pipeline_run": ("default", NO_RETRY),
    "tenants.finish_wait_step": ("default", NO_RETRY),
    "tenants.poll_builds": ("default", (BUILDER, 3, 2, 600)),
    "tenants.post_build_outcome": ("default", NO_RETRY),
    "tenants.recover_builds": ("default", NO_RETRY),
    "tenants.run_local_build": (settings.LOCAL_BUILD_QUEUE, (BUILDER, 5, 2, 600)),
    "tenants.start_build": ("default", NO_RETRY),
    "tenants.sweep_pipeline_runs": ("default", NO_RETRY),
    "tenants.sync_pending": ("default", NO_RETRY),
    "tenants.sync_tenant": ("default", (DYNAMODB, 12, 2, 600)),
    "tenants.sync_tier": ("default", (DYNAMODB, 12, 2, 600)),
    "webhooks.deliver_many": (settings.WEBHOOK_QUEUE, (("django.db.utils.DatabaseError",), 8, 1, 600)),
    "webhooks.dispatch_due": (settings.WEBHOOK_QUEUE, NO_RETRY),
    "webhooks.sweep": (settings.WEBHOOK_QUEUE, NO_RETRY),
}


def registered_tasks() -> dict:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def retry_of(task) -> tuple | None:
    retried = tuple(f"{error.__module__}.{error.__qualname__}" for error in getattr(task, "autoretry_for", ()))
    if not retried:
        return NO_RETRY
    return (retried, task.max_retries, task.retry_backoff, task.retry_backoff_max)


def test_every_task_is_registered_with_its_name_queue_and_retries():
    # given the tasks every app registers
    tasks = registered_tasks()

    # then they are exactly the expected ones, each with its queue and retry policy
    assert {name: (task.queue, retry_of(task)) for name, task in tasks.items()} == EXPECTED


def test_every_task_is_acknowledged_late_retried_with_jitter_and_requeued_when_its_worker_dies():
    for name, task in registered_tasks().items():
        assert (task.acks_late, task.reject_on_worker_lost) == (True, True), name
        if retry_of(task) is not NO_RETRY:
            assert task.retry_jitter is True, name
