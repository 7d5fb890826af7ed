"""Production: the default settings of ``manage.py``, ``wsgi.py`` and ``celery.py``.

Refuses to start without a secret key, with the local settings' key (or any django-insecure- key), with
DEBUG on, or with the LOCAL builder on (it runs commands on the worker) unless that is explicitly allowed too.
HTTPS: secure cookies and HSTS by default; the redirect to HTTPS is opt-in (a load balancer often does it, and
plain-HTTP callers inside the network, such as probes, must not be redirected).
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEBUG, LOCAL_BUILDER_ALLOW_IN_PRODUCTION, LOCAL_BUILDER_ENABLED, LOCAL_SECRET_KEY, SECRET_KEY, env

if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
if SECRET_KEY == LOCAL_SECRET_KEY or SECRET_KEY.startswith("django-insecure-"):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is a development key; production needs its own (it also encrypts secrets at rest)."
    )
if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
if LOCAL_BUILDER_ENABLED and not LOCAL_BUILDER_ALLOW_IN_PRODUCTION:
    raise ImproperlyConfigured(
        "LOCAL_BUILDER_ENABLED must be off in production: the LOCAL builder runs commands on the worker. "
        "Set LOCAL_BUILDER_ALLOW_IN_PRODUCTION=true as well if this deployment really needs it."
    )

# Behind a TLS-terminating proxy or load balancer, the header it sets to say the client used HTTPS (empty: trust
# none, when clients reach gunicorn directly and could send the header themselves).
_proxy_ssl_header = env("DJANGO_SECURE_PROXY_SSL_HEADER", default="X-Forwarded-Proto")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
# HSTS is sent on HTTPS answers only: a browser that reached the admin over HTTPS keeps to HTTPS for a year.
# Subdomains and the browsers' preload list are decisions about the whole domain: opt in.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
