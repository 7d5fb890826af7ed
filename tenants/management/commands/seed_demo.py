from django.core.management.base import BaseCommand, CommandError

from orchestrator.errors import ApplicationError
from tenants.models import BuilderType
from tenants.services.tiers import tier_upsert

COMMAND = "demo/build.sh"
# Tier variables the demo script receives (numbers as the original's Terraform tier items had them).
COMMON = {
    "NAMESPACE": "demo",
    "ENVIRONMENT": "local",
    "DOMAIN_NAME": "demo.localhost",
    "ACCESS_TOKEN_EXPIRATION": "3600",
    "REFRESH_TOKEN_EXPIRATION": "86400",
    "AUTH_CODE_EXPIRATION": "300",
}
DEMO_TIERS = {
    "BASIC": (
        "Shared infrastructure; the demo build takes a second.",
        {"BUILD_SECONDS": "1", "INSTANCE_SIZE": "small"},
    ),
    "STANDARD": (
        "Dedicated namespace; the demo build takes two seconds.",
        {"BUILD_SECONDS": "2", "INSTANCE_SIZE": "medium"},
    ),
    "PREMIUM": (
        "Dedicated cluster; the demo build takes three seconds.",
        {"BUILD_SECONDS": "3", "INSTANCE_SIZE": "large"},
    ),
}


class Command(BaseCommand):
    help = (
        "Create the demo tiers (BASIC, STANDARD, PREMIUM) run by the LOCAL builder with demo/build.sh "
        "(the deployment must enable LOCAL and allow-list the demo commands, as local settings do). "
        "Idempotent: existing tiers and variables are left as they are (staff edits survive)."
    )

    def handle(self, *args: object, **options: object) -> None:
        for name, (description, extra) in DEMO_TIERS.items():
            try:
                _tier, changed = tier_upsert(
                    name=name,
                    provision_project=f"{COMMAND} provision",
                    deprovision_project=f"{COMMAND} deprovision",
                    description=f"Demo tier (LOCAL builder). {description}",
                    allowed_builders=[BuilderType.LOCAL],
                    variables={key: (value, "PLAINTEXT") for key, value in {**COMMON, **extra}.items()},
                    create_only=True,
                )
            except ApplicationError as error:
                raise CommandError(error.message) from None
            self.stdout.write(f"tier {name}: {'created/completed' if changed else 'unchanged'}")
