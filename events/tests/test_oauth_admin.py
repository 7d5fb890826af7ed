"""Admin for the token endpoint's clients: a new client's secret is shown once (and works), never again;
rotation shows the new secret; revocation is an action."""

import base64
import hashlib
import re
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from events.oauth.models import OAuthClient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def oauth_on(settings):
    settings.INTAKE_AUTH_SCHEMES = ["api_key", "oauth_client"]


def shown_secrets(page: str) -> list[str]:
    return re.findall(r'data-testid="oauth-client-secret">([^<]+)<', page)


def token_status(client, oauth_client, secret):
    credentials = base64.b64encode(f"{oauth_client.client_id}:{secret}".encode()).decode()
    response = client.post(
        "/oauth/token",
        data=urlencode({"grant_type": "client_credentials"}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Basic {credentials}",
    )
    return response.status_code


def test_creating_a_client_shows_its_secret_once(admin_client, client):
    response = admin_client.post(reverse("admin:events_oauthclient_add"), {"name": "sbt connection"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [secret] = shown_secrets(response.content.decode())
    created = OAuthClient.objects.get(name="sbt connection")
    assert created.client_id in response.content.decode()
    assert created.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert token_status(client, created, secret) == 200

    change_page = admin_client.get(reverse("admin:events_oauthclient_change", args=[created.pk])).content.decode()
    listing = admin_client.get(reverse("admin:events_oauthclient_changelist")).content.decode()
    assert secret not in change_page
    assert secret not in listing
    assert created.secret_sha256 not in change_page


def test_rotate_and_revoke_actions(admin_client, client):
    admin_client.post(reverse("admin:events_oauthclient_add"), {"name": "sbt connection"})
    created = OAuthClient.objects.get()
    changelist = reverse("admin:events_oauthclient_changelist")

    rotated = admin_client.post(changelist, {"action": "rotate_secrets", "_selected_action": [created.pk]})
    [new_secret] = shown_secrets(rotated.content.decode())
    assert token_status(client, created, new_secret) == 200

    admin_client.post(changelist, {"action": "revoke", "_selected_action": [created.pk]})
    created.refresh_from_db()
    assert created.is_active is False
    assert created.revoked_at is not None
    assert token_status(client, created, new_secret) == 401
