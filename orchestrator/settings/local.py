"""Local development: debug on, embedded defaults, loopback callbacks allowed, the LOCAL builder on (the
demo tiers run ``demo/build.sh``).

``make run`` writes generated local secrets (Django key, intake API key) to ``.data/local.env``; they are
read here so the web server, the worker and management commands agree on them.
"""

from .base import *  # noqa: F403
from .base import DATA_DIR, DEMO_BUILD_COMMANDS, LOCAL_SECRET_KEY, env

environ_file = DATA_DIR / "local.env"
if environ_file.exists():
    env.read_env(str(environ_file), overwrite=False)
    # Re-read what the file may set (base read the process environment before the file was loaded).
    INTAKE_API_KEYS = env.list("INTAKE_API_KEYS", default=[])
    METRICS_TOKENS = env.list("METRICS_TOKENS", default=[])

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default=LOCAL_SECRET_KEY)
LOG_FORMAT = env("LOG_FORMAT", default="console")
LOGGING["handlers"]["stdout"]["formatter"] = LOG_FORMAT  # noqa: F405
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
LOCAL_BUILDER_ENABLED = env.bool("LOCAL_BUILDER_ENABLED", default=True)
LOCAL_BUILD_COMMANDS = env.list("LOCAL_BUILD_COMMANDS", default=DEMO_BUILD_COMMANDS)
