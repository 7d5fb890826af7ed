"""Local development: debug on, embedded defaults, loopback callbacks allowed.

``make run`` writes generated local secrets (Django key, intake API key) to ``.data/local.env``; they are
read here so the web server, the worker and management commands agree on them.
"""

from .base import *  # noqa: F403
from .base import DATA_DIR, env

environ_file = DATA_DIR / "local.env"
if environ_file.exists():
    env.read_env(str(environ_file), overwrite=False)
    # Re-read what the file may set (base read the process environment before the file was loaded).
    INTAKE_API_KEYS = env.list("INTAKE_API_KEYS", default=[])
    METRICS_TOKENS = env.list("METRICS_TOKENS", default=[])

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-local-development-only")
LOG_FORMAT = env("LOG_FORMAT", default="console")
LOGGING["handlers"]["stdout"]["formatter"] = LOG_FORMAT  # noqa: F405
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
