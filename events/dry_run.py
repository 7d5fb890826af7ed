"""The dry run: what the intake and the handler would do with an event, without doing it.

The event is validated exactly as the intake validates it (``envelope_validate``: the same 400s); the
intake's answer is read from what is stored (accepted, duplicate or conflict); the handler's effect comes
from the ``preview`` its app registered (``events.registry``), computed by the functions the handler
itself uses, given the detail as the handler would read it from the events table. Nothing is written,
queued or sent: a dry run is only reads.
"""

from typing import Any

from events import registry
from events.intake.envelope import envelope_validate
from events.intake.store import detail_as_stored
from events.selectors import event_stored


def _intake_answer(*, event_id: str, body_sha256: str) -> dict[str, Any]:
    """The intake's answer to this event now (``event_receive``'s decision, read-only)."""
    stored = event_stored(event_id=event_id)
    if stored is None:
        return {"status": 202, "answer": "accepted", "message": "Stored and queued; the handler runs."}
    if stored["body_sha256"] == body_sha256:
        return {
            "status": 200,
            "answer": "duplicate",
            "message": f"Already received as event {stored['pk']}; the handler would not run again.",
            "stored_pk": stored["pk"],
        }
    return {
        "status": 409,
        "answer": "conflict",
        "message": f"Event {stored['pk']} has this id with a different body; it would be refused.",
        "stored_pk": stored["pk"],
    }


def event_dry_run(*, data: Any) -> dict[str, Any]:
    """Validate ``data`` (one parsed EventBridge envelope) as the intake does (``ApplicationError`` 400 when
    invalid) and describe what receiving it would do: the intake's answer, the handler, and its effect
    (``None`` for types whose app registered no preview)."""
    envelope = envelope_validate(data)
    event_type = registry.get(envelope.detail_type)
    handler = event_type.handler if event_type else None
    effect = None
    if event_type is not None and event_type.preview is not None:
        effect = event_type.preview(envelope.detail_type, detail_as_stored(envelope.detail))
    return {
        "event": {
            "id": envelope.event_id,
            "detail_type": envelope.detail_type,
            "source": envelope.source,
            "tenant_id": envelope.tenant_id,
            "body_sha256": envelope.body_sha256,
        },
        "intake": _intake_answer(event_id=envelope.event_id, body_sha256=envelope.body_sha256),
        "handler": {
            "name": f"{handler.__module__}.{handler.__qualname__}" if handler else None,
            "description": event_type.description if event_type else "",
        },
        "effect": effect,
    }
