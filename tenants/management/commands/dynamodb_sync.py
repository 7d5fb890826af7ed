from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.services.sync import SyncUnavailable, dynamodb_drift, dynamodb_repair


class Command(BaseCommand):
    help = (
        "Compare the DynamoDB tenant and tier tables with Django (--check, exit status 1 on drift) "
        "or make DynamoDB match Django (--repair: write missing/different items, delete extra ones)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--check", action="store_true", help="Report missing, extra and different items.")
        mode.add_argument("--repair", action="store_true", help="Fix the drift --check reports.")

    def handle(self, *args: object, **options: object) -> None:
        try:
            drifts = dynamodb_drift()
        except SyncUnavailable as error:
            raise CommandError(error.message) from None
        total = 0
        for drift in drifts:
            count = len(drift.missing) + len(drift.extra) + len(drift.different)
            total += count
            self.stdout.write(f"{drift.table} (key {drift.key}): {'in sync' if drift.clean else f'{count} drifted'}")
            for key in drift.missing:
                self.stdout.write(f"  missing    {key}")
            for key in drift.extra:
                self.stdout.write(f"  extra      {key}")
            for key, attributes in drift.different.items():
                self.stdout.write(f"  different  {key}: {', '.join(attributes)}")
        if options["repair"]:
            counts = dynamodb_repair(drifts)
            self.stdout.write(
                self.style.SUCCESS(f"Repaired: {counts['written']} written, {counts['deleted']} deleted.")
            )
            return
        if total:
            raise CommandError(f"DynamoDB differs from Django in {total} item(s); run with --repair to fix.")
        self.stdout.write(self.style.SUCCESS("DynamoDB matches Django."))
