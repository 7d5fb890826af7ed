from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from environ import Env


class Command(BaseCommand):
    help = (
        "Create the local superuser from ORCHESTRATOR_ADMIN_USER / ORCHESTRATOR_ADMIN_PASSWORD if it does not "
        "exist yet (idempotent; an existing user's password is left alone)."
    )

    def handle(self, *args: object, **options: object) -> None:
        env = Env()
        username = env("ORCHESTRATOR_ADMIN_USER", default="admin")
        password = env("ORCHESTRATOR_ADMIN_PASSWORD", default="")
        users = get_user_model().objects
        if users.filter(username=username).exists():
            self.stdout.write(f"staff user {username!r} already exists")
            return
        if not password:
            raise CommandError("ORCHESTRATOR_ADMIN_PASSWORD is not set")
        users.create_superuser(username=username, password=password, email="")
        self.stdout.write(f"created staff user {username!r}")
