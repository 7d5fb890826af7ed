"""HTTP load generators for the benchmarks (run in their own process: ``python -m bench.loadgen ...``).

- ``open``: open-loop pacing. Request *i* is due at ``t0 + i / rate`` whether or not earlier answers
  came back (like EventBridge's API destination sending at its rate limit); latency is measured from the
  due time, so a server that falls behind shows it (no coordinated omission). Keep-alive connections
  are reused; a new one is opened only when every open one is busy.
- ``closed``: N connections each send their next request as soon as the previous answer arrived
  (maximum throughput). Used when ``wrk`` is not available.

Bodies come from a template with ``__ID__`` (and optionally ``__TENANT__``) placeholders replaced by a
unique value per request. Output: one JSON object on stdout.

Pure ``asyncio`` streams and a minimal HTTP/1.1 client: no third-party dependency, nothing else to pin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class Target:
    host: str
    port: int
    path: str
    headers: list[tuple[str, str]]
    template: bytes
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def request(self, index: int) -> bytes:
        unique = f"{self.run_id}-{index:08d}".encode()
        body = self.template.replace(b"__ID__", unique).replace(b"__TENANT__", b"tenant-" + unique)
        head = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class StaleConnection(ConnectionError):
    """A kept-alive connection the server had already closed: the request was not received, so it is sent
    again on a new connection (what HTTP clients do), not counted as an error."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.open = True
        self.answered = 0

    @classmethod
    async def connect(cls, target: Target) -> Connection:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        return cls(reader, writer)

    async def send(self, payload: bytes) -> int:
        """Send one request; return the status code after reading the whole answer."""
        try:
            self.writer.write(payload)
            await self.writer.drain()
            status_line = await self.reader.readline()
        except (ConnectionResetError, BrokenPipeError):
            status_line = b""
        if not status_line:
            if self.answered:
                raise StaleConnection("idle connection closed by the server")
            raise ConnectionError("connection closed by the server")
        self.answered += 1
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        close = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        self.open = False
        self.writer.close()


@dataclass
class Results:
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0
    connections_opened: int = 0
    resent: int = 0  # requests sent again after a stale kept-alive connection (see StaleConnection)

    def summary(self, *, mode: str, **extra: object) -> dict[str, object]:
        elapsed = max(self.finished - self.started, 1e-9)
        accepted = self.statuses.get(202, 0)
        lat = self.latencies_ms
        return {
            "mode": mode,
            **extra,
            "requests": sum(self.statuses.values()) + sum(self.errors.values()),
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "resent_after_stale_connection": self.resent,
            "elapsed_s": round(elapsed, 3),
            "accepted": accepted,
            "accepted_per_s": round(accepted / elapsed, 1),
            "responses_per_s": round(sum(self.statuses.values()) / elapsed, 1),
            "latency_ms": {
                "p50": _round(percentile(lat, 0.50)),
                "p95": _round(percentile(lat, 0.95)),
                "p99": _round(percentile(lat, 0.99)),
                "max": _round(max(lat) if lat else None),
                "mean": _round(sum(lat) / len(lat) if lat else None),
            },
            "connections_opened": self.connections_opened,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def run_open_loop(target: Target, *, rate: float, duration: float, max_connections: int = 512) -> Results:
    results = Results()
    idle: list[Connection] = []
    busy = 0
    freed = asyncio.Condition()
    total = int(rate * duration)
    tasks: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()

    async def acquire(*, fresh: bool = False) -> Connection:
        nonlocal busy
        async with freed:
            while True:
                while idle and not fresh:
                    connection = idle.pop()
                    if connection.open:
                        busy += 1
                        return connection
                if busy + len(idle) < max_connections:
                    busy += 1
                    break
                await freed.wait()
        try:
            connection = await Connection.connect(target)
        except BaseException:
            async with freed:
                busy -= 1
                freed.notify()
            raise
        results.connections_opened += 1
        return connection

    async def release(connection: Connection) -> None:
        nonlocal busy
        async with freed:
            busy -= 1
            if connection.open:
                idle.append(connection)
            freed.notify()

    async def one(index: int, due: float, *, fresh: bool = False) -> None:
        try:
            connection = await acquire(fresh=fresh)
        except OSError as error:
            results.errors[error.__class__.__name__] += 1
            return
        try:
            status = await connection.send(target.request(index))
            results.statuses[status] += 1
            results.latencies_ms.append((loop.time() - due) * 1000)
        except StaleConnection:
            connection.close()
            await release(connection)
            results.resent += 1
            await one(index, due, fresh=True)  # latency still counts from the original due time
            return
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as error:
            results.errors[error.__class__.__name__] += 1
            connection.close()
        await release(connection)

    start = loop.time() + 0.05
    results.started = time.monotonic() + 0.05
    for index in range(total):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(index, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    results.finished = time.monotonic()
    for connection in idle:
        connection.close()
    return results


async def run_closed_loop(target: Target, *, connections: int, duration: float) -> Results:
    results = Results()
    counter = iter(range(10**9))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration

    async def worker() -> None:
        connection: Connection | None = None
        while loop.time() < deadline:
            try:
                if connection is None or not connection.open:
                    connection = await Connection.connect(target)
                    results.connections_opened += 1
                sent = loop.time()
                status = await connection.send(target.request(next(counter)))
                results.statuses[status] += 1
                results.latencies_ms.append((loop.time() - sent) * 1000)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as error:
                results.errors[error.__class__.__name__] += 1
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()

    results.started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    results.finished = time.monotonic()
    return results


def make_target(url: str, *, headers: list[str], body_file: str) -> Target:
    parts = urlsplit(url)
    with open(body_file, "rb") as handle:
        template = handle.read()
    parsed_headers = []
    for header in headers:
        name, _, value = header.partition(":")
        parsed_headers.append((name.strip(), value.strip()))
    return Target(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 80,
        path=parts.path or "/",
        headers=parsed_headers,
        template=template,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["open", "closed"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", required=True, help="template with __ID__ / __TENANT__ placeholders")
    parser.add_argument("--header", action="append", default=[], help='"Name: value", repeatable')
    parser.add_argument("--rate", type=float, default=300.0, help="open loop: requests per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds")
    parser.add_argument("--connections", type=int, default=32, help="closed loop: concurrent connections")
    args = parser.parse_args(argv)
    target = make_target(args.url, headers=args.header, body_file=args.body_file)
    if args.mode == "open":
        results = asyncio.run(run_open_loop(target, rate=args.rate, duration=args.duration))
        summary = results.summary(mode="open", target_rate=args.rate)
    else:
        results = asyncio.run(run_closed_loop(target, connections=args.connections, duration=args.duration))
        summary = results.summary(mode="closed", connections=args.connections)
    summary["run_id"] = target.run_id
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
