FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DJANGO_SETTINGS_MODULE=orchestrator.settings.local python manage.py collectstatic --no-input -v 0
EXPOSE 8000
# gunicorn.conf.py (read from WORKDIR): gevent workers, one per core
CMD ["gunicorn", "orchestrator.wsgi:application", "--bind", "0.0.0.0:8000"]
