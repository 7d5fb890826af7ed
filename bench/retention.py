"""``python -m bench retention``: purge of 1,000,000 old delivery attempts on PostgreSQL: time, longest lock.

Setup: a dedicated PostgreSQL database, migrated; ``--deliveries`` finished deliveries (written through the
ORM) with ``--attempts-per-delivery`` attempts each started 60 days ago (one ``INSERT ... SELECT``), plus one
recent attempt per delivery that must stay. Then the real retention rule (``webhooks.retention``,
``orchestrator.retention.rows_purge``: keyset batches of ``--batch-size`` ids, one transaction each) runs in a
``manage.py shell`` process while the bench

- samples ``pg_stat_activity`` every 5 ms: the longest-running transaction of the purge's connection is the
  longest any of its row locks was held (locks go at commit);
- keeps a writer busy on the same tables (a new attempt for a random delivery and an update of that
  delivery, one transaction each, ``lock_timeout`` 5 s): its slowest transaction is what the purge made others
  wait, at most.

``--single-delete`` also times one plain ``DELETE ... WHERE started_at < cutoff`` of the same rows (seeded
again), for comparison. CPU per purged attempt is reported for the purging process and its PostgreSQL
backend (read from ``/proc`` while it runs).
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from typing import Any

from bench.common import (
    cpu_seconds,
    fmt,
    log,
    machine_info,
    migrated_stack,
    print_table,
    scalar,
    write_results,
)

SEED = """
import os
from django.db import connection
from django.utils import timezone
from tenants.models import Tenant, TenantStatus
from webhooks.models import DeliveryStatus, DeliveryStep, WebhookDelivery

deliveries = int(os.environ["BENCH_DELIVERIES"])
per_delivery = int(os.environ["BENCH_ATTEMPTS_PER_DELIVERY"])
tenant, _ = Tenant.objects.get_or_create(
    id="bench-retention", defaults={"key": "benchretention", "status": TenantStatus.ACTIVE}
)
WebhookDelivery.objects.bulk_create(
    (
        WebhookDelivery(
            dedupe_key=f"bench:{os.environ['BENCH_RUN']}:{i}", tenant=tenant, step=DeliveryStep.SUBSCRIBER,
            event_type="tenant.deployed", url="http://127.0.0.1:9/hook", signing_scheme="standard",
            status=DeliveryStatus.SUCCEEDED, attempts=per_delivery + 1, finished_at=timezone.now(),
        )
        for i in range(deliveries)
    ),
    batch_size=5000,
)
with connection.cursor() as cursor:
    cursor.execute(
        '''
        INSERT INTO webhooks_deliveryattempt (delivery_id, number, url, request_headers, started_at, duration_ms,
            status_code, response_body, response_truncated, error, outcome, retry_at)
        SELECT d.id, n, d.url, '{"content-type": "application/json", "webhook-id": "msg_x"}'::jsonb,
            now() - interval '60 days' + n * interval '1 second', 12, 500, 'upstream timeout, try again later',
            false, '', 'retry', NULL
        FROM webhooks_webhookdelivery d CROSS JOIN generate_series(1, %s) AS n
        ''',
        [per_delivery],
    )
    old = cursor.rowcount
    cursor.execute(
        '''
        INSERT INTO webhooks_deliveryattempt (delivery_id, number, url, request_headers, started_at, duration_ms,
            status_code, response_body, response_truncated, error, outcome, retry_at)
        SELECT d.id, %s + 1, d.url, '{}'::jsonb, now() - interval '1 day', 10, 200, 'ok', false, '', 'succeeded', NULL
        FROM webhooks_webhookdelivery d
        ''',
        [per_delivery],
    )
print("BENCH_SEEDED", old)
"""

PURGE = """
import json, time
from datetime import timedelta
from django.utils import timezone
from webhooks.retention import delivery_attempts_purge

cutoff = timezone.now() - timedelta(days=30)
started, cpu = time.monotonic(), time.process_time()
if os.environ.get("BENCH_SINGLE_DELETE"):
    from django.db import connection, transaction
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM webhooks_deliveryattempt WHERE started_at < %s", [cutoff])
        purged = cursor.rowcount
else:
    purged = delivery_attempts_purge(cutoff=cutoff)
print("BENCH_PURGED", json.dumps({"purged": purged, "seconds": time.monotonic() - started,
                                  "cpu_seconds": time.process_time() - cpu}))
"""


def execute(database_url: str, sql: str) -> None:
    from bench.common import _connect

    with _connect(database_url) as connection:
        connection.execute(sql)


class LockWatch:
    """Samples the purge connection's transaction age, and runs a competing writer, while the purge runs."""

    def __init__(self, database_url: str, *, application: str) -> None:
        self.database_url = database_url
        self.application = application
        self.longest_transaction = 0.0
        self.backend_cpu: dict[int, float] = {}  # the purge's PostgreSQL backend(s): CPU seconds, last seen
        self.writer_latencies: list[float] = []
        self.writer_errors = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._sample), threading.Thread(target=self._write)]

    def _sample(self) -> None:
        from bench.common import _connect

        with _connect(self.database_url) as connection:
            while not self._stop.is_set():
                rows = connection.execute(
                    "SELECT pid, extract(epoch FROM clock_timestamp() - xact_start) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (self.application,),
                ).fetchall()
                for pid, age in rows:
                    self.longest_transaction = max(self.longest_transaction, float(age or 0))
                    # A backend's CPU is gone from /proc once it exits: keep the last reading.
                    self.backend_cpu[pid] = max(self.backend_cpu.get(pid, 0.0), cpu_seconds([pid]))
                time.sleep(0.005)

    def _write(self) -> None:
        from bench.common import _connect

        with _connect(self.database_url) as connection:
            ids = [row[0] for row in connection.execute("SELECT id FROM webhooks_webhookdelivery").fetchall()]
            connection.execute("SET lock_timeout = '5s'")
            connection.autocommit = False
            while not self._stop.is_set():
                delivery = random.choice(ids)
                started = time.monotonic()
                try:
                    connection.execute(
                        "UPDATE webhooks_webhookdelivery SET attempts = attempts + 1 WHERE id = %s RETURNING attempts",
                        (delivery,),
                    )
                    connection.execute(
                        "INSERT INTO webhooks_deliveryattempt (delivery_id, number, url, request_headers, started_at, "
                        "response_body, response_truncated, error, outcome) "
                        "SELECT id, attempts, url, '{}'::jsonb, now(), '', false, '', 'succeeded' "
                        "FROM webhooks_webhookdelivery WHERE id = %s",
                        (delivery,),
                    )
                    connection.commit()
                except Exception:
                    connection.rollback()
                    self.writer_errors += 1
                self.writer_latencies.append(time.monotonic() - started)
                time.sleep(0.01)

    def __enter__(self) -> LockWatch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def measure(stack: Any, database_url: str, args: argparse.Namespace, *, single: bool) -> dict[str, Any]:
    run = f"r{random.randrange(10**6)}"
    log(f"seeding {args.deliveries:,} deliveries x {args.attempts_per_delivery} old attempts (+1 recent each)")
    execute(database_url, "TRUNCATE webhooks_deliveryattempt, webhooks_webhookdelivery CASCADE")
    output = stack.manage(
        "shell",
        "-c",
        SEED,
        timeout=3600,
        env={
            "BENCH_DELIVERIES": str(args.deliveries),
            "BENCH_ATTEMPTS_PER_DELIVERY": str(args.attempts_per_delivery),
            "BENCH_RUN": run,
        },
    ).stdout
    seeded = int(next(line for line in output.splitlines() if line.startswith("BENCH_SEEDED ")).split()[1])
    # Fresh statistics, as autovacuum keeps them: with none for the bulk-created deliveries the planner joins
    # every attempt before taking the oldest 1,000 (seconds per batch instead of milliseconds).
    execute(database_url, "VACUUM ANALYZE webhooks_deliveryattempt, webhooks_webhookdelivery")
    size = scalar(database_url, "SELECT pg_size_pretty(pg_total_relation_size('webhooks_deliveryattempt'))")
    log(f"{seeded:,} old attempts ({size} with indexes); purging ({'one DELETE' if single else 'batches'})")
    application = f"bench-retention-{run}"
    env = {"PGAPPNAME": application, "RETENTION_BATCH_SIZE": str(args.batch_size)}
    if single:
        env["BENCH_SINGLE_DELETE"] = "1"
    with LockWatch(database_url, application=application) as watch:
        output = stack.manage("shell", "-c", "import os\n" + PURGE, timeout=3600, env=env).stdout
    database_cpu = sum(watch.backend_cpu.values())
    result = json.loads(next(line for line in output.splitlines() if line.startswith("BENCH_PURGED ")).split(" ", 1)[1])
    remaining_old = scalar(
        database_url, "SELECT count(*) FROM webhooks_deliveryattempt WHERE started_at < now() - interval '30 days'"
    )
    latencies = sorted(watch.writer_latencies)
    purged = result["purged"]
    return {
        "method": "one DELETE statement" if single else f"batches of {args.batch_size} (rows_purge)",
        "seeded_old_attempts": seeded,
        "table_size": size,
        "purged": purged,
        "old_attempts_left": remaining_old,
        "seconds": round(result["seconds"], 2),
        "attempts_per_s": round(purged / result["seconds"]) if result["seconds"] else None,
        "longest_transaction_s": round(watch.longest_transaction, 3),
        "purge_cpu_us_per_attempt": round(result["cpu_seconds"] * 1e6 / purged, 1) if purged else None,
        "postgres_cpu_us_per_attempt": round(database_cpu * 1e6 / purged, 1) if purged else None,
        "writer_transactions": len(latencies),
        "writer_max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "writer_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1) if latencies else None,
        "writer_errors": watch.writer_errors,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_info()}
    with migrated_stack(args, results, extra_env={"LOG_LEVEL": "WARNING"}) as stack:
        results["runs"] = [measure(stack, stack.database_url, args, single=False)]
        if args.single_delete:
            results["runs"].append(measure(stack, stack.database_url, args, single=True))
    report(results)
    path = write_results("retention", results)
    log(f"results written to {path}")
    return results


def report(results: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = []
    for measured in results["runs"]:
        rows += [
            (
                measured["method"],
                f"{measured['purged']:,} of {measured['seeded_old_attempts']:,} old attempts "
                f"({measured['table_size']}) in {fmt(measured['seconds'], ' s')} "
                f"({fmt(measured['attempts_per_s'])}/s); {measured['old_attempts_left']} old left",
            ),
            (
                "",
                f"longest transaction (lock held): {measured['longest_transaction_s']} s; concurrent writer "
                f"max {measured['writer_max_ms']} ms, p99 {measured['writer_p99_ms']} ms over "
                f"{measured['writer_transactions']} transactions, {measured['writer_errors']} lock timeouts",
            ),
            (
                "",
                f"CPU per purged attempt: purge process {measured['purge_cpu_us_per_attempt']} us, "
                f"PostgreSQL {measured['postgres_cpu_us_per_attempt']} us",
            ),
        ]
    print_table("bench retention", rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deliveries", type=int, default=100_000, help="finished deliveries seeded")
    parser.add_argument("--attempts-per-delivery", type=int, default=10, help="old attempts per delivery")
    parser.add_argument("--batch-size", type=int, default=1000, help="RETENTION_BATCH_SIZE for the purge")
    parser.add_argument("--single-delete", action="store_true", help="also time one plain DELETE, for comparison")
