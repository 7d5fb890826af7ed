"""Links that come from outside (a build's logs deep-link in a CodeBuild event) and staff pages render as an
``href``: only absolute ``https`` URLs, so a ``javascript:`` or ``data:`` value can never become a link."""

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

logger = logging.getLogger(__name__)

# Django's validator: https only, a real host, no whitespace or control characters, at most 2048 characters.
_https_url = URLValidator(schemes=["https"])


def is_https_url(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        _https_url(value)
    except ValidationError:
        return False
    return True


def https_link(value: object, *, source: str) -> str:
    """``value`` when it is an absolute https URL, else "" (logged with ``source``, e.g. "build 12 logs")."""
    if not value or is_https_url(value):
        return str(value or "")
    logger.warning("%s: link dropped, not an absolute https URL: %.100r", source, value)
    return ""


def admin_url(path: str) -> str:
    """The absolute URL of an admin page (``path`` from ``reverse``), for links in alerts sent outside."""
    return settings.ADMIN_BASE_URL.rstrip("/") + path
