#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Production settings unless ``DJANGO_SETTINGS_MODULE`` says otherwise (like ``wsgi.py`` and ``celery.py``):
``scripts/manage`` runs this with the local stack's settings, the tests with their own.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings.production")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
