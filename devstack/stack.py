"""A live stack for benchmarks and fault drills: real processes on 127.0.0.1, always cleaned up.

``LiveStack`` starts, as subprocesses in their own process groups:

- the web server: gunicorn (``gunicorn.conf.py``: gevent workers, or ``gthread`` workers x ``threads``;
  both documented in the result of ``start_web``), with production-like settings
  (``orchestrator.settings.production``, a generated ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG=false``) or the
  test settings;
- Celery workers on given queues (prefork by default), which can be killed with SIGKILL (the whole
  process group, like a machine losing power, or only the pool children) and started again;
- Celery beat (one or several: they share the schedule and its lock in Redis);
- an embedded ``redis-server`` that can be stopped and started again on the same port;
- ``moto_server`` as the AWS endpoint.

Helpers beside it: ``PrivatePostgres`` (a throw-away PostgreSQL cluster in a temporary directory, on a
free port, that can be stopped and started; used so a drill never stops the machine's shared server),
``TcpProxy`` (a loopback TCP proxy that can be cut, or made to hold answers, to simulate a dependency
going away mid-request) and ``RssSampler`` (peak resident memory of process trees).

Every class is a context manager; ``close()`` is idempotent and also runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.processes import free_port, redis_server_argv, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent

DEFAULT_WEB_WORKERS = 2
DEFAULT_WEB_WORKER_CLASS = "gevent"
DEFAULT_WEB_THREADS = 4
BENCH_API_KEY_DEFAULT = "bench-intake-key"


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.1, message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; raise ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not reached within {timeout}s")
        time.sleep(interval)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` (call from the main thread of a script) so ``with LiveStack()``
    blocks clean up their processes when the script is terminated."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# --- Processes ------------------------------------------------------------------------------------


@dataclass
class ManagedProcess:
    """One subprocess in its own process group, output to a log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path = ROOT
    popen: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> ManagedProcess:
        if self.running:
            return self
        log = self.log_path.open("ab")
        log.write(f"\n--- start #{self.starts + 1}: {' '.join(self.command)}\n".encode())
        log.flush()
        try:
            self.popen = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals reach its children too
            )
        finally:
            log.close()
        self.starts += 1
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def current_run_log(self) -> str:
        """The log written since the latest start."""
        text = self.log_text()
        marker = f"--- start #{self.starts}:"
        index = text.rfind(marker)
        return text[index:] if index >= 0 else text

    def signal_group(self, signum: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole process group (no shutdown handlers run) and reap it."""
        if self.popen is None:
            return
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL what is left after ``timeout``."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # Children may outlive a parent that exited: make sure the group is gone.
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def children(self) -> list[int]:
        import psutil

        if not self.running:
            return []
        try:
            return [child.pid for child in psutil.Process(self.popen.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


# --- Memory ---------------------------------------------------------------------------------------


@dataclass
class RssPeak:
    total_mb: float = 0.0  # the largest sum over the process tree seen at one sample
    largest_process_mb: float = 0.0  # the largest single process seen
    processes: int = 0  # processes in the tree at the sample with the largest total


class RssSampler:
    """Samples the resident set size of process trees (root pid + descendants) in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.roots: dict[str, ManagedProcess] = {}
        self.peaks: dict[str, RssPeak] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def watch(self, name: str, process: ManagedProcess) -> None:
        with self._lock:
            self.roots[name] = process
            self.peaks.setdefault(name, RssPeak())

    def reset(self) -> None:
        with self._lock:
            self.peaks = {name: RssPeak() for name in self.roots}

    def sample(self) -> None:
        import psutil

        with self._lock:
            roots = dict(self.roots)
        for name, process in roots.items():
            if not process.running:
                continue
            try:
                root = psutil.Process(process.pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            sizes = []
            for member in tree:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    sizes.append(member.memory_info().rss / (1024 * 1024))
            if not sizes:
                continue
            with self._lock:
                peak = self.peaks.setdefault(name, RssPeak())
                total = sum(sizes)
                if total > peak.total_mb:
                    peak.total_mb = round(total, 1)
                    peak.processes = len(sizes)
                peak.largest_process_mb = round(max(peak.largest_process_mb, max(sizes)), 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):
                self.sample()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def report(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                name: {
                    "peak_total_rss_mb": peak.total_mb,
                    "peak_process_rss_mb": peak.largest_process_mb,
                    "processes": peak.processes,
                }
                for name, peak in self.peaks.items()
            }


# --- The stack ------------------------------------------------------------------------------------


@dataclass
class WebServer:
    process: ManagedProcess
    port: int
    workers: int
    worker_class: str
    threads: int  # gthread only

    def describe(self) -> str:
        if self.worker_class == "gthread":
            return f"{self.workers} gthread workers x {self.threads} threads"
        return f"{self.workers} {self.worker_class} workers"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class LiveStack:
    """Real processes for one benchmark or drill; use as a context manager.

    ``database_url`` is required for processes that share data (PostgreSQL; SQLite works for a single
    web process only). ``redis_url=None`` starts an embedded Redis that ``stop_redis``/``start_redis``
    control. ``aws_endpoint_url=None`` starts ``moto_server``.
    """

    database_url: str
    redis_url: str | None = None
    aws_endpoint_url: str | None = None
    settings_module: str = "orchestrator.settings.production"
    extra_env: dict[str, str] = field(default_factory=dict)
    api_key: str = BENCH_API_KEY_DEFAULT
    secret_key: str | None = None  # default: a fresh random DJANGO_SECRET_KEY
    log_dir: Path | None = None

    def __post_init__(self) -> None:
        self._tmp = tempfile.mkdtemp(prefix="orchestrator-stack-")
        self.log_dir = Path(self.log_dir or self._tmp)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, ManagedProcess] = {}
        self.web: WebServer | None = None
        self.redis_port: int | None = None
        self.moto_port: int | None = None
        self.sampler = RssSampler()
        self._closed = False
        self._secret = self.secret_key or secrets.token_urlsafe(50)
        atexit.register(self.close)
        if self.redis_url is None:
            self.redis_port = free_port()
            self.start_redis()
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        if self.aws_endpoint_url is None:
            self.moto_port = free_port()
            self._add(
                "moto",
                [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)],
                env={**os.environ, "MOTO_EVENTS_INVOKE_HTTP": "true"},
            ).start()
            wait_for_port(self.moto_port, timeout=60, process=self.processes["moto"].popen)
            self.aws_endpoint_url = f"http://127.0.0.1:{self.moto_port}"

    # -- environment ------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The environment every orchestrator process of this stack gets."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "CELERY_", "PYTEST_", "AWS_ENDPOINT_URL"))
            and key not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": self.settings_module,
                "DJANGO_SECRET_KEY": self._secret,
                "DJANGO_DEBUG": "false",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DJANGO_SECURE_COOKIES": "false",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url or "",
                "CELERY_BROKER_URL": self.redis_url or "",
                "CELERY_TASK_ALWAYS_EAGER": "false",
                "AWS_ENDPOINT_URL": self.aws_endpoint_url or "",
                "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
                "INTAKE_API_KEYS": self.api_key,
                "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "LOG_FORMAT": "console",
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(ROOT),
            }
        )
        env.update(self.extra_env)
        return env

    def _add(self, name: str, command: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        if name in self.processes and self.processes[name].running:
            raise RuntimeError(f"{name} is already running")
        process = ManagedProcess(name=name, command=command, env=env or self.env, log_path=self.log_dir / f"{name}.log")
        self.processes[name] = process
        return process

    def start_process(
        self, name: str, command: list[str], *, env: dict[str, str] | None = None, port: int | None = None
    ) -> ManagedProcess:
        """Any other process of the scenario (e.g. the demo receiver), cleaned up with the stack; with
        ``port``, waits until it listens there. Its RSS is sampled under ``name``."""
        process = self._add(name, command, env={**self.env, **(env or {})}).start()
        self.sampler.watch(name, process)
        if port is not None:
            wait_for_port(port, timeout=30, process=process.popen)
        return process

    def manage(
        self, *args: str, timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``manage.py`` with the stack's environment (e.g. ``migrate``, ``bootstrap_aws``); with
        ``check`` a non-zero exit raises ``RuntimeError`` with the output."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    # -- web --------------------------------------------------------------------------------------

    def start_web(
        self,
        *,
        workers: int = DEFAULT_WEB_WORKERS,
        worker_class: str = DEFAULT_WEB_WORKER_CLASS,
        threads: int = DEFAULT_WEB_THREADS,
        port: int | None = None,
        extra_args: Iterable[str] = (),
        ready_path: str = "/__stack_ready__",
        timeout: float = 60.0,
    ) -> WebServer:
        """gunicorn with ``gunicorn.conf.py`` (``workers`` processes of ``worker_class``; gthread: x ``threads``);
        waits until every worker answers."""
        port = port or free_port()
        process = self._add(
            "web",
            [
                str(BIN / "gunicorn"),
                "orchestrator.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                worker_class,
                "--threads",
                str(threads),
                "--graceful-timeout",
                "5",
                *extra_args,
            ],
        ).start()
        self.sampler.watch("web", process)
        wait_for_port(port, timeout=timeout, process=process.popen)
        self.web = WebServer(process=process, port=port, workers=workers, worker_class=worker_class, threads=threads)
        # Workers import the application lazily: a 404 from Django (any answer below 500) means it is loaded.
        # Ask a few times per worker so each one has imported it before anything is measured.
        wait_until(
            lambda: http_get(self.web.url + ready_path, timeout=timeout)[0] < 500,
            timeout=timeout,
            interval=0.2,
            message="web server ready",
        )
        for _ in range(workers * 4):
            http_get(self.web.url + ready_path, timeout=timeout)
        return self.web

    def stop_web(self) -> None:
        if "web" in self.processes:
            self.processes["web"].stop()

    # -- celery -----------------------------------------------------------------------------------

    def start_worker(
        self,
        name: str = "worker",
        *,
        queues: Iterable[str] = ("default",),
        concurrency: int = 2,
        pool: str = "prefork",
        extra_args: Iterable[str] = (),
        extra_env: dict[str, str] | None = None,
        wait: bool = True,
        timeout: float = 60.0,
    ) -> ManagedProcess:
        """A Celery worker (``name@stack``) consuming ``queues``; waits for its "ready" line."""
        existing = self.processes.get(name)
        if existing is not None and not existing.running and existing.command:
            process = existing
        else:
            process = self._add(
                name,
                [
                    str(BIN / "celery"),
                    "-A",
                    "orchestrator",
                    "worker",
                    "--hostname",
                    f"{name}@stack",
                    "-Q",
                    ",".join(queues),
                    "-c",
                    str(concurrency),
                    "-P",
                    pool,
                    "-l",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    *extra_args,
                ],
                env={**self.env, **(extra_env or {})},
            )
        process.start()
        self.sampler.watch(name, process)
        if wait:
            self.wait_worker_ready(name, timeout=timeout)
        return process

    def wait_worker_ready(self, name: str = "worker", *, timeout: float = 60.0) -> None:
        process = self.processes[name]

        def ready() -> bool:
            if not process.running:
                raise RuntimeError(f"worker {name} exited:\n{process.log_tail()}")
            return " ready." in process.current_run_log()

        wait_until(ready, timeout=timeout, interval=0.1, message=f"worker {name} ready")

    def kill_worker(self, name: str = "worker", *, children_only: bool = False) -> list[int]:
        """SIGKILL the worker: its whole process group (a lost machine), or only its pool children.

        Returns the pids killed.
        """
        process = self.processes[name]
        if children_only:
            pids = process.children()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return pids
        pids = [process.pid, *process.children()] if process.pid else []
        process.kill()
        return [pid for pid in pids if pid]

    def restart_worker(self, name: str = "worker", *, wait: bool = True) -> ManagedProcess:
        process = self.processes[name]
        if process.running:
            process.stop()
        process.start()
        if wait:
            self.wait_worker_ready(name)
        return process

    def start_beat(self, name: str = "beat", *, extra_env: dict[str, str] | None = None) -> ManagedProcess:
        """Celery beat (the schedule and its lock live in Redis: several beats may run, one schedules)."""
        process = self._add(
            name,
            [str(BIN / "celery"), "-A", "orchestrator", "beat", "-l", "INFO"],
            env={**self.env, **(extra_env or {})},
        ).start()
        return process

    # -- redis ------------------------------------------------------------------------------------

    def start_redis(self) -> None:
        """Start the embedded Redis (again) on its port; no persistence, so a restart is empty."""
        if self.redis_port is None:
            raise RuntimeError("this stack uses an external Redis; it cannot start or stop it")
        process = self.processes.get("redis")
        if process is None:
            process = self._add(
                "redis",
                redis_server_argv(self.redis_port, self._tmp),
                env=dict(os.environ),
            )
        process.start()
        wait_for_port(self.redis_port, timeout=20, process=process.popen)

    def stop_redis(self) -> None:
        if "redis" not in self.processes:
            raise RuntimeError("this stack uses an external Redis; it cannot start or stop it")
        self.processes["redis"].kill()

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.sampler.stop()
        # Web and workers first (they hold connections), then the services they use; each group is told
        # to stop at once and given a few seconds in total, then killed.
        for group in (
            [p for p in self.processes.values() if p.name not in ("redis", "moto")],
            [p for p in self.processes.values() if p.name in ("redis", "moto")],
        ):
            for process in group:
                if process.running:
                    process.signal_group(signal.SIGTERM)
            deadline = time.monotonic() + 5
            for process in group:
                if process.popen is None:
                    continue
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                process.signal_group(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=5)
        shutil.rmtree(self._tmp, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> LiveStack:
        self.sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- A private PostgreSQL -------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``initdb`` and ``pg_ctl``, if any."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (``initdb`` in a temp dir, trust auth, fsync off) on a free port.

    PostgreSQL refuses to run as root: when we are root, the cluster runs as the ``postgres`` user.
    """

    def __init__(self, *, database: str = "orchestrator", options: dict[str, str] | None = None) -> None:
        bindir = postgres_bin_dir()
        self.options = dict(options or {})
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bindir = bindir
        self.database = database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._closed = False
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        atexit.register(self.close)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
        self.start()
        self._run(
            [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database],
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def execute(self, *statements: str, database: str | None = None) -> list[tuple]:
        """Run SQL as the superuser (autocommit); the rows of the last statement."""
        import psycopg

        url = f"postgresql://postgres@127.0.0.1:{self.port}/{database or self.database}"
        rows: list[tuple] = []
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
            for statement in statements:
                cursor = connection.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
        return rows

    def _run(self, command: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        if self._user:
            command = ["runuser", "-u", self._user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        options += "".join(f" -c {name}={value}" for name, value in self.options.items())
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"]
        )
        wait_for_port(self.port, timeout=30)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: like a crash; clients see their connections drop)."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    @property
    def running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.running:
            with contextlib.suppress(Exception):
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> PrivatePostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- A TCP proxy that can be cut ------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``cut()`` closes every connection and refuses new ones,
    ``hold_responses()`` forwards requests but keeps the answers back until ``release()``."""

    def __init__(self, target_host: str, target_port: int, *, record: bool = False) -> None:
        self.target = (target_host, target_port)
        self.record = record
        self.recorded: dict[int, bytearray] = {}  # with record=True: bytes sent by each connection, live
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(256)
        self.port = self._server.getsockname()[1]
        self._cut = threading.Event()
        self._hold = threading.Event()
        self._released = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.requests_seen = 0  # connections whose first bytes reached the target
        self.held_connections = 0  # connections with an answer currently held back
        threading.Thread(target=self._accept, daemon=True, name=f"proxy-{self.port}").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        if self.record:
            with self._lock:
                sent = self.recorded.setdefault(len(self.recorded), bytearray())
        counted = False
        holding = False
        try:
            while not self._closed.is_set() and not self._cut.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        upstream.sendall(data)
                        if self.record:
                            with self._lock:
                                sent.extend(data)
                        if not counted:
                            counted = True
                            with self._lock:
                                self.requests_seen += 1
                    else:
                        if self._hold.is_set():
                            with self._lock:
                                self.held_connections += 1
                            holding = True
                            with self._released:
                                while self._hold.is_set() and not self._cut.is_set() and not self._closed.is_set():
                                    self._released.wait(0.2)
                            with self._lock:
                                self.held_connections -= 1
                            holding = False
                            if self._cut.is_set() or self._closed.is_set():
                                return
                        client.sendall(data)
        except OSError:
            return
        finally:
            if holding:
                with self._lock:
                    self.held_connections -= 1
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._connections.difference_update(sockets)

    def sent_text(self) -> str:
        """Everything clients sent through the proxy so far (with ``record=True``), as text."""
        with self._lock:
            return "\n".join(bytes(chunk).decode(errors="replace") for chunk in self.recorded.values())

    def cut(self) -> None:
        """Drop every open connection and refuse new ones (the dependency is gone)."""
        self._cut.set()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def restore(self) -> None:
        self._cut.clear()

    def hold_responses(self) -> None:
        self._hold.set()

    def release(self) -> None:
        self._hold.clear()
        with self._released:
            self._released.notify_all()

    def close(self) -> None:
        self._closed.set()
        self.release()
        with contextlib.suppress(OSError):
            self._server.close()
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def live_stack(**kwargs: Any) -> Iterator[LiveStack]:
    """``with live_stack(database_url=...) as stack:`` - the same as ``with LiveStack(...)``."""
    stack = LiveStack(**kwargs)
    try:
        with stack:
            yield stack
    finally:
        stack.close()
