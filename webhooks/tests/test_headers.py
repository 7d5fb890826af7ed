"""Endpoint custom headers: refused when saved (API, admin with CSRF) unless they can be sent as given, and
refused before sending when an endpoint saved earlier holds one that cannot."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from orchestrator.tests.factories import SuperuserFactory
from webhooks.headers import MAX_HEADERS, custom_headers_problems
from webhooks.models import AttemptOutcome, DeliveryStatus, WebhookEndpoint
from webhooks.services.attempts import delivery_attempt
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db

# (headers, words of the reason)
REFUSED = [
    ({"X-Team": "billing\r\nX-Injected: 1"}, "line break"),
    ({"X-Team": "billing\n"}, "line break"),
    ({"X-Team": "bill\x00ing"}, "control character"),
    ({"X-Team": "bill\x1bing"}, "control character"),
    ({"X-Team": "café €"}, "ASCII"),
    ({"X-Team": " billing"}, "whitespace"),
    ({"X Team": "billing"}, "not a valid header name"),
    ({"X-Team:": "billing"}, "not a valid header name"),
    ({"": "billing"}, "not a valid header name"),
    ({"X-Tëam": "billing"}, "not a valid header name"),
    ({"X-Team": 7}, "must be a string"),
    ({"webhook-signature": "v1,forged"}, "signs every call"),
    ({"X-Signature": "forged"}, "signs every call"),
    ({"Host": "internal.example"}, "connection sets it"),
    ({"Content-Length": "0"}, "connection sets it"),
    ({"Transfer-Encoding": "chunked"}, "connection sets it"),
    ({"Connection": "close"}, "connection sets it"),
    ({"Keep-Alive": "timeout=5"}, "connection sets it"),
    ({"User-Agent": "mine"}, "orchestrator or the connection sets it"),
    ({"X-Team": "a", "x-team": "b"}, "given twice"),
    ({"X-" + "a" * 200: "b"}, "at most 128"),
    ({"X-Team": "a" * 1025}, "at most 128"),
    ({f"X-H{n}": "v" for n in range(MAX_HEADERS + 1)}, f"At most {MAX_HEADERS} headers"),
    ({f"X-H{n}": "v" * 1000 for n in range(9)}, "characters of names and values together"),
]


@pytest.mark.parametrize(("headers", "reason"), REFUSED)
def test_headers_that_cannot_or_must_not_be_sent_are_refused(headers, reason):
    problems = custom_headers_problems(headers)
    assert any(reason in problem for problem in problems), problems


def test_ordinary_headers_pass():
    headers = {"X-Team": "billing", "Authorization": "Bearer abc.def", "X-Empty": "", "X-Tabbed": "a\tb c"}
    assert custom_headers_problems(headers) == []


def test_the_api_refuses_a_header_value_with_a_line_break(post_endpoint):
    response = post_endpoint(url="https://hooks.example.com/in", custom_headers={"X-Team": "billing\r\nX-Injected: 1"})

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"] == {"custom_headers": ["X-Team: the value contains a line break (CR or LF)"]}
    assert not WebhookEndpoint.objects.exists()


def test_the_api_refuses_an_update_with_an_illegal_header_name(api):
    endpoint = WebhookEndpointFactory(custom_headers={"X-Team": "billing"})

    response = api.patch(f"/api/webhook-endpoints/{endpoint.pk}/", {"custom_headers": {"X Team": "ops"}}, format="json")

    assert response.status_code == 400, response.content
    assert "not a valid header name" in response.json()["error"]["fields"]["custom_headers"][0]
    endpoint.refresh_from_db()
    assert endpoint.custom_headers == {"X-Team": "billing"}


def admin_post(client: Client, url: str, data: dict) -> str:
    """POST the admin form as a browser does: GET it first, send its CSRF token back."""
    page = client.get(url).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url, {**data, "csrfmiddlewaretoken": token})
    assert response.status_code in (200, 302), response.status_code
    return response.content.decode()


@pytest.mark.parametrize(
    ("headers", "saved"),
    [
        ('{"X-Team": "billing\\r\\nX-Injected: 1"}', False),
        ('{"Transfer-Encoding": "chunked"}', False),
        ('{"X-Team": "billing"}', True),
    ],
)
def test_the_admin_validates_custom_headers(headers, saved):
    client = Client(enforce_csrf_checks=True)
    client.force_login(SuperuserFactory())

    page = admin_post(
        client,
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "url": "https://hooks.example.com/in",
            "events": ["tenant.deployed"],
            "signing_scheme": "standard",
            "custom_headers": headers,
            "is_active": "on",
        },
    )

    assert WebhookEndpoint.objects.exists() is saved
    if not saved:
        assert "not allowed" in page or "line break" in page


def test_a_header_saved_before_the_check_fails_the_delivery_at_once(receiver):
    # given an endpoint stored with a value that cannot be sent (saved before headers were checked)
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"), custom_headers={"X-Team": "a\r\nX-Injected: 1"})
    delivery = make_delivery(endpoint)

    # when it is attempted
    attempt = delivery_attempt(delivery_id=delivery.pk)

    # then nothing is sent, the delivery fails for good with the reason, and the circuit counts nothing
    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert receiver.requests == []
    assert attempt.outcome == AttemptOutcome.REFUSED
    assert delivery.status == DeliveryStatus.FAILED
    assert "custom header X-Team: the value contains a line break" in delivery.status_reason
    assert endpoint.consecutive_failures == 0
