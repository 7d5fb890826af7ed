import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_status_reports_every_dependency_ok(client, aws):
    response = client.get("/orchestrator/status")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "dynamodb", "eventbridge", "codebuild"}
    assert all(check["status"] == "ok" for check in body["checks"].values())


def test_status_names_the_dependency_that_is_down(client, aws):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/orchestrator/status")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["status"].startswith("ConnectionError")
    assert checks["database"]["status"] == "ok"
    assert "127.0.0.1:1" not in response.content.decode()


def test_status_reports_missing_aws_resources(client, aws_empty):
    response = client.get("/orchestrator/status")

    assert response.status_code == 503
    assert response.json()["checks"]["dynamodb"]["status"] == "AWS error: ResourceNotFoundException"
