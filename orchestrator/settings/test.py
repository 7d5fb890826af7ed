"""Tests: fixed non-secret credentials, fast hashing, tasks run in-process unless a test starts a worker.

DATABASE_URL and REDIS_URL select real PostgreSQL and Redis (CI); without them the test plugin starts
an embedded Redis, and SQLite is used. The plugin also starts moto_server and points AWS at it.
"""

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = "test-only-not-a-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
INTAKE_API_KEYS = ["test-intake-key", "test-intake-key-next"]
INTAKE_BASIC_AUTH = ["eventbridge:test-basic-password"]
WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
LOG_FORMAT = "console"
LOGGING["handlers"]["stdout"]["formatter"] = "console"  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
