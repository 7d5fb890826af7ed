"""docker-compose.yml cannot run on the CI machines (no Docker engine): check it against the code, and against the
Procfile that `scripts/run` starts, instead."""

import re
import shlex
from pathlib import Path

import yaml
from django.conf import settings
from honcho.environ import parse_procfile

ROOT = Path(settings.BASE_DIR)
# Variables read by the AWS SDK itself rather than by our settings.
AWS_SDK_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"}
# Read by prometheus_client itself (its multiprocess mode), before any setting is.
METRICS_LIBRARY_VARIABLES = {"PROMETHEUS_MULTIPROC_DIR"}


def variables_read_by_settings() -> set[str]:
    source = "\n".join(path.read_text() for path in (ROOT / "orchestrator" / "settings").glob("*.py"))
    names = set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z0-9_]+)["']""", source))
    names.update(f"AWS_ENDPOINT_URL_{suffix}" for suffix in re.findall(r'"\w+": "([A-Z]+)"', source))
    names.add("DJANGO_SETTINGS_MODULE")
    return names


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def app_services() -> dict[str, dict]:
    return {name: service for name, service in compose()["services"].items() if service.get("build")}


def test_every_variable_the_app_services_set_is_read_by_the_settings():
    known = variables_read_by_settings() | AWS_SDK_VARIABLES | METRICS_LIBRARY_VARIABLES
    for name, service in app_services().items():
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"


def test_app_services_are_web_worker_and_beat_with_the_project_entry_points():
    services = app_services()
    assert set(services) == {"web", "worker", "webhook-worker", "beat"}
    web = services["web"]["command"]
    assert "orchestrator.wsgi:application" in web
    assert "bootstrap_aws" in web
    assert "migrate" in web
    for name in ("worker", "webhook-worker", "beat"):
        assert services[name]["command"][:3] == ["celery", "-A", "orchestrator"]
        assert services[name]["command"][3] == name.removeprefix("webhook-")


def test_services_point_at_the_compose_backends():
    environment = app_services()["web"]["environment"]
    assert environment["DJANGO_SETTINGS_MODULE"] == "orchestrator.settings.production"
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert "@postgres:" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"].startswith("redis://redis:")
    assert environment["AWS_ENDPOINT_URL"] == "http://moto:5000"
    assert compose()["services"]["moto"]["environment"]["MOTO_EVENTS_INVOKE_HTTP"] == "true"


def test_worker_consumes_every_queue_tasks_are_routed_to():
    from orchestrator.celery import app

    app.loader.import_default_modules()
    routed = {task.queue for task in app.tasks.values() if getattr(task, "queue", None)}
    # Queues chosen at enqueue time (apply_async(queue=...)) come from settings.
    routed |= {settings.WEBHOOK_QUEUE, settings.LOCAL_BUILD_QUEUE}
    queues: set[str] = set()
    for name in ("worker", "webhook-worker"):
        command = app_services()[name]["command"]
        queues |= set(command[command.index("-Q") + 1].split(","))
    assert routed <= queues, f"tasks routed to queues the worker does not consume: {routed - queues}"
    assert settings.CELERY_TASK_DEFAULT_QUEUE in queues


def test_event_handlers_never_wait_behind_deliveries_or_local_builds():
    # given the worker processes the Procfile and docker-compose.yml run
    from orchestrator.celery import app

    app.loader.import_default_modules()
    process_events, deliver_many = app.tasks["events.process_events"], app.tasks["webhooks.deliver_many"]
    run_local_build = app.tasks["tenants.run_local_build"]
    for programs in (procfile_programs(), {name: service["command"] for name, service in app_services().items()}):
        event_worker, network_worker = programs["worker"], programs["webhook-worker"]

        # then events are handled by the prefork worker, which consumes nothing that waits on the network or
        # on a build's command: deliveries and LOCAL builds run on the thread-pool worker
        assert (process_events.queue or settings.CELERY_TASK_DEFAULT_QUEUE) in option(event_worker, "-Q").split(",")
        waiting_queues = {deliver_many.queue, run_local_build.queue, settings.LOCAL_BUILD_QUEUE}
        assert waiting_queues <= set(option(network_worker, "-Q").split(","))
        assert not waiting_queues & set(option(event_worker, "-Q").split(","))
        assert option(network_worker, "-P") == "threads"


def procfile_programs() -> dict[str, list[str]]:
    """Each Procfile process's program, after the devstack step that precedes it (``... && exec program``)."""
    processes = parse_procfile((ROOT / "Procfile").read_text()).processes
    return {name: shlex.split(command.rpartition("&& exec ")[2]) for name, command in processes.items()}


def option(command: list[str], name: str, default: str = "") -> str:
    return command[command.index(name) + 1] if name in command else default


def test_the_app_services_are_the_procfile_processes_with_the_same_programs_and_queues():
    # given the Procfile (the local stack) and docker-compose.yml
    programs = procfile_programs()
    services = app_services()

    # then each app service of the compose file is a process of the Procfile, running the same program
    assert set(services) <= set(programs), sorted(set(services) - set(programs))
    assert "orchestrator.wsgi:application" in programs["web"]
    for name in ("worker", "webhook-worker", "beat"):
        compose_command = services[name]["command"]
        assert programs[name][:4] == compose_command[:4], name
        # with the same queues and pool (concurrency is the machine's business)
        assert option(programs[name], "-Q") == option(compose_command, "-Q"), name
        assert option(programs[name], "-P", "prefork") == option(compose_command, "-P", "prefork"), name


def test_every_app_container_keeps_its_metrics_in_its_own_folder_and_workers_serve_them_on_a_port():
    services = app_services()
    for name, service in services.items():
        folder = service["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert folder in service["tmpfs"], f"{name}: the metrics folder must be emptied at every start"
    for name in ("worker", "webhook-worker"):
        assert services[name]["environment"]["METRICS_PORT"] == "9100"
        assert services[name]["environment"]["REDIS_URL"] == services["web"]["environment"]["REDIS_URL"]
    assert "METRICS_PORT" not in services["web"]["environment"]  # web serves GET /metrics on its own port
