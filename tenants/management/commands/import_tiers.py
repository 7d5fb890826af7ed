from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.services.sync import SyncUnavailable, tiers_import_from_dynamodb


class Command(BaseCommand):
    help = (
        "Load an existing tier mapping table (DYNAMODB_TIER_TABLE: key `tier`, `jobName`, variables as "
        "attributes) into Django, once. Tiers Django already has are skipped unless --overwrite."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--overwrite", action="store_true", help="Replace tiers that already exist in Django.")

    def handle(self, *args: object, **options: object) -> None:
        try:
            result = tiers_import_from_dynamodb(overwrite=bool(options["overwrite"]))
        except SyncUnavailable as error:
            raise CommandError(error.message) from None
        for label in ("created", "updated", "skipped"):
            names = result[label]
            self.stdout.write(f"{label}: {len(names)}" + (f" ({', '.join(names)})" if names else ""))
        for problem in result["invalid"]:
            self.stderr.write(f"invalid: {problem}")
        if result["invalid"]:
            raise CommandError(f"{len(result['invalid'])} tier(s) could not be imported.")
