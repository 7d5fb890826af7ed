from django.core.management.base import BaseCommand

from orchestrator.bootstrap import bootstrap_aws


class Command(BaseCommand):
    help = "Create the AWS side (DynamoDB tables, event bus, CodeBuild projects, intake wiring); idempotent."

    def handle(self, *args: object, **options: object) -> None:
        for step, created in bootstrap_aws().items():
            state = ", ".join(created) if created else "already in place"
            self.stdout.write(f"{step}: {state}")
