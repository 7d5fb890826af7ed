import contextlib
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator.errors import NotFoundError
from tenants.selectors import tenant_get_by_id_or_key
from tenants.services.offboarding import tenant_export


class Command(BaseCommand):
    help = (
        "Write a tenant's full record (document, plan, history, builds, deliveries, events; secrets masked) as "
        "JSON Lines, for offboarding and audits: to standard output, or to --output FILE."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="the tenant's id or key")
        parser.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_get_by_id_or_key(id_or_key=str(options["tenant"]))
        except NotFoundError as error:
            raise CommandError(error.message) from None
        output = options["output"]
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(output.open("w", encoding="utf-8")) if output else self.stdout
            lines = tenant_export(tenant=tenant, stream=stream, via="manage.py tenant_export")
        if output:
            self.stderr.write(f"{lines} lines written to {output}")
