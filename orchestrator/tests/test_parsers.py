"""The staff API refuses JSON nested deeper than JSON_MAX_DEPTH with a structured 400, never a 500."""

import pytest
from rest_framework.test import APIClient

from orchestrator.tests.factories import staff_user

pytestmark = pytest.mark.django_db


def nested_headers(levels: int) -> bytes:
    """A webhook endpoint whose ``custom_headers`` nest ``levels`` objects (written by hand: ``json.dumps``
    itself recurses once per level)."""
    deep = '{"a":' * levels + '"x"' + "}" * levels
    return (
        f'{{"url": "https://hooks.example.com/in", "events": ["tenant.deployed"], "custom_headers": {deep}}}'.encode()
    )


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(staff_user("superuser"))
    return client


@pytest.mark.parametrize("levels", [100, 900, 5_000])
def test_a_body_nested_too_deeply_is_400_naming_where(api, levels):
    response = api.post("/api/webhook-endpoints/", data=nested_headers(levels), content_type="application/json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "json_too_deep"
    assert list(error["fields"]) in (["body"], ["custom_headers" + ".a" * 63])


def test_a_shallow_body_goes_on_to_validation(api):
    response = api.post("/api/webhook-endpoints/", data=nested_headers(2), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"custom_headers.a": ["Not a valid string."]}  # the serializer
