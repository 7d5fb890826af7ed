# The orchestrator's image: docker-compose.yml runs it locally, the CDK app (deploy/aws) on ECS Fargate.
# Build: docker build -t orchestrator .   (one image for web, workers and beat; the command picks the process)

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/
# Only the runtime part of requirements.txt (the lines above "# Local stack"): the image needs neither the
# local stack (moto, embedded Redis) nor the test tooling.
RUN sed '/^# Local stack/,$d' /tmp/requirements.txt > /tmp/runtime.txt \
    && python -m venv /venv \
    && /venv/bin/pip install -r /tmp/runtime.txt

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=orchestrator.settings.production
# The processes run as this user; its home holds gunicorn's control socket (~/.gunicorn).
RUN useradd --system --uid 10001 --user-group --create-home orchestrator
WORKDIR /app
COPY --from=build /venv /venv
COPY . .
# Static files are collected into the image (whitenoise serves them). Production settings refuse to load
# without a secret key: a throwaway one serves these build steps only. `check` imports every app, URL and
# view, and the Celery schedule's scheduler, so a runtime package missing above fails the build, not a deploy.
RUN DJANGO_SECRET_KEY=build-only python manage.py collectstatic --no-input -v 0 \
    && DJANGO_SECRET_KEY=build-only python manage.py check \
    && DJANGO_SECRET_KEY=build-only python -c "from celery.utils.imports import symbol_by_name; \
from orchestrator.celery import app; app.loader.import_default_modules(); symbol_by_name(app.conf.beat_scheduler)"
USER orchestrator
EXPOSE 8000
# The web process's health: 200 when its dependencies answer (the load balancer on ECS probes the same path).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/orchestrator/status', timeout=4)"]
# Builds DATABASE_URL from its parts where the platform passes them separately (ECS), then runs the command.
ENTRYPOINT ["python", "deploy/entrypoint.py"]
# gunicorn.conf.py (read from WORKDIR): gevent workers, one per core
CMD ["gunicorn", "orchestrator.wsgi:application", "--bind", "0.0.0.0:8000"]
