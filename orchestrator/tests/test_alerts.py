"""Alert mails: one per (kind, subject) per window however many alerts come, the next one after the window
says how many were held back; the window lives in Redis (every process shares it); sent by a task after
commit; a mail server that refuses gets the mail again on the task's retry."""

import smtplib
import time
import uuid

import pytest
from django.core import mail

from orchestrator import redis_clients
from orchestrator.alerts import AlertMail, alert_mail_schedule, alert_mail_send


@pytest.fixture(autouse=True)
def alerting(settings):
    settings.ALERT_EMAILS = ["ops@example.com", "oncall@example.com"]
    settings.ALERT_EMAIL_MIN_INTERVAL_SECONDS = 1
    return settings


def alert(subject_key: str, n: int = 0) -> AlertMail:
    return AlertMail(
        kind="endpoint.circuit_opened", subject_key=subject_key, title=f"endpoint down ({n})", body=f"failure {n}"
    )


@pytest.mark.django_db
def test_many_alerts_about_one_thing_send_one_mail_then_one_with_the_held_back_count_after_the_window():
    subject = f"endpoint:{uuid.uuid4()}"

    # given 50 alerts about one broken endpoint within the window
    outcomes = [alert_mail_send(mail=alert(subject, n)) for n in range(50)]

    # then one mail went out, to every address, and 49 were held back
    assert outcomes == ["sent"] + ["held"] * 49
    [first] = mail.outbox
    assert first.to == ["ops@example.com", "oncall@example.com"]
    assert first.subject == "[orchestrator] endpoint down (0)"
    assert "held back" not in first.body

    # when the window has passed and it fails again
    time.sleep(1.2)
    assert alert_mail_send(mail=alert(subject, 50)) == "sent"

    # then one more mail, saying how many were held back meanwhile
    second = mail.outbox[1]
    assert second.body.startswith("failure 50")
    assert "49 more alerts of this kind about the same subject were held back" in second.body
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_each_subject_has_its_own_window():
    assert alert_mail_send(mail=alert(f"endpoint:{uuid.uuid4()}")) == "sent"
    assert alert_mail_send(mail=alert(f"endpoint:{uuid.uuid4()}")) == "sent"
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_nobody_opted_in_sends_nothing(settings, django_capture_on_commit_callbacks):
    settings.ALERT_EMAILS = []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        alert_mail_schedule(mail=alert(f"endpoint:{uuid.uuid4()}"))
    assert callbacks == []
    assert alert_mail_send(mail=alert(f"endpoint:{uuid.uuid4()}")) == "no recipients"
    assert mail.outbox == []


@pytest.mark.django_db
def test_mails_are_sent_by_a_task_after_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alert_mail_schedule(mail=alert(f"endpoint:{uuid.uuid4()}"))
    assert mail.outbox == []  # not inline: nothing until the transaction commits
    for callback in callbacks:
        callback()
    assert [m.subject for m in mail.outbox] == ["[orchestrator] endpoint down (0)"]


@pytest.mark.django_db
def test_without_redis_the_mail_is_sent_rather_than_lost(settings, monkeypatch):
    monkeypatch.setattr(redis_clients, "_clients", {})
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert alert_mail_send(mail=alert(f"endpoint:{uuid.uuid4()}")) == "sent"
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_refused_mail_reopens_the_window_for_the_retry(settings):
    subject = f"endpoint:{uuid.uuid4()}"
    settings.ALERT_EMAIL_MIN_INTERVAL_SECONDS = 3600
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 1  # no mail server there

    # given a mail server that is down
    with pytest.raises((smtplib.SMTPException, OSError)):
        alert_mail_send(mail=alert(subject, 1))

    # when it is back and the task retries
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert alert_mail_send(mail=alert(subject, 1)) == "sent"

    # then the mail went out (not held back by the window of the mail that never left)
    assert [m.body for m in mail.outbox] == ["failure 1"]
