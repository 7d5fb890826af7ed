import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.doctor.fixes import FIX_ACTIONS
from portal.doctor.service import doctor_findings
from portal.serializers import doctor_report


class Command(BaseCommand):
    help = (
        "Print what needs attention (the doctor's findings: why a tenant, event or delivery is stuck and what "
        "fixes it). Exit status 1 when something does, 0 otherwise: for cron and CI."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the findings as JSON (as GET /api/doctor/).")

    def handle(self, *args: object, **options: object) -> None:
        findings = doctor_findings()
        if options["json"]:
            self.stdout.write(json.dumps(doctor_report(findings), indent=2))
        elif not findings:
            self.stdout.write(self.style.SUCCESS("Nothing needs attention."))
        for finding in [] if options["json"] else findings:
            self.stdout.write(f"{finding.title}: {finding.object_type} {finding.object_id}")
            self.stdout.write(f"  tenant  {finding.tenant_id or '-'}")
            self.stdout.write(f"  since   {finding.since:%Y-%m-%d %H:%M:%S} UTC")
            self.stdout.write(f"  reason  {finding.reason}")
            for fix in finding.fixes:
                self.stdout.write(f"  fix     {FIX_ACTIONS[fix.action].label} ({fix.action} {fix.target})")
        if findings:
            raise CommandError(f"{len(findings)} finding(s) need attention.", returncode=1)
