"""``bootstrap_aws`` runs the steps the apps registered, in their order, against moto_server over HTTP."""

from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

STEPS = ["dynamodb tables", "event bus", "codebuild projects", "eventbridge -> intake wiring"]


def bootstrap() -> list[str]:
    out = StringIO()
    call_command("bootstrap_aws", stdout=out)
    return out.getvalue().splitlines()


def test_every_app_step_runs_in_order_and_a_second_run_creates_nothing(aws_empty, settings):
    # given no AWS resources, and an intake key so the wiring step has something to wire
    settings.INTAKE_API_KEYS = ["bootstrap-test-key"]

    # when bootstrap_aws runs twice
    first, second = bootstrap(), bootstrap()

    # then the first run created each app's resources, step by step in order; the second found them in place
    assert [line.split(":")[0] for line in first] == STEPS
    assert first[0] == f"dynamodb tables: {settings.DYNAMODB_TENANT_TABLE}, {settings.DYNAMODB_TIER_TABLE}"
    assert first[1] == f"event bus: {settings.EVENT_BUS_NAME}"
    assert first[3] != "eventbridge -> intake wiring: already in place"
    assert second == [f"{step}: already in place" for step in STEPS]
