"""End to end, playing sbt-aws's control plane against a live Orchestrator (HTTP on 127.0.0.1, moto_server
for EventBridge, SQS and CodeBuild):

1. it gets an OAuth token from our token endpoint with the client id and secret staff created, as its
   EventBridge connection (``OAUTH_CLIENT_CREDENTIALS``) does, and sends ``onboardingRequest`` to the intake
   with it, as its API destination does;
2. CodeBuild's own state changes of the script job's build arrive on the default bus (with the exported
   variables), and every event the bootstrap's rules route reaches the intake through the emulator relay;
3. it reads our answers where it listens: a rule on its bus for the application plane's source and its
   answer detail-types, into an SQS queue; each is checked field by field against sbt-aws's shapes.
"""

import json

import pytest
import requests

from events.dialects.sbt import SbtDetailType
from events.emulator import emulator_relay_poll
from events.oauth.services import oauth_client_create
from orchestrator.aws import aws_client
from orchestrator.bootstrap import bootstrap_aws
from tenants.models import Build, BuildPurpose, Tenant, TenantStatus
from tenants.tests.factories import TierFactory
from tenants.tests.sbt import (
    TENANT_DATA_VARIABLES,
    assert_sbt_answer,
    codebuild_state_change,
    exported_variables,
    new_onboarding,
    sbt_request,
)

SBT_BUS = "sbt-event-bus"
LISTENED = [
    SbtDetailType.PROVISION_SUCCESS,
    SbtDetailType.PROVISION_FAILURE,
    SbtDetailType.DEPROVISION_SUCCESS,
    SbtDetailType.DEPROVISION_FAILURE,
]


class ControlPlane:
    """sbt-aws's control plane as Orchestrator sees it: an OAuth client, an API destination, an inbox."""

    def __init__(self, base_url: str, settings) -> None:
        self.base_url = base_url
        oauth_client, secret = oauth_client_create(name="sbt-aws control plane")
        response = requests.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(oauth_client.client_id, secret),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        sqs, events = aws_client("sqs"), aws_client("events")
        self.inbox = sqs.create_queue(QueueName="sbt-control-plane-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": [settings.SBT_APPLICATION_PLANE_SOURCE], "detail-type": LISTENED}
        events.put_rule(Name="sbt-registration-updates", EventBusName=SBT_BUS, EventPattern=json.dumps(pattern))
        events.put_targets(
            Rule="sbt-registration-updates", EventBusName=SBT_BUS, Targets=[{"Id": "inbox", "Arn": inbox_arn}]
        )

    def send(self, body: dict) -> None:
        response = requests.post(
            f"{self.base_url}/api/events/",
            data=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 202, response.text

    def received(self) -> list[dict]:
        sqs = aws_client("sqs")
        answers = []
        while messages := sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                event = json.loads(message["Body"])
                answers.append(
                    {
                        "detail-type": event["detail-type"],
                        "source": event["source"],
                        "bus": SBT_BUS,
                        "detail": event["detail"],
                    }
                )
                sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=message["ReceiptHandle"])
        return answers


def codebuild_reports(build: Build, status: str, **info) -> None:
    """CodeBuild puts its state change on the default bus; the rules and the relay bring it (and whatever it
    leads to on our bus, e.g. TENANT_DEPLOYMENT) to the intake."""
    aws_client("events").put_events(
        Entries=[
            {
                "Source": "aws.codebuild",
                "DetailType": "CodeBuild Build State Change",
                "Detail": json.dumps(codebuild_state_change(build, status, **info)),
                "EventBusName": "default",
            }
        ]
    )
    while emulator_relay_poll():
        pass


@pytest.mark.django_db(transaction=True)
def test_an_sbt_control_plane_onboards_and_offboards_tenants_through_orchestrator(aws, live_server, settings):
    settings.ORCHESTRATOR_BASE_URL = live_server.url
    settings.EVENT_DIALECTS = ["original", "sbt"]
    settings.INTAKE_AUTH_SCHEMES = ["api_key", "oauth_client"]  # the relay (moto's API destination) uses the key
    settings.SBT_EVENT_BUS_NAME = SBT_BUS
    settings.SBT_TENANT_DATA_VARIABLES = TENANT_DATA_VARIABLES
    TierFactory(name="basic", provision_project="sbt-provisioning", deprovision_project="sbt-deprovisioning")
    bootstrap_aws()
    control_plane = ControlPlane(live_server.url, settings)

    # Onboarding: one tenant's script job succeeds, another's fails without reporting anything (sbt-aws issue 73)
    good, bad = new_onboarding(), new_onboarding(tenantName="tenant67890")
    control_plane.send(good)
    control_plane.send(bad)
    good_tenant = Tenant.objects.get(pk=good["detail"]["tenantId"])
    bad_tenant = Tenant.objects.get(pk=bad["detail"]["tenantId"])
    assert good_tenant.status == bad_tenant.status == TenantStatus.PROVISIONING

    codebuild_reports(
        Build.objects.get(tenant=good_tenant), "SUCCEEDED", exported=exported_variables("sbt_aws_provisionSuccess")
    )
    codebuild_reports(Build.objects.get(tenant=bad_tenant), "FAILED")

    good_tenant.refresh_from_db()
    bad_tenant.refresh_from_db()
    assert good_tenant.status == TenantStatus.ACTIVE, good_tenant.status_reason
    assert bad_tenant.status == TenantStatus.PROVISION_FAILED
    answers = {answer["detail"]["tenantRegistrationId"]: answer for answer in control_plane.received()}
    assert len(answers) == 2
    for request, fixture, reason in (
        (good, "sbt_aws_provisionSuccess", ""),
        (bad, "sbt_aws_provisionFailure", "Provision build failed"),
    ):
        assert_sbt_answer(answers[request["detail"]["tenantRegistrationId"]], fixture, request, reason=reason)

    # Offboarding the active tenant: its deprovisioning script job succeeds
    control_plane.send(
        sbt_request(
            "sbt_aws_offboardingRequest",
            tenantId=good_tenant.pk,
            tenantRegistrationId=good["detail"]["tenantRegistrationId"],
        )
    )
    deprovision = Build.objects.get(tenant=good_tenant, purpose=BuildPurpose.DEPROVISION)
    codebuild_reports(deprovision, "SUCCEEDED", exported=exported_variables("sbt_aws_deprovisionSuccess"))

    good_tenant.refresh_from_db()
    assert good_tenant.status == TenantStatus.INACTIVE
    [answer] = control_plane.received()
    assert_sbt_answer(answer, "sbt_aws_deprovisionSuccess", good)
