"""Settings shared by every environment. Every value comes from the environment (12-factor).

Each variable read here is listed in the README's configuration table; ``docker-compose.yml`` may only
set variables that this module (or ``local``/``production``) reads, and a test checks that.
"""

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = BASE_DIR / ".data"

env = environ.Env()

# --- Core ---------------------------------------------------------------------------------------
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
# The local settings' default key. Production refuses it, like any key with Django's "django-insecure-"
# prefix: the key that encrypts secrets at rest derives from SECRET_KEY.
LOCAL_SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Public base URL of this service: EventBridge's API destination points at it (bootstrap_aws).
ORCHESTRATOR_BASE_URL = env("ORCHESTRATOR_BASE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    # First: the staff portal's templates (the dashboard on the admin index, the tenant page) override the admin's.
    "portal",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our own static files, no CDN
    "orchestrator",
    "events",
    "tenants",
    "webhooks",
]

MIDDLEWARE = [
    # /orchestrator/live and /orchestrator/ready, answered before host checks and the HTTPS redirect.
    "orchestrator.probes.ProbeMiddleware",
    "orchestrator.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "orchestrator.urls"
WSGI_APPLICATION = "orchestrator.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# Embedded default: SQLite in .data/ (WAL + immediate transactions so web and worker can share it).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", default=3)
    # Health checks: a connection kept from an earlier request, or lent by the pool, is tested before it is
    # used again, so a server restart does not fail a request per connection.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env.bool("DATABASE_POOL", default=False):
        # A pool per process (gevent web workers turn it on, see gunicorn.conf.py): a request borrows a
        # connection and gives it back when it finishes, so connections are not kept per thread.
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=3.0),  # as long as a connect may take
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve admin assets straight from the apps in development, without collectstatic.
WHITENOISE_USE_FINDERS = True

# Seconds a round of /orchestrator/status dependency checks is reused by each web process (0: every call checks).
STATUS_CACHE_SECONDS = env.float("STATUS_CACHE_SECONDS", default=5.0)

# --- Redis / Celery -----------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
# A task is acknowledged only after it ran, and re-queued if its worker dies, so a killed worker never
# drops work. Handlers are idempotent, so a re-run is safe.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang a request when the broker is gone: the sweeper re-enqueues later.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "max_retries": 1,
}
CELERY_TASK_PUBLISH_RETRY = False
# Connections are recycled by orchestrator.celery.recycle_database_connections (CONN_MAX_AGE, health checks);
# this keeps Celery's Django fix-up from also closing them around every task.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_BEAT_SCHEDULE: dict = {}


def _beat_every(task: str, seconds: float) -> None:
    """Beat sends ``task`` every ``seconds``; the schedule entry is named after the task."""
    CELERY_BEAT_SCHEDULE[task] = {"task": task, "schedule": float(seconds)}


# Beat runs on every node: the schedule and a lock live in Redis (RedBeat, orchestrator/beat.py); the beat holding
# the lock schedules, the others try to take it every loop interval and take over when the holder stops
# extending it (it extends it on every tick).
CELERY_BEAT_SCHEDULER = "orchestrator.beat.LockedScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = env.int("BEAT_MAX_LOOP_INTERVAL_SECONDS", default=5)
BEAT_LOCK_TIMEOUT_SECONDS = env.int("BEAT_LOCK_TIMEOUT_SECONDS", default=30)
BEAT_REDIS_URL = env("BEAT_REDIS_URL", default="")  # empty: the broker's Redis
BEAT_KEY_PREFIX = env("BEAT_KEY_PREFIX", default="orchestrator:beat:")

# --- AWS ----------------------------------------------------------------------------------------
# Endpoints follow the AWS SDK convention: AWS_ENDPOINT_URL for all services, AWS_ENDPOINT_URL_<SERVICE>
# per service. Unset means the real AWS endpoint for the region.
AWS_REGION = env("AWS_REGION", default=env("AWS_DEFAULT_REGION", default="us-east-1"))
AWS_ENDPOINT_URL = env("AWS_ENDPOINT_URL", default="") or None
AWS_SERVICE_ENDPOINT_URLS = {
    service: env(f"AWS_ENDPOINT_URL_{variable}", default="") or AWS_ENDPOINT_URL
    for service, variable in {
        "dynamodb": "DYNAMODB",
        "codebuild": "CODEBUILD",
        "events": "EVENTBRIDGE",
        "sqs": "SQS",
        "iam": "IAM",
        "sts": "STS",
        "s3": "S3",
    }.items()
}
AWS_CONNECT_TIMEOUT = env.float("AWS_CONNECT_TIMEOUT", default=3.0)
AWS_READ_TIMEOUT = env.float("AWS_READ_TIMEOUT", default=10.0)
DYNAMODB_TENANT_TABLE = env("DYNAMODB_TENANT_TABLE", default="orchestrator-tenants")
DYNAMODB_TIER_TABLE = env("DYNAMODB_TIER_TABLE", default="orchestrator-tier-mapping")
EVENT_BUS_NAME = env("EVENT_BUS_NAME", default="orchestrator")
EVENT_SOURCE = env("EVENT_SOURCE", default="saas.orchestrator")
# Service role CodeBuild projects run as; bootstrap_aws creates projects with it.
CODEBUILD_SERVICE_ROLE_ARN = env("CODEBUILD_SERVICE_ROLE_ARN", default="")

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="json")  # json | console
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "orchestrator.logging.RequestIdFilter"},
        "mask_secrets": {"()": "orchestrator.logging.SecretMaskingFilter"},
        "periodic_tasks_at_debug": {"()": "orchestrator.logging.PeriodicTaskFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "console": {"format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "mask_secrets"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # A worker's start-up lines ("... ready.") at any LOG_LEVEL: operators and the live stack wait for it.
        "celery.apps.worker": {"level": "INFO"},
        # Beat sending, and workers receiving and finishing, its periodic tasks: DEBUG (orchestrator/logging.py).
        **{
            name: {"filters": ["periodic_tasks_at_debug"]}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
        },
    },
}

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Token first: a request without credentials gets 401 with ``WWW-Authenticate: Token`` (not 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PAGINATION_CLASS": "orchestrator.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "orchestrator.errors.api_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "orchestrator.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [],
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Orchestrator API",
    "DESCRIPTION": (
        "Control plane for multi-tenant SaaS. EventBridge (an API destination) posts tenant lifecycle "
        "events to the intake; staff and machines manage tenants, tiers, builds and webhooks."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.TenantStatus",
        "BuildStatusEnum": "tenants.models.BuildStatus",
        "BuilderTypeEnum": "tenants.models.BuilderType",
        "PipelineRunStatusEnum": "tenants.models.PipelineRunStatus",
        "PipelineOperationEnum": "tenants.models.PipelineOperation",
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # The docs pages load their scripts, styles and favicon from drf-spectacular-sidecar's static files: they
    # work on a network without a CDN (templates/drf_spectacular/redoc.html drops ReDoc's web fonts too).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The admin dashboard's charts (portal.charts) are computed at most this often (0: on every page view).
DASHBOARD_CHARTS_CACHE_SECONDS = env.int("DASHBOARD_CHARTS_CACHE_SECONDS", default=30)

# --- Events (intake, dispatch, publishing) ------------------------------------------------------
# Header that carries the API key an EventBridge connection sends, and the accepted keys (comma
# separated, several at once so they can be rotated). HTTP Basic credentials as user:password pairs.
INTAKE_API_KEY_HEADER = env("INTAKE_API_KEY_HEADER", default="x-api-key")
INTAKE_API_KEYS = env.list("INTAKE_API_KEYS", default=[])
INTAKE_BASIC_AUTH = env.list("INTAKE_BASIC_AUTH", default=[])
# The schemes the intake accepts (events/authentication.py): api_key, basic, bearer_jwt (JWTs of an external
# issuer, checked against its JWKS), oauth_client (tokens of our POST /oauth/token, clients in the admin).
INTAKE_AUTH_SCHEMES = env.list("INTAKE_AUTH_SCHEMES", default=["api_key", "basic"])
INTAKE_JWKS_URL = env("INTAKE_JWKS_URL", default="")
INTAKE_JWT_ISSUER = env("INTAKE_JWT_ISSUER", default="")  # required with bearer_jwt (else every token is refused)
INTAKE_JWT_AUDIENCE = env("INTAKE_JWT_AUDIENCE", default="")  # empty: not checked (Cognito access tokens carry none)
INTAKE_JWT_ALGORITHMS = env.list("INTAKE_JWT_ALGORITHMS", default=["RS256"])  # asymmetric only
INTAKE_JWT_LEEWAY_SECONDS = env.int("INTAKE_JWT_LEEWAY_SECONDS", default=30)  # clock skew allowed on exp/nbf/iat
# The issuer's keys are cached this long; a token signed with a key not in the cache fetches them again, at
# most once per INTAKE_JWKS_MIN_REFRESH_SECONDS (so forged key ids cannot make us hammer the issuer).
INTAKE_JWKS_CACHE_SECONDS = env.int("INTAKE_JWKS_CACHE_SECONDS", default=300)
INTAKE_JWKS_MIN_REFRESH_SECONDS = env.int("INTAKE_JWKS_MIN_REFRESH_SECONDS", default=30)
INTAKE_JWKS_TIMEOUT_SECONDS = env.float("INTAKE_JWKS_TIMEOUT_SECONDS", default=5.0)
# Our own token endpoint (oauth_client): lifetime of the tokens it issues, and how long a rotated-out client
# secret still gets tokens (time to update the EventBridge connection).
OAUTH_TOKEN_TTL_SECONDS = env.int("OAUTH_TOKEN_TTL_SECONDS", default=3600)
OAUTH_CLIENT_SECRET_GRACE_SECONDS = env.int("OAUTH_CLIENT_SECRET_GRACE_SECONDS", default=86400)
INTAKE_MAX_BODY_BYTES = env.int("INTAKE_MAX_BODY_BYTES", default=256 * 1024)
# JSON bodies (the intake and the staff API) nested deeper are answered 400 (orchestrator/parsers.py). Events
# nest under ten levels; 64 is System.Text.Json's default limit, far below where recursive code would fail.
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=64)
# Group commit (events/intake/group_commit.py): events accepted at the same moment by one web process share one
# INSERT and one COMMIT (at most this many); each request still answers only once its row is committed.
INTAKE_GROUP_COMMIT = env.bool("INTAKE_GROUP_COMMIT", default=True)
INTAKE_GROUP_COMMIT_MAX_BATCH = env.int("INTAKE_GROUP_COMMIT_MAX_BATCH", default=200)
INTAKE_STORE_TIMEOUT_SECONDS = env.float("INTAKE_STORE_TIMEOUT_SECONDS", default=10.0)
# Accepted events are dispatched to the workers up to this many ids per message; a web process sends at
# most one dispatch per interval (the first event after a quiet spell goes at once).
EVENT_DISPATCH_BATCH = env.int("EVENT_DISPATCH_BATCH", default=25)
EVENT_DISPATCH_INTERVAL_SECONDS = env.float("EVENT_DISPATCH_INTERVAL_SECONDS", default=0.05)
EVENT_MAX_ATTEMPTS = env.int("EVENT_MAX_ATTEMPTS", default=5)
# Events accepted but not finished after this many seconds are re-enqueued by the sweeper.
EVENT_SWEEP_AFTER_SECONDS = env.int("EVENT_SWEEP_AFTER_SECONDS", default=120)
# After a failed publish to the broker, the intake stops trying for this long (the sweeper enqueues).
EVENT_PUBLISH_PAUSE_SECONDS = env.float("EVENT_PUBLISH_PAUSE_SECONDS", default=5.0)
EVENT_SWEEP_INTERVAL_SECONDS = env.int("EVENT_SWEEP_INTERVAL_SECONDS", default=60)  # how often the sweeper runs
# Handler retries: exponential backoff from this many seconds, with jitter, capped.
EVENT_RETRY_BACKOFF_SECONDS = env.float("EVENT_RETRY_BACKOFF_SECONDS", default=10.0)
EVENT_RETRY_BACKOFF_MAX_SECONDS = env.float("EVENT_RETRY_BACKOFF_MAX_SECONDS", default=900.0)
# Outbox (events we emit): pending rows older than this are re-sent by beat; give up after N sends.
OUTBOX_RESEND_AFTER_SECONDS = env.int("OUTBOX_RESEND_AFTER_SECONDS", default=60)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=20)
OUTBOX_SEND_ATTEMPTS = env.int("OUTBOX_SEND_ATTEMPTS", default=3)  # PutEvents rounds per send (failed entries)
OUTBOX_RETRY_BACKOFF_SECONDS = env.float("OUTBOX_RETRY_BACKOFF_SECONDS", default=0.5)  # between those rounds
# bootstrap_aws wires EventBridge to the intake: connection, API destination, rules, dead-letter queue.
EVENT_INTAKE_WIRING = env.bool("EVENT_INTAKE_WIRING", default=True)
EVENT_INTAKE_RESOURCE_NAME = env("EVENT_INTAKE_RESOURCE_NAME", default="orchestrator-intake")  # name prefix
EVENT_API_DESTINATION_RATE_PER_SECOND = env.int("EVENT_API_DESTINATION_RATE_PER_SECOND", default=300)
# IAM role EventBridge assumes to invoke the API destination (required on real AWS).
EVENT_INTAKE_ROLE_ARN = env("EVENT_INTAKE_ROLE_ARN", default="")
# Against an emulator (an AWS endpoint is set): also route the bus to a queue that a relay posts to the
# intake, because moto calls API destinations without the event body or the connection's key.
EVENT_EMULATOR_RELAY = env.bool("EVENT_EMULATOR_RELAY", default=True)
# The control planes whose events the intake accepts (events/dialects): "original" (the tenant-management
# service's TENANT_PROVISIONING / TENANT_DEPROVISIONING) and "sbt" (AWS's SaaS Builder Toolkit, sbt-aws).
EVENT_DIALECTS = env.list("EVENT_DIALECTS", default=["original"])
# sbt-aws: the bus its control plane and application plane share (empty: EVENT_BUS_NAME), the sources of its
# EventManager (controlPlaneEventSource, applicationPlaneEventSource), the builder its tenants' builds use,
# and which exported variables of a build go into jobOutput.tenantData / .tenantRegistrationData (as a
# ScriptJob's environmentVariablesToOutgoingEvent does).
SBT_EVENT_BUS_NAME = env("SBT_EVENT_BUS_NAME", default="")
SBT_CONTROL_PLANE_SOURCE = env("SBT_CONTROL_PLANE_SOURCE", default="sbt.control.plane")
SBT_APPLICATION_PLANE_SOURCE = env("SBT_APPLICATION_PLANE_SOURCE", default="sbt.application.plane")
SBT_BUILDER_TYPE = env("SBT_BUILDER_TYPE", default="CODE_BUILD")
SBT_TENANT_DATA_VARIABLES = env.list("SBT_TENANT_DATA_VARIABLES", default=[])
SBT_TENANT_REGISTRATION_DATA_VARIABLES = env.list(
    "SBT_TENANT_REGISTRATION_DATA_VARIABLES", default=["registrationStatus"]
)
_beat_every("events.sweep_stale_events", EVENT_SWEEP_INTERVAL_SECONDS)
_beat_every("events.publish_pending_outbox", OUTBOX_RESEND_AFTER_SECONDS)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "EventStatusEnum": "events.models.EventStatus.choices",
        "IntakeStatusEnum": ["accepted", "duplicate"],
        "OutboxStatusEnum": "events.models.OutboxStatus.choices",
    }
)
if EVENT_EMULATOR_RELAY and AWS_SERVICE_ENDPOINT_URLS["events"]:
    _beat_every("events.relay_emulator_events", 2)

# --- Tenants (lifecycle, builds, DynamoDB sync) -------------------------------------------------
# Builds in progress longer than this are polled with BatchGetBuilds.
BUILD_POLL_AFTER_SECONDS = env.int("BUILD_POLL_AFTER_SECONDS", default=300)
# How often beat runs the build poller.
BUILD_POLL_INTERVAL_SECONDS = env.int("BUILD_POLL_INTERVAL_SECONDS", default=60)
# A build is recorded (PENDING_START) with the attempt and handed to its builder after that commits. One not
# started this long after it was recorded (or after its last failed start) is started again with the same
# idempotency token: keep it well inside CodeBuild's 5-minute idempotency window.
BUILD_START_RETRY_AFTER_SECONDS = env.int("BUILD_START_RETRY_AFTER_SECONDS", default=30)
# How often beat runs the build recovery: start intents, LOCAL builds whose lease ran out, unposted outcomes.
BUILD_RECOVERY_INTERVAL_SECONDS = env.int("BUILD_RECOVERY_INTERVAL_SECONDS", default=10)
# How often beat re-enqueues DynamoDB writes that have not landed (tenants/tiers with synced_version < version).
DYNAMODB_SYNC_SWEEP_SECONDS = env.int("DYNAMODB_SYNC_SWEEP_SECONDS", default=300)
# Secret-named values in the DynamoDB mirror: "sealed" (the token the database holds; only the orchestrator's
# keys open it) or "omit" (the key left out). Never plain: the data plane's readers are not staff.
DYNAMODB_MIRROR_SECRETS = env("DYNAMODB_MIRROR_SECRETS", default="sealed")
if DYNAMODB_MIRROR_SECRETS not in ("sealed", "omit"):
    raise ImproperlyConfigured(f"DYNAMODB_MIRROR_SECRETS must be sealed or omit, not {DYNAMODB_MIRROR_SECRETS!r}")
# LOCAL builder: run an allow-listed command on the worker (demo / development; tenants/builders/local.py).
# Off unless enabled; production settings refuse to start with it on unless LOCAL_BUILDER_ALLOW_IN_PRODUCTION.
LOCAL_BUILDER_ENABLED = env.bool("LOCAL_BUILDER_ENABLED", default=False)
LOCAL_BUILDER_ALLOW_IN_PRODUCTION = env.bool("LOCAL_BUILDER_ALLOW_IN_PRODUCTION", default=False)
LOCAL_BUILD_ROOT = env("LOCAL_BUILD_ROOT", default=str(BASE_DIR))
# The only command lines a LOCAL tier's projects may be (comma separated; the executable relative to the root).
LOCAL_BUILD_COMMANDS = env.list("LOCAL_BUILD_COMMANDS", default=[])
# What local and test settings allow.
DEMO_BUILD_COMMANDS = [
    f"demo/build.sh {phase}" for phase in ("provision", "deprovision", "update", "suspend", "resume")
]
# A worker running as root runs LOCAL builds as this user (never as root); PATH the build gets.
LOCAL_BUILD_USER = env("LOCAL_BUILD_USER", default="nobody")
LOCAL_BUILD_PATH = env("LOCAL_BUILD_PATH", default="/usr/local/bin:/usr/bin:/bin")
# Celery queue of the LOCAL runner task: the thread-pool worker consumes it with the deliveries (`-Q webhooks,builds
# -P threads`), so a running build waits on its command without holding a process event handlers need.
LOCAL_BUILD_QUEUE = env("LOCAL_BUILD_QUEUE", default="builds")
# Seconds a LOCAL command may run before it is killed and the build fails.
LOCAL_BUILD_TIMEOUT_SECONDS = env.int("LOCAL_BUILD_TIMEOUT_SECONDS", default=900)
# Attempts the runner makes at once to POST a LOCAL build's outcome to the intake (exponential backoff
# between them); the outcome is stored first, and the recovery re-posts it until the intake accepts it.
LOCAL_BUILD_POST_ATTEMPTS = env.int("LOCAL_BUILD_POST_ATTEMPTS", default=5)
# The runner's lease on a LOCAL build, renewed every third of it while the command runs: a worker that dies
# mid-build loses it, and the build runs again (same identity) once it has run out.
LOCAL_BUILD_LEASE_SECONDS = env.int("LOCAL_BUILD_LEASE_SECONDS", default=30)
# Runs of one LOCAL build (its first and those after lost runners) before it is given up as FAULT.
LOCAL_BUILD_MAX_RUNS = env.int("LOCAL_BUILD_MAX_RUNS", default=3)
# Variables of the worker's own environment a LOCAL command inherits (nothing else leaks to it); they never
# replace what the runner sets itself (PATH, HOME, TMPDIR, LANG, CODEBUILD_*...).
LOCAL_BUILD_PASSTHROUGH_ENV = env.list("LOCAL_BUILD_PASSTHROUGH_ENV", default=["LC_ALL", "TZ", "DEMO_RECEIVER_URL"])
_beat_every("tenants.poll_builds", BUILD_POLL_INTERVAL_SECONDS)
_beat_every("tenants.recover_builds", BUILD_RECOVERY_INTERVAL_SECONDS)
# Pipeline steps past their deadline fail (a delay ends), runs whose advance task was lost move on.
PIPELINE_SWEEP_INTERVAL_SECONDS = env.int("PIPELINE_SWEEP_INTERVAL_SECONDS", default=30)
_beat_every("tenants.sweep_pipeline_runs", PIPELINE_SWEEP_INTERVAL_SECONDS)
_beat_every("tenants.sync_pending", DYNAMODB_SYNC_SWEEP_SECONDS)

# --- Webhooks (deployment chain, signed callbacks) ----------------------------------------------
WEBHOOK_CONNECT_TIMEOUT = env.float("WEBHOOK_CONNECT_TIMEOUT", default=10.0)
WEBHOOK_READ_TIMEOUT = env.float("WEBHOOK_READ_TIMEOUT", default=10.0)
# Hosts (or CIDR ranges) outbound calls may reach although they resolve to private/loopback addresses.
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=[])
# Bytes of a receiver's answer read at most (the rest is dropped), and characters of it stored per attempt.
WEBHOOK_MAX_RESPONSE_BYTES = env.int("WEBHOOK_MAX_RESPONSE_BYTES", default=64 * 1024)
WEBHOOK_STORED_RESPONSE_CHARS = env.int("WEBHOOK_STORED_RESPONSE_CHARS", default=2000)
# Deployment chain order (comma separated): app_plane_bootstrap, feature_service_bootstrap,
# control_plane_webhook, subscribers. A step starts only after the previous one succeeded.
WEBHOOK_CHAIN_STEPS = env.list(
    "WEBHOOK_CHAIN_STEPS",
    default=["app_plane_bootstrap", "feature_service_bootstrap", "control_plane_webhook", "subscribers"],
)
# Nominal retry delays in seconds (full jitter applied), then WEBHOOK_RETRY_INTERVAL until WEBHOOK_RETRY_WINDOW.
WEBHOOK_RETRY_SCHEDULE = [int(v) for v in env.list("WEBHOOK_RETRY_SCHEDULE", default=[5, 30, 120, 600, 1800, 3600])]
WEBHOOK_RETRY_INTERVAL = env.int("WEBHOOK_RETRY_INTERVAL", default=3600)
WEBHOOK_RETRY_WINDOW = env.int("WEBHOOK_RETRY_WINDOW", default=24 * 3600)
# Circuit breaker per subscriber endpoint (webhooks.circuit): after this many failures in a row (0: never) its
# deliveries wait, unsent, for the cooldown; then one probe; each failed probe doubles the cooldown, capped.
WEBHOOK_CIRCUIT_FAILURES = env.int("WEBHOOK_CIRCUIT_FAILURES", default=5)
WEBHOOK_CIRCUIT_COOLDOWN_SECONDS = env.float("WEBHOOK_CIRCUIT_COOLDOWN_SECONDS", default=30.0)
WEBHOOK_CIRCUIT_MAX_COOLDOWN_SECONDS = env.float("WEBHOOK_CIRCUIT_MAX_COOLDOWN_SECONDS", default=900.0)
# Longest Retry-After (seconds) a receiver can ask for; longer answers are capped.
WEBHOOK_MAX_RETRY_AFTER = env.int("WEBHOOK_MAX_RETRY_AFTER", default=3600)
# Keys that encrypt webhook secrets at rest, newest first (Fernet); empty: derived from DJANGO_SECRET_KEY.
WEBHOOK_SECRET_KEYS = env.list("WEBHOOK_SECRET_KEYS", default=[])
# Seconds a rotated-out endpoint secret keeps signing (both signatures are sent meanwhile).
WEBHOOK_SECRET_GRACE_SECONDS = env.int("WEBHOOK_SECRET_GRACE_SECONDS", default=24 * 3600)
# Celery queue for deliveries (run a worker with -Q default,webhooks).
WEBHOOK_QUEUE = env("WEBHOOK_QUEUE", default="webhooks")
# Requests in flight to one subscriber endpoint at most, across all workers (0: no limit), and the delay
# (jittered) before a delivery whose endpoint is busy is tried again: a slow endpoint cannot hold every
# delivery thread (webhooks/concurrency.py).
WEBHOOK_ENDPOINT_MAX_IN_FLIGHT = env.int("WEBHOOK_ENDPOINT_MAX_IN_FLIGHT", default=4)
WEBHOOK_ENDPOINT_BUSY_DELAY_SECONDS = env.float("WEBHOOK_ENDPOINT_BUSY_DELAY_SECONDS", default=2.0)
# Deliveries per task when many are due at once (a fan-out to subscribers, the dispatcher, the sweeper), and
# the threads per worker process that send their requests in parallel (webhooks/sending.py).
WEBHOOK_DELIVERY_BATCH = env.int("WEBHOOK_DELIVERY_BATCH", default=20)
# Sender threads are started on demand and reused; with fewer than (worker threads x batch) a batch's requests
# could wait behind other batches' slow receivers, so the default covers 8 worker threads of full batches.
WEBHOOK_SEND_THREADS = env.int("WEBHOOK_SEND_THREADS", default=8 * WEBHOOK_DELIVERY_BATCH)
# How often beat queues the deliveries that became due (retries): they wait in the database, not as
# delayed messages in the broker.
WEBHOOK_DISPATCH_INTERVAL_SECONDS = env.float("WEBHOOK_DISPATCH_INTERVAL_SECONDS", default=2.0)
CELERY_BEAT_SCHEDULE["webhooks-dispatch-due"] = {
    "task": "webhooks.dispatch_due",
    "schedule": WEBHOOK_DISPATCH_INTERVAL_SECONDS,
    # A pass nobody ran in time is replaced by the next one, not piled up behind a stopped worker.
    "options": {"queue": WEBHOOK_QUEUE, "expires": WEBHOOK_DISPATCH_INTERVAL_SECONDS * 5},
}
# Due deliveries whose task was lost are re-enqueued by the sweeper after this many seconds.
WEBHOOK_SWEEP_AFTER_SECONDS = env.int("WEBHOOK_SWEEP_AFTER_SECONDS", default=120)
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "webhooks.sweep",
    "schedule": 60.0,
    "options": {"queue": WEBHOOK_QUEUE},
}
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "WebhookDeliveryStatusEnum": "webhooks.models.DeliveryStatus.choices",
        "WebhookDeliveryStepEnum": "webhooks.models.DeliveryStep.choices",
        "DeliveryAttemptOutcomeEnum": "webhooks.models.AttemptOutcome.choices",
        "WebhookSigningSchemeEnum": "webhooks.models.SigningScheme.choices",
        "WebhookEventTypeEnum": "webhooks.models.WebhookEventType.choices",
    }
)

# --- Retention and offboarding (orchestrator/retention.py; each app registers what it keeps) -----------
# Days rows are kept (0: forever): processed events (with their attempts; at least EventBridge's 24 h retry
# window, or a late redelivery would be processed again), sent outbox rows, attempts of finished webhook
# deliveries, and the log tails LOCAL builds leave in the tenant's history (the entries stay).
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=30)
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=30)
DELIVERY_ATTEMPT_RETENTION_DAYS = env.int("DELIVERY_ATTEMPT_RETENTION_DAYS", default=30)
BUILD_LOG_RETENTION_DAYS = env.int("BUILD_LOG_RETENTION_DAYS", default=90)
# Deprovisioned (INACTIVE) tenants are purged this many days after they became inactive (0: never), once
# their full record is exported (JSON Lines) to TENANT_EXPORT_BUCKET (S3) or, without one, TENANT_EXPORT_DIR.
TENANT_PURGE_AFTER_DAYS = env.int("TENANT_PURGE_AFTER_DAYS", default=0)
TENANT_EXPORT_DIR = env("TENANT_EXPORT_DIR", default=str(DATA_DIR / "exports"))
TENANT_EXPORT_BUCKET = env("TENANT_EXPORT_BUCKET", default="")
TENANT_EXPORT_PREFIX = env("TENANT_EXPORT_PREFIX", default="tenant-exports/")
# Rows per delete (one short transaction each), how often beat runs the purge and how long one run may take.
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=1000)
RETENTION_INTERVAL_SECONDS = env.int("RETENTION_INTERVAL_SECONDS", default=3600)
RETENTION_MAX_SECONDS = env.int("RETENTION_MAX_SECONDS", default=600)
CELERY_BEAT_SCHEDULE["orchestrator.retention_purge"] = {
    "task": "orchestrator.retention_purge",
    "schedule": float(RETENTION_INTERVAL_SECONDS),
    "options": {"expires": float(RETENTION_INTERVAL_SECONDS)},
}
# --- Observability (orchestrator/metrics.py, orchestrator/telemetry.py) -------------------------
# GET /metrics answers only a bearer token of this list (comma separated, several at once for rotation); empty:
# /metrics is not served (404). Workers serve theirs on METRICS_ADDRESS:METRICS_PORT instead (0: not served).
METRICS_TOKENS = env.list("METRICS_TOKENS", default=[])
METRICS_PORT = env.int("METRICS_PORT", default=0)
METRICS_ADDRESS = env("METRICS_ADDRESS", default="0.0.0.0")  # noqa: S104 - a worker's scrape port, not public
# Gauges read from the database (tenants by status, oldest unprocessed event, ...) are read again at most this
# often by the process answering a scrape; between two reads the cached values are served.
METRICS_DATABASE_REFRESH_SECONDS = env.float("METRICS_DATABASE_REFRESH_SECONDS", default=30.0)

# --- Telling people: operational events, alert mail, the doctor ----------------------------------
# Absolute base of the admin links in operational events and alert mails (where staff open the admin).
ADMIN_BASE_URL = env("ADMIN_BASE_URL", default=ORCHESTRATOR_BASE_URL)
# Staff who get alert mails (comma separated; empty: no mail). Sent with Django's mail (EMAIL_* below).
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
# At most one mail per (kind, subject) in this many seconds; the next one says how many were held back.
ALERT_EMAIL_MIN_INTERVAL_SECONDS = env.int("ALERT_EMAIL_MIN_INTERVAL_SECONDS", default=900)
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="orchestrator@localhost")
# The doctor (portal/doctor): how long each situation may last before it "needs attention".
DOCTOR_OUTCOME_WAIT_MINUTES = env.int("DOCTOR_OUTCOME_WAIT_MINUTES", default=30)
DOCTOR_CIRCUIT_WAIT_MINUTES = env.int("DOCTOR_CIRCUIT_WAIT_MINUTES", default=15)
DOCTOR_SYNC_LAG_MINUTES = env.int("DOCTOR_SYNC_LAG_MINUTES", default=15)
DOCTOR_TRANSITIONAL_MINUTES = env.int("DOCTOR_TRANSITIONAL_MINUTES", default=120)
# How often beat runs the doctor and announces new findings (tenant.stuck, once per finding).
DOCTOR_INTERVAL_SECONDS = env.int("DOCTOR_INTERVAL_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["portal.doctor_announce"] = {
    "task": "portal.doctor_announce",
    "schedule": float(DOCTOR_INTERVAL_SECONDS),
    "options": {"expires": float(DOCTOR_INTERVAL_SECONDS)},
}

# --- Benchmarks ---------------------------------------------------------------------------------
# Mounts POST /bench/echo/ (parses JSON, answers 202; no auth, no database): the baseline the intake
# benchmark compares against. Off by default; `python -m bench intake` turns it on for its own server.
BENCH_ENDPOINTS = env.bool("BENCH_ENDPOINTS", default=False)
