"""gunicorn.conf.py: what gunicorn reads from it, and the database pool it turns on for gevent workers."""

import os
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

CONF = Path(settings.BASE_DIR) / "gunicorn.conf.py"


def printed_config(**environment: str) -> dict[str, str]:
    """The settings gunicorn itself loads from the file (``--print-config``), as name -> value text."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gunicorn"), "--print-config", "orchestrator.wsgi:application"],
        cwd=settings.BASE_DIR,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)


def test_gunicorn_reads_gevent_workers_one_per_core_by_default():
    config = {name.strip(): value.strip() for name, value in printed_config().items()}
    assert config["worker_class"] == "gevent"
    assert config["workers"] == str(os.cpu_count())
    assert config["worker_connections"] == "1000"
    assert config["on_starting"] == "<on_starting()>"


def test_the_environment_chooses_the_thread_pool_instead():
    config = {
        name.strip(): value.strip()
        for name, value in printed_config(WEB_WORKER_CLASS="gthread", WEB_WORKERS="3", WEB_THREADS="8").items()
    }
    assert (config["worker_class"], config["workers"], config["threads"]) == ("gthread", "3", "8")


@pytest.mark.parametrize(("worker_class", "pooled"), [("gevent", "true"), ("gthread", None)])
def test_gevent_workers_turn_the_database_pool_on(monkeypatch, tmp_path, worker_class, pooled):
    monkeypatch.setenv("DATABASE_POOL", "")  # remembered, so the hook's change is undone after the test
    monkeypatch.delenv("DATABASE_POOL")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    hooks = runpy.run_path(str(CONF))
    hooks["on_starting"](SimpleNamespace(cfg=SimpleNamespace(worker_class_str=worker_class)))
    assert os.environ.get("DATABASE_POOL") == pooled


def starting(monkeypatch):
    """Run on_starting as the master would, the environment restored after the test; the hooks."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # remembered, so the hook's change is undone
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    hooks = runpy.run_path(str(CONF))
    hooks["on_starting"](SimpleNamespace(cfg=SimpleNamespace(worker_class_str="gthread")))
    return hooks


def test_without_a_metrics_folder_the_master_makes_one_for_its_workers_and_removes_it_on_exit(monkeypatch):
    hooks = starting(monkeypatch)

    made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.is_dir()
    assert list(made.iterdir()) == []
    hooks["on_exit"](SimpleNamespace())
    assert not made.exists()


def test_a_metrics_folder_given_by_the_launcher_is_used_and_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    hooks = runpy.run_path(str(CONF))

    hooks["on_starting"](SimpleNamespace(cfg=SimpleNamespace(worker_class_str="gthread")))
    hooks["on_exit"](SimpleNamespace())

    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    assert tmp_path.is_dir()


def test_an_exited_worker_keeps_its_totals_and_loses_its_live_gauges(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("counter_4242.db", "histogram_4242.db", "gauge_liveall_4242.db", "gauge_liveall_4343.db"):
        (tmp_path / name).write_bytes(b"")

    runpy.run_path(str(CONF))["child_exit"](SimpleNamespace(), SimpleNamespace(pid=4242))

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "counter_4242.db",
        "gauge_liveall_4343.db",
        "histogram_4242.db",
    ]


def test_gunicorn_reads_the_metrics_hooks():
    config = {name.strip(): value.strip() for name, value in printed_config().items()}
    assert (config["child_exit"], config["on_exit"]) == ("<child_exit()>", "<on_exit()>")


def test_a_pooled_configuration_lends_connections_instead_of_keeping_them():
    code = (
        "import django; django.setup(); from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], sorted(d['OPTIONS']['pool']))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "orchestrator.settings.production",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
        "DATABASE_POOL": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "True", "['max_size',", "'min_size',", "'timeout']"]
