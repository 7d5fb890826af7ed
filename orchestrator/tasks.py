"""Tasks of the foundation itself: retention runs every app's registered rules; alert mails."""

from orchestrator.alerts import MAIL_ERRORS, AlertMail, alert_mail_send
from orchestrator.retention import retention_run
from orchestrator.task_policy import Retry, lifecycle_task


@lifecycle_task(name="orchestrator.retention_purge")
def retention_purge() -> dict[str, int]:
    """Beat: purge what is past its retention, in batches (several runs at once share the work)."""
    return retention_run()


@lifecycle_task(name="orchestrator.send_alert_mail", retry=Retry(on=MAIL_ERRORS, max_retries=6, backoff=30))
def send_alert_mail(*, kind: str, subject_key: str, title: str, body: str) -> str:
    """One alert mail to the staff who opted in, unless its rate limit holds it back."""
    return alert_mail_send(mail=AlertMail(kind=kind, subject_key=subject_key, title=title, body=body))
