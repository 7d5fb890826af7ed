"""What every benchmark shares: the machine description, dedicated PostgreSQL/Redis, results, tables."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SAMPLES_DIR = ROOT / "events" / "tests" / "samples"

# Dedicated resources: a database the bench creates and drops, and a Redis database number it flushes.
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orchestrator_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], fraction: float) -> float | None:
    from bench.loadgen import percentile as _percentile

    value = _percentile(values, fraction)
    return None if value is None else round(value, 2)


def machine_info() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    commit = ""
    with contextlib.suppress(Exception):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "memory": memory,
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit,
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"benchmark": name, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), **data}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def print_table(title: str, rows: list[tuple[str, Any]]) -> None:
    width = max((len(label) for label, _ in rows), default=10)
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    sys.stdout.flush()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes (all their threads) have used so far, from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (the bench's database runs there)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


class CpuMeter:
    """The CPU time some processes (all their threads) and PostgreSQL use from now on, per item of work:
    less sensitive than throughput to the VM's varying speed when comparing changes."""

    def __init__(self, processes: list[Any]) -> None:
        self.pids = [pid for process in processes for pid in (process.pid, *process.children())]
        self.database_pids = postgres_pids()
        self.start = (cpu_seconds(self.pids), cpu_seconds(self.database_pids))

    def ms_per(self, count: int) -> tuple[float | None, float | None]:
        """(processes, PostgreSQL) CPU milliseconds per item since the start; None without items."""
        if not count:
            return None, None
        used = (cpu_seconds(self.pids) - self.start[0], cpu_seconds(self.database_pids) - self.start[1])
        return round(used[0] * 1000 / count, 3), round(used[1] * 1000 / count, 3)


def tree_cpu_seconds(root: int) -> float:
    """CPU time a process tree has used so far: the root and every live descendant, with what their
    exited (reaped) children used (a prefork pool replacing a child, PostgreSQL backends that closed)."""
    import psutil

    try:
        members = [psutil.Process(root)]
        members += members[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = member.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


class CpuByKind:
    """CPU seconds per kind of process (each a list of process-tree roots), read at marks: what each kind
    used between two marks, per item of work."""

    def __init__(self, roots: dict[str, list[int]]) -> None:
        self.roots = roots
        self.marks: dict[str, dict[str, float]] = {}

    def mark(self, name: str) -> None:
        self.marks[name] = {kind: sum(tree_cpu_seconds(pid) for pid in pids) for kind, pids in self.roots.items()}

    def ms_per(self, start: str, end: str, count: int) -> dict[str, float | None]:
        """Milliseconds of CPU per item of each kind between the marks ``start`` and ``end``."""
        return {
            kind: round((self.marks[end][kind] - self.marks[start][kind]) * 1000 / count, 2) if count else None
            for kind in self.roots
        }


def add_web_arguments(parser: Any) -> None:
    """The web server's options, as ``gunicorn.conf.py`` deploys it by default."""
    parser.add_argument(
        "--worker-class", default=os.environ.get("BENCH_WEB_WORKER_CLASS", "gevent"), help="gevent or gthread"
    )
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WEB_WORKERS", 2)))
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("BENCH_WEB_THREADS", 4)), help="threads per gthread worker"
    )


def start_web(stack: Any, args: Any, **options: Any) -> Any:
    """Start the stack's gunicorn as the options say; the web server and its description for the results."""
    web = stack.start_web(workers=args.workers, worker_class=args.worker_class, threads=args.threads, **options)
    return web, {"gunicorn": web.describe(), "gunicorn_workers": web.workers, "worker_class": web.worker_class}


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value}{unit}"


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# --- PostgreSQL -----------------------------------------------------------------------------------


def _admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _connect(url: str):
    import psycopg

    return psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True, connect_timeout=5)


def recreate_database(url: str) -> None:
    name = _database_name(url)
    if not name.replace("_", "").isalnum():
        raise ValueError(f"refusing an unusual database name: {name!r}")
    with _connect(_admin_url(url)) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    name = _database_name(url)
    with contextlib.suppress(Exception), _connect(_admin_url(url)) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with _connect(url) as connection:
        return connection.execute(sql, params).fetchall()


def scalar(url: str, sql: str, params: tuple = ()) -> Any:
    rows = query(url, sql, params)
    return rows[0][0] if rows else None


@dataclass
class Resources:
    database_url: str
    redis_url: str | None  # None: the stack starts an embedded Redis
    private_postgres: Any = None
    notes: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"database": _redact_url(self.database_url), "redis": self.redis_url or "embedded"}
        with contextlib.suppress(Exception):
            info["postgres_version"] = scalar(self.database_url, "SHOW server_version")
        if self.private_postgres is not None:
            info["database"] += " (private cluster started by the bench)"
        return info


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        netloc = f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@contextlib.contextmanager
def bench_resources(
    *, database_url: str | None, redis_url: str | None, keep_database: bool = False
) -> Iterator[Resources]:
    """A fresh dedicated database and a flushed dedicated Redis db; dropped/flushed again afterwards.

    Without a reachable PostgreSQL at the configured address a private cluster is started (``initdb``);
    without a reachable Redis an embedded one is started by the stack.
    """
    database_url = database_url or os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = redis_url or os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    private = None
    notes: list[str] = []
    db_parts = urlsplit(database_url)
    if not port_open(db_parts.hostname or "127.0.0.1", db_parts.port or 5432):
        from devstack.stack import PrivatePostgres

        log(f"no PostgreSQL at {db_parts.hostname}:{db_parts.port or 5432}; starting a private cluster")
        private = PrivatePostgres(database="orchestrator_bench")
        database_url = private.url
        notes.append("private PostgreSQL cluster (fsync off)")
    else:
        recreate_database(database_url)
    redis_parts = urlsplit(redis_url)
    redis_client = None
    if port_open(redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379):
        import redis

        redis_client = redis.Redis.from_url(redis_url)
        redis_client.flushdb()
    else:
        log("no Redis at the configured address; the stack starts an embedded one")
        redis_url = None
    try:
        yield Resources(database_url=database_url, redis_url=redis_url, private_postgres=private, notes=tuple(notes))
    finally:
        if redis_client is not None:
            with contextlib.suppress(Exception):
                redis_client.flushdb()
        if private is not None:
            private.close()
        elif not keep_database:
            drop_database(database_url)


@contextlib.contextmanager
def migrated_stack(
    args: Any, results: dict[str, Any], *, extra_env: dict[str, str], **stack_options: Any
) -> Iterator[Any]:
    """A LiveStack on a fresh dedicated database (migrated) and Redis, with no AWS behind it; the resources'
    description goes into ``results``; ``stack_options`` are further LiveStack fields (``api_key``)."""
    from devstack.stack import LiveStack

    with bench_resources(database_url=args.database_url, redis_url=args.redis_url) as resources:
        results["resources"] = resources.describe()
        with LiveStack(
            database_url=resources.database_url,
            redis_url=resources.redis_url,
            aws_endpoint_url="http://127.0.0.1:9",  # nothing listens there
            extra_env=extra_env,
            **stack_options,
        ) as stack:
            log("migrating the bench database")
            stack.manage("migrate", "--no-input", "-v", "0")
            yield stack


def ensure_wrk() -> str | None:
    """Path of ``wrk``; installs Debian's package when missing and we are root. None if unavailable."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing; installing Debian's package")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "install", "-y", "-qq", "wrk"], ["apt-get", "update", "-qq"]):
            subprocess.run(command, env=env, capture_output=True, timeout=300)
            if command[1] == "update":
                subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, timeout=300)
            if shutil.which("wrk"):
                break
    return shutil.which("wrk")


def sample_envelope(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES_DIR / f"{name}.json").read_text())
