import json
import uuid

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.catalogue import DetailType
from events.dialects.sbt import SbtDetailType
from events.samples import sample_envelope


class Command(BaseCommand):
    help = "POST the sample event of a detail-type to the running intake (with the configured API key)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("detail_type", choices=[*DetailType.ALL, *SbtDetailType.REQUESTS], metavar="DETAIL_TYPE")
        parser.add_argument("--tenant-id", help="Put this tenant id in the detail (tenant.id).")
        parser.add_argument("--url", help="Intake URL (default {ORCHESTRATOR_BASE_URL}/api/events/).")
        parser.add_argument("--event-id", help="The envelope id (default: a new UUID, so it is not a duplicate).")
        parser.add_argument(
            "--builder",
            default="LOCAL",
            help="builderConfig.type of a TENANT_PROVISIONING sample (default LOCAL: the demo tiers run "
            "demo/build.sh on this machine; CODE_BUILD starts a CodeBuild build instead).",
        )

    def handle(self, *args: object, **options: str | None) -> None:
        if not settings.INTAKE_API_KEYS:
            raise CommandError("INTAKE_API_KEYS is empty: there is no key to send.")
        detail_type = str(options["detail_type"])
        envelope = sample_envelope(detail_type)
        envelope["id"] = options.get("event_id") or str(uuid.uuid4())
        if detail_type == DetailType.TENANT_PROVISIONING:
            # A new tenant each time, so the sample can be sent again and again.
            tenant = envelope["detail"]["tenant"]
            tenant["id"] = options.get("tenant_id") or str(uuid.uuid4())
            tenant["key"] = f"demo-{tenant['id'][:8]}"
            builder = envelope["detail"]["builderConfig"]
            builder["type"] = str(options["builder"])
            override = builder.get("config", {}).get("environmentOverride", {})
            if isinstance(override.get("tenant"), str):
                override["tenant"] = json.dumps(tenant, separators=(",", ":"))
        elif detail_type == SbtDetailType.ONBOARDING_REQUEST:
            # A new tenant and registration each time, as sbt-aws's control plane makes them.
            envelope["detail"]["tenantId"] = options.get("tenant_id") or str(uuid.uuid4())
            envelope["detail"]["tenantRegistrationId"] = str(uuid.uuid4())
        elif options.get("tenant_id"):
            _set_tenant_id(envelope["detail"], str(options["tenant_id"]))
        url = options.get("url") or settings.ORCHESTRATOR_BASE_URL.rstrip("/") + "/api/events/"
        headers = {"Content-Type": "application/json", settings.INTAKE_API_KEY_HEADER: settings.INTAKE_API_KEYS[0]}
        try:
            response = requests.post(
                url, data=json.dumps(envelope), headers=headers, timeout=(3, 30), allow_redirects=False
            )
        except requests.RequestException as error:
            raise CommandError(f"Could not reach {url}: {error.__class__.__name__}") from None
        self.stdout.write(f"{response.status_code} {response.text}")
        if detail_type == DetailType.TENANT_PROVISIONING and response.status_code == 202:
            tenant_id = envelope["detail"]["tenant"]["id"]
            base = settings.ORCHESTRATOR_BASE_URL.rstrip("/")
            self.stdout.write(f"Watch tenant {tenant_id}: {base}/admin/tenants/tenant/{tenant_id}/change/")
        if response.status_code >= 400:
            raise CommandError(f"The intake answered {response.status_code}.")


def _set_tenant_id(detail: dict, tenant_id: str) -> None:
    if "tenantId" in detail:  # sbt-aws's requests
        detail["tenantId"] = tenant_id
    tenant = detail.get("tenant")
    if isinstance(tenant, dict):
        tenant["id"] = tenant_id
    elif isinstance(tenant, str):
        document = json.loads(tenant)
        document["id"] = tenant_id
        detail["tenant"] = json.dumps(document, separators=(",", ":"))
    environment = detail.get("additional-information", {}).get("environment", {})
    for variable in environment.get("environment-variables", []):
        if variable.get("name") == "TENANT_ID":
            variable["value"] = tenant_id
        elif variable.get("name") == "tenant":
            document = json.loads(variable["value"])
            document["id"] = tenant_id
            variable["value"] = json.dumps(document, separators=(",", ":"))
    override = detail.get("builderConfig", {}).get("config", {}).get("environmentOverride", {})
    if isinstance(override.get("tenant"), str):
        document = json.loads(override["tenant"])
        document["id"] = tenant_id
        override["tenant"] = json.dumps(document, separators=(",", ":"))
