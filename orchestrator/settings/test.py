"""Tests: fixed non-secret credentials, fast hashing, tasks run in-process unless a test starts a worker.

DATABASE_URL and REDIS_URL select real PostgreSQL and Redis (CI); without them the test plugin starts
an embedded Redis, and SQLite is used. The plugin also starts moto_server and points AWS at it.
"""

import os
import tempfile

from .base import *  # noqa: F403
from .base import DEMO_BUILD_COMMANDS, env

SECRET_KEY = "test-only-not-a-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
INTAKE_API_KEYS = ["test-intake-key", "test-intake-key-next"]
INTAKE_BASIC_AUTH = ["eventbridge:test-basic-password"]
# Tests run inside a transaction per test, which a writer thread's own connection cannot share: the
# intake stores in the request's transaction unless a (transactional) test switches group commit on.
INTAKE_GROUP_COMMIT = False
WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
LOCAL_BUILDER_ENABLED = True
LOCAL_BUILD_COMMANDS = DEMO_BUILD_COMMANDS
# Database gauges are read on every scrape, so a test sees the rows it just wrote.
METRICS_DATABASE_REFRESH_SECONDS = 0.0
# The dashboard's charts likewise (a test that checks the cache turns it on).
DASHBOARD_CHARTS_CACHE_SECONDS = 0
LOG_FORMAT = "console"
LOGGING["handlers"]["stdout"]["formatter"] = "console"  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# SQLite: a file per test process instead of shared-cache memory, so concurrent connections (threads in
# race tests, a worker thread) wait for the write lock as in production instead of failing "table locked".
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"{tempfile.gettempdir()}/orchestrator-test-{os.getpid()}.sqlite3"}  # noqa: F405
