"""Reads of OAuth clients."""

from events.oauth.models import OAuthClient


def oauth_client_is_active(*, client_id: str) -> bool:
    """Whether tokens of ``client_id`` may still be used (one indexed lookup per bearer request)."""
    return OAuthClient.objects.filter(client_id=client_id, is_active=True).exists()
