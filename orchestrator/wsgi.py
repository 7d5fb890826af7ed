"""The WSGI application. Production settings unless ``DJANGO_SETTINGS_MODULE`` says otherwise: a server started
without it refuses to run on the development key or with DEBUG on (``scripts/run`` picks the local settings)."""

import os

from django.core.wsgi import get_wsgi_application

from orchestrator.telemetry import telemetry_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings.production")
# gunicorn loads the application in each worker, after the fork: where tracing must be set up (off by default).
telemetry_setup(service="web")
application = get_wsgi_application()
