"""gunicorn's settings for the web server. gunicorn reads ``./gunicorn.conf.py`` on every start (run it from
the repository root, as every launcher here does); command-line flags override what is set here.

Default: gevent workers, one process per core. The intake answers 202 only once its event is committed,
and a web process commits the events it accepts at the same moment together (``events.intake.group_commit``).
With greenlets, a request waiting for its commit costs no OS thread hand-off and no contention for the
interpreter lock, and a process holds as many waiting requests as arrive, so commits group many events:
on 2 cores the intake accepted about 1.5x the events/s of 3 gthread workers x 4 threads (bench/README.md).
``WEB_WORKER_CLASS=gthread`` (with ``WEB_THREADS``) is the thread-pool alternative.

Metrics: the workers keep their counters in ``PROMETHEUS_MULTIPROC_DIR`` and the one answering ``/metrics``
adds them up (``orchestrator/metrics.py``). Without the variable the master makes a fresh folder for this run
(and removes it on exit); a folder given by the environment is the launcher's to empty before a start.
"""

import multiprocessing
import os
import shutil
import tempfile

worker_class = os.environ.get("WEB_WORKER_CLASS", "gevent")
workers = int(os.environ.get("WEB_WORKERS", multiprocessing.cpu_count()))
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS", 1000))  # gevent: clients per process
threads = int(os.environ.get("WEB_THREADS", 4))  # gthread: request threads per process
backlog = int(os.environ.get("WEB_BACKLOG", 2048))
timeout = int(os.environ.get("WEB_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", 10))
keepalive = int(os.environ.get("WEB_KEEPALIVE", 75))  # longer than load balancers' idle timeouts (60 s)
_made_metrics_dirs: list[str] = []  # the metrics folder on_starting made, if it made one


def on_starting(server: object) -> None:
    """In the master, before any worker starts (and after command-line flags are applied)."""
    if server.cfg.worker_class_str == "gevent":  # type: ignore[attr-defined]
        # A request runs in a greenlet that ends with its client connection, and Django keeps one database
        # connection per greenlet: without a pool, every such connection would be opened for a few requests
        # and dropped. The pool (Django's, psycopg_pool) lends each request a connection and takes it back.
        os.environ.setdefault("DATABASE_POOL", "true")
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _made_metrics_dirs.append(tempfile.mkdtemp(prefix="orchestrator-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_metrics_dirs[-1]


def child_exit(server: object, worker: object) -> None:
    """In the master, after a worker exited: its live gauges no longer count (its counters stay: totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    """In the master, on shutdown: remove the metrics folder it made."""
    for path in _made_metrics_dirs:
        shutil.rmtree(path, ignore_errors=True)
