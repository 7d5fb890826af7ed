"""Local-only relay from the emulator's bus to the intake (see ``events.wiring`` for why).

Against moto, the bus's rules put each event (the full envelope) on the relay queue; this relay posts it
to ``{ORCHESTRATOR_BASE_URL}/api/events/`` over HTTP with the API key header, as EventBridge's API
destination does on AWS, with the same outcome rules: 2xx done; 4xx other than 429 refused for good (to
the dead-letter queue); 429, 5xx or no answer retried (the message reappears after its visibility timeout
and goes to the dead-letter queue after 185 receives). Runs as the beat task
``events.relay_emulator_events`` and as ``manage.py relay_emulator_events``. Inactive against real AWS.
"""

import logging

import requests
from botocore.exceptions import ClientError
from django.conf import settings

from events.wiring import intake_url, relay_enabled, resource_names
from orchestrator.aws import aws_client

logger = logging.getLogger(__name__)


def _queue_url(client: object, name: str) -> str | None:
    try:
        return client.get_queue_url(QueueName=name)["QueueUrl"]  # type: ignore[attr-defined]
    except ClientError:
        return None


def _post(body: str) -> int | None:
    headers = {"Content-Type": "application/json", settings.INTAKE_API_KEY_HEADER: settings.INTAKE_API_KEYS[0]}
    try:
        response = requests.post(
            intake_url(), data=body.encode(), headers=headers, timeout=(3, 15), allow_redirects=False
        )
    except requests.RequestException as error:
        logger.warning("relay: intake unreachable: %s", error.__class__.__name__)
        return None
    return response.status_code


def emulator_relay_poll(*, max_batches: int = 10, wait_seconds: int = 0) -> int:
    """Deliver queued events to the intake; returns how many it accepted (2xx)."""
    if not relay_enabled() or not settings.INTAKE_API_KEYS:
        return 0
    sqs = aws_client("sqs")
    names = resource_names()
    queue_url = _queue_url(sqs, names["relay_queue"])
    if queue_url is None:
        logger.debug("relay: no relay queue (bootstrap_aws has not run)")
        return 0
    delivered = 0
    for _ in range(max_batches):
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            status = _post(message["Body"])
            if status is None or status == 429 or status >= 500:
                continue  # retried after the visibility timeout
            if 200 <= status < 300:
                delivered += 1
            else:
                logger.warning("relay: intake refused an event with %s; moved to the dead-letter queue", status)
                dead_letter_url = _queue_url(sqs, names["dead_letter_queue"])
                if dead_letter_url:
                    sqs.send_message(QueueUrl=dead_letter_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return delivered
