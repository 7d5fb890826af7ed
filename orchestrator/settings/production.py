"""Production: refuses to start without a secret key, with DEBUG on, or with the LOCAL builder on (it runs
commands on the worker) unless that is explicitly allowed too."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEBUG, LOCAL_BUILDER_ALLOW_IN_PRODUCTION, LOCAL_BUILDER_ENABLED, SECRET_KEY, env

if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
if LOCAL_BUILDER_ENABLED and not LOCAL_BUILDER_ALLOW_IN_PRODUCTION:
    raise ImproperlyConfigured(
        "LOCAL_BUILDER_ENABLED must be off in production: the LOCAL builder runs commands on the worker. "
        "Set LOCAL_BUILDER_ALLOW_IN_PRODUCTION=true as well if this deployment really needs it."
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
