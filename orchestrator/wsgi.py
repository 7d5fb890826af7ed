"""The WSGI application. Production settings unless ``DJANGO_SETTINGS_MODULE`` says otherwise: a server started
without it refuses to run on the development key or with DEBUG on (``scripts/run`` picks the local settings)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings.production")
application = get_wsgi_application()
