"""Alert mails to the staff who opted in (``ALERT_EMAILS``), at most one per (kind, subject) per
``ALERT_EMAIL_MIN_INTERVAL_SECONDS``: one broken endpoint failing a thousand deliveries sends one mail, and the
next mail after the window says how many were held back meanwhile.

The window and the count live in Redis (beside the broker), so they hold across every web and worker process;
one Lua script decides atomically. Without Redis the mail is sent: an alert is never lost to the limiter.
Mails are sent by a task (``orchestrator.send_alert_mail``) enqueued after the caller's transaction commits,
never inline in a request or an attempt.
"""

import logging
import smtplib
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from orchestrator.redis_clients import redis_client, redis_key

logger = logging.getLogger(__name__)

# A mail server that did not take the mail: the task retries (``orchestrator.send_alert_mail``).
MAIL_ERRORS = (smtplib.SMTPException, OSError)
# How long a suppressed count is kept waiting for the next mail (then forgotten).
_SUPPRESSED_TTL_SECONDS = 30 * 24 * 3600

# KEYS[1] the window's marker, KEYS[2] the suppressed count; ARGV[1] window (s), ARGV[2] the count's TTL (s).
# Returns the count suppressed since the last mail when this one may go, else -1 (and counts it).
_GATE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  local held = tonumber(redis.call('GET', KEYS[2]) or '0')
  redis.call('DEL', KEYS[2])
  return held
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return -1
"""


@dataclass(frozen=True)
class AlertMail:
    kind: str  # e.g. "endpoint.disabled"
    subject_key: str  # what it is about, e.g. "endpoint:12": the rate limit's unit with ``kind``
    title: str
    body: str


def _keys(kind: str, subject_key: str) -> tuple[str, str]:
    return redis_key("alert-mail", kind, subject_key, "sent"), redis_key("alert-mail", kind, subject_key, "held")


def _gate(*, kind: str, subject_key: str) -> int:
    """The number of mails held back since the last one, or -1 when this one is held back too."""
    window = max(1, int(settings.ALERT_EMAIL_MIN_INTERVAL_SECONDS))
    try:
        return int(redis_client().eval(_GATE, 2, *_keys(kind, subject_key), window, _SUPPRESSED_TTL_SECONDS))
    except redis.RedisError as error:
        logger.warning("alert mail rate limit not applied (Redis unavailable): %s", error.__class__.__name__)
        return 0


def _gate_reopen(*, kind: str, subject_key: str, held: int) -> None:
    """The mail could not be sent: open the window again (the task's retry sends it) and keep the count."""
    sent, held_key = _keys(kind, subject_key)
    try:
        pipeline = redis_client().pipeline()
        pipeline.delete(sent)
        if held:
            pipeline.incrby(held_key, held)
            pipeline.expire(held_key, _SUPPRESSED_TTL_SECONDS)
        pipeline.execute()
    except redis.RedisError:
        logger.warning("alert mail window not reopened (Redis unavailable); the retry may be held back")


def alert_mail_send(*, mail: AlertMail) -> str:
    """Send ``mail`` to ALERT_EMAILS unless the rate limit holds it back: ``sent``, ``held`` or ``no recipients``."""
    recipients = list(settings.ALERT_EMAILS)
    if not recipients:
        return "no recipients"
    held = _gate(kind=mail.kind, subject_key=mail.subject_key)
    if held < 0:
        logger.info("alert mail %s about %s held back (rate limit)", mail.kind, mail.subject_key)
        return "held"
    body = mail.body
    if held:
        body += (
            f"\n\n{held} more alert{'s' if held > 1 else ''} of this kind about the same subject "
            f"{'were' if held > 1 else 'was'} held back since the last mail "
            f"(at most one every {settings.ALERT_EMAIL_MIN_INTERVAL_SECONDS} s)."
        )
    try:
        send_mail(
            subject=f"[orchestrator] {mail.title}"[:200],
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
        )
    except MAIL_ERRORS:
        _gate_reopen(kind=mail.kind, subject_key=mail.subject_key, held=held)
        raise
    return "sent"


def alert_mail_schedule(*, mail: AlertMail) -> None:
    """Send ``mail`` from a task once the current transaction commits (nothing when nobody opted in)."""
    if not settings.ALERT_EMAILS:
        return
    from orchestrator.tasks import send_alert_mail

    fields = {"kind": mail.kind, "subject_key": mail.subject_key, "title": mail.title, "body": mail.body}
    transaction.on_commit(lambda: send_alert_mail.delay(**fields), robust=True)
