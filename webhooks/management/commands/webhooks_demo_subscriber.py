"""Register the demo receiver's Standard Webhooks subscriber (idempotent), for ``make run``."""

import os

from django.core.management.base import BaseCommand, CommandError

from orchestrator.errors import ApplicationError
from webhooks.models import WebhookEndpoint, WebhookEventType
from webhooks.services.endpoints import endpoint_create, endpoint_rotate_secret, endpoint_update


class Command(BaseCommand):
    help = (
        "Ensure a webhook endpoint {DEMO_RECEIVER_URL}/subscriber for every event type, signed with "
        "DEMO_SUBSCRIBER_SECRET (whsec_...), so the demo receiver can verify what it gets."
    )

    def handle(self, *args: object, **options: object) -> None:
        base = os.environ.get("DEMO_RECEIVER_URL", "http://127.0.0.1:8100").rstrip("/")
        secret = os.environ.get("DEMO_SUBSCRIBER_SECRET", "")
        if not secret:
            raise CommandError("DEMO_SUBSCRIBER_SECRET is not set")
        url = f"{base}/subscriber"
        events = list(WebhookEventType.values)
        try:
            endpoint = WebhookEndpoint.objects.filter(url=url).first()
            if endpoint is None:
                endpoint, _ = endpoint_create(url=url, events=events, description="demo receiver", secret=secret)
                self.stdout.write(f"webhook endpoint {url}: created")
                return
            endpoint_update(endpoint=endpoint, events=events, is_active=True)
            if endpoint.secret.reveal() != secret:
                endpoint_rotate_secret(endpoint=endpoint, secret=secret)
                self.stdout.write(f"webhook endpoint {url}: secret updated")
            else:
                self.stdout.write(f"webhook endpoint {url}: unchanged")
        except ApplicationError as error:
            # Not fatal for the dev stack: the demo runs without a subscriber.
            self.stderr.write(f"webhook endpoint {url} not registered: {error.message} {error.fields or ''}")
