"""Celery tasks for the event intake: ids in, one service call each (see events.services)."""

from django.db import InterfaceError, OperationalError

from orchestrator.task_policy import Retry, lifecycle_task

# The database being away is the only thing a task retries itself; handler failures are retried by
# event_process (status RETRYING with backoff), so they survive a broker restart and show in the admin.
DATABASE_AWAY = Retry(on=(OperationalError, InterfaceError), max_retries=10, backoff_max=300)


@lifecycle_task(name="events.process_event", retry=DATABASE_AWAY)
def process_event(*, event_pk: int) -> str:
    """Run one received event through its handler (idempotent; skips what is done or not yet due)."""
    from events.services import event_run

    return event_run(event_pk=event_pk).outcome


@lifecycle_task(name="events.process_events", retry=DATABASE_AWAY)
def process_events(*, event_pks: list[int], trace_parents: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Run a few events accepted together, in order (each one idempotent, as ``process_event``); each continues
    the trace of the request that accepted it, when given (``trace_parents``, by event pk)."""
    from events.services import events_run

    parents = {int(pk): parent for pk, parent in (trace_parents or {}).items()}
    return [outcome.outcome for outcome in events_run(event_pks=event_pks, trace_parents=parents)]


@lifecycle_task(name="events.sweep_stale_events")
def sweep_stale_events() -> int:
    """Beat: re-enqueue events accepted/retrying/processing for longer than EVENT_SWEEP_AFTER_SECONDS."""
    from events.services import events_sweep_stale

    return len(events_sweep_stale())


@lifecycle_task(name="events.publish_outbox", retry=DATABASE_AWAY)
def publish_outbox(*, outbox_pk: int) -> str:
    """Send one pending outbox row to EventBridge (retries transient AWS errors with backoff)."""
    from events.publisher import outbox_send

    return outbox_send(outbox_pk=outbox_pk)


@lifecycle_task(name="events.publish_pending_outbox")
def publish_pending_outbox() -> int:
    """Beat: send outbox rows still pending after OUTBOX_RESEND_AFTER_SECONDS, in batches of 10."""
    from events.publisher import outbox_send_pending

    return outbox_send_pending()


@lifecycle_task(name="events.relay_emulator_events")
def relay_emulator_events() -> int:
    """Beat, local only: carry events from the emulator's relay queue to the intake (see events.emulator)."""
    from events.emulator import emulator_relay_poll

    return emulator_relay_poll()
