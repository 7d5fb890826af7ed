"""``python -m bench webhooks``: signed subscriber deliveries per second, and head-of-line blocking.

Setup: PostgreSQL (a dedicated database), Redis (a dedicated db), Celery beat (it queues retries once
due), Celery workers consuming only the ``webhooks`` queue, and a local asyncio receiver
(``bench.receiver``). For each scenario the deliveries are written first through the real service
(``subscribers_notify``: one delivery per subscribed endpoint, body signed per attempt; one notification's
deliveries are one task, sent in parallel), with the workers stopped; then the workers start and the bench
measures how fast they drain them (rows' ``finished_at``, the workers' clock).

Scenarios (same number of endpoints and tenants each time):
- healthy: every endpoint answers 200 at once;
- 10% slow: one endpoint in ten answers after 5 s;
- 10% down: one endpoint in ten refuses connections (nothing listens on its port).
"Healthy endpoints keep their rate" is checked by comparing their deliveries/s with the healthy run of the
same round; ``--rounds`` (3) rounds run the three scenarios back to back and the medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import (
    CpuMeter,
    fmt,
    log,
    machine_info,
    migrated_stack,
    percentile,
    print_table,
    query,
    write_results,
)

SETUP = """
import json, os
from django.db import transaction
from tenants.models import Tenant, TenantStatus
from webhooks.models import WebhookEndpoint
from webhooks.services.endpoints import endpoint_create
from webhooks.services.notify import subscribers_notify

WebhookEndpoint.objects.update(is_active=False)
endpoints = {}
for kind, url in json.loads(os.environ["BENCH_URLS"]):
    endpoint, _ = endpoint_create(url=url, events=["tenant.deployed"])
    endpoints[endpoint.pk] = kind
run = os.environ["BENCH_RUN"]
tenants = [
    Tenant(id=f"{run}-{i}", key=f"{run}k{i}", name=f"Bench {i}", tier="BASIC", status=TenantStatus.ACTIVE)
    for i in range(int(os.environ["BENCH_TENANTS"]))
]
Tenant.objects.bulk_create(tenants)
for tenant in tenants:
    with transaction.atomic():
        subscribers_notify(
            tenant=tenant,
            event_type="tenant.deployed",
            dedupe_prefix=f"bench:{tenant.pk}",
            data={"tenant": {"id": tenant.pk, "key": tenant.key}, "status": "ACTIVE"},
        )
print("BENCH_ENDPOINTS " + json.dumps(endpoints))
"""


def scenario_urls(*, endpoints: int, receiver: str, down_port: int, slow: int, down: int) -> list[tuple[str, str]]:
    urls = []
    for index in range(endpoints):
        if index < slow:
            urls.append(("slow", f"{receiver}/slow/{index}"))
        elif index < slow + down:
            urls.append(("down", f"http://127.0.0.1:{down_port}/down/{index}"))
        else:
            urls.append(("ok", f"{receiver}/ok/{index}"))
    return urls


def run_scenario(stack: Any, *, name: str, urls: list[tuple[str, str]], tenants: int, args: argparse.Namespace) -> dict:
    import redis

    workers = worker_names(args.processes)
    for worker in workers:
        if worker in stack.processes and stack.processes[worker].running:
            stack.processes[worker].stop()
    redis.Redis.from_url(stack.redis_url).flushdb()
    run_id = f"w{uuid.uuid4().hex[:6]}"
    log(f"[{name}] writing {len(urls)} endpoints x {tenants} tenants = {len(urls) * tenants} deliveries")
    output = stack.manage(
        "shell",
        "-c",
        SETUP,
        timeout=1800,
        env={"BENCH_URLS": json.dumps(urls), "BENCH_RUN": run_id, "BENCH_TENANTS": str(tenants)},
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH_ENDPOINTS "))
    kinds = {int(pk): kind for pk, kind in json.loads(line.split(" ", 1)[1]).items()}
    healthy_ids = [pk for pk, kind in kinds.items() if kind == "ok"]
    stack.sampler.reset()
    started = time.time()
    for worker in workers:
        stack.start_worker(
            worker,
            queues=["webhooks"],
            concurrency=args.concurrency,
            pool=args.pool,
            extra_args=["--prefetch-multiplier", "1"],
        )
    ready = time.time()
    meter = CpuMeter([stack.processes[worker] for worker in workers])
    profiler = None
    if args.profile and name == "healthy":
        import tempfile

        from bench.intake import profile_web

        pids = [
            pid for worker in workers for pid in (stack.processes[worker].children() or [stack.processes[worker].pid])
        ]
        profiler = profile_web(pids, duration=args.profile_seconds, out_dir=Path(tempfile.mkdtemp()))
    healthy_total = len(healthy_ids) * tenants
    deadline = time.monotonic() + args.timeout
    done = 0
    while time.monotonic() < deadline:
        done = _count(stack, healthy_ids, "succeeded")
        if done >= healthy_total:
            break
        time.sleep(0.5)
    finished = time.time()
    worker_cpu_ms, postgres_cpu_ms = meter.ms_per(done)
    healthy_times = [
        float(value)
        for (value,) in query(
            stack.database_url,
            "SELECT extract(epoch FROM finished_at) FROM webhooks_webhookdelivery "
            "WHERE endpoint_id = ANY(%s) AND status = 'succeeded'",
            (healthy_ids,),
        )
    ]
    last = max(healthy_times) if healthy_times else finished
    elapsed = max(last - ready, 1e-6)
    since_start = [t - ready for t in healthy_times]
    others = {
        kind: dict(
            query(
                stack.database_url,
                "SELECT status, count(*) FROM webhooks_webhookdelivery WHERE endpoint_id = ANY(%s) GROUP BY status",
                ([pk for pk, k in kinds.items() if k == kind],),
            )
        )
        for kind in ("slow", "down")
        if kind in kinds.values()
    }
    result = {
        "endpoints": {kind: sum(1 for k in kinds.values() if k == kind) for kind in ("ok", "slow", "down")},
        "tenants": tenants,
        "healthy_deliveries": healthy_total,
        "healthy_succeeded": done,
        "completed": done >= healthy_total,
        "worker_start_s": round(ready - started, 1),
        "healthy_elapsed_s": round(elapsed, 2),
        "healthy_deliveries_per_s": round(done / elapsed, 1),
        "healthy_done_after_s": {
            "p50": percentile(since_start, 0.5),
            "p99": percentile(since_start, 0.99),
            "max": round(max(since_start), 2) if since_start else None,
        },
        "unhealthy_statuses": others,
        # All the workers' and PostgreSQL's CPU until the healthy deliveries were done, per healthy delivery
        # (with slow or down receivers it includes what their deliveries cost meanwhile).
        "worker_cpu_ms_per_delivery": worker_cpu_ms,
        "postgres_cpu_ms_per_delivery": postgres_cpu_ms,
        "memory": {worker: stack.sampler.report().get(worker) for worker in workers},
    }
    if profiler and "files" in profiler:
        from bench.intake import summarise_profile

        for _, process in profiler["files"]:
            process.wait(timeout=args.profile_seconds + 60)
        result["profile"] = summarise_profile([path for path, _ in profiler["files"]])
    for worker in workers:
        stack.processes[worker].stop()
    log(f"[{name}] {result['healthy_deliveries_per_s']} healthy deliveries/s ({done}/{healthy_total})")
    return result


def worker_names(processes: int) -> list[str]:
    return ["worker"] + [f"worker-{index}" for index in range(2, processes + 1)]


def _count(stack: Any, endpoint_ids: list[int], status: str) -> int:
    return query(
        stack.database_url,
        "SELECT count(*) FROM webhooks_webhookdelivery WHERE endpoint_id = ANY(%s) AND status = %s",
        (endpoint_ids, status),
    )[0][0]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from devstack.processes import free_port

    results: dict[str, Any] = {"machine": machine_info()}
    extra_env = {"LOG_LEVEL": "WARNING", "WEBHOOK_CONNECT_TIMEOUT": "2", "WEBHOOK_READ_TIMEOUT": "10"}
    with migrated_stack(args, results, extra_env=extra_env) as stack:
        stack.start_beat()  # as in production: it queues retries once they are due
        receiver_port = free_port()
        stack.start_process(
            "receiver",
            [sys.executable, "-m", "bench.receiver", str(receiver_port), "--slow-seconds", str(args.slow_seconds)],
            port=receiver_port,
        )
        receiver = f"http://127.0.0.1:{receiver_port}"
        down_port = free_port()  # nothing listens there
        results["worker"] = {
            "queue": "webhooks",
            "pool": args.pool,
            "concurrency": args.concurrency,
            "processes": args.processes,
        }
        tenth = max(1, args.endpoints // 10)
        scenarios = {
            "healthy": scenario_urls(endpoints=args.endpoints, receiver=receiver, down_port=down_port, slow=0, down=0),
            "slow_10pct": scenario_urls(
                endpoints=args.endpoints, receiver=receiver, down_port=down_port, slow=tenth, down=0
            ),
            "down_10pct": scenario_urls(
                endpoints=args.endpoints, receiver=receiver, down_port=down_port, slow=0, down=tenth
            ),
        }
        # The VM's speed drifts within minutes: every round runs the three scenarios back to back, and a
        # scenario's rate is compared with the healthy run of its own round.
        rounds = []
        for number in range(1, args.rounds + 1):
            measured = {
                name: run_scenario(stack, name=name, urls=urls, tenants=args.tenants, args=args)
                for name, urls in scenarios.items()
            }
            base = measured["healthy"]["healthy_deliveries_per_s"] or 0
            for scenario in measured.values():
                rate = scenario["healthy_deliveries_per_s"]
                scenario["healthy_rate_vs_baseline"] = round(rate / base, 2) if base else None
            log(
                f"round {number}: "
                + ", ".join(
                    f"{name} {scenario['healthy_deliveries_per_s']}/s (x{scenario['healthy_rate_vs_baseline']})"
                    for name, scenario in measured.items()
                )
            )
            rounds.append(measured)
    results["rounds"] = rounds
    results["scenarios"] = {name: rounds_summary([measured[name] for measured in rounds]) for name in scenarios}
    base = results["scenarios"]["healthy"]["healthy_deliveries_per_s"] or 0
    results["figures"] = {
        "deliveries_per_s": base,
        "target_per_s": 300,
        "slow_10pct_healthy_rate_ratio": results["scenarios"]["slow_10pct"]["healthy_rate_vs_baseline"],
        "down_10pct_healthy_rate_ratio": results["scenarios"]["down_10pct"]["healthy_rate_vs_baseline"],
    }
    report(results)
    path = write_results("webhooks", results)
    log(f"results written to {path}")
    return results


SUMMARISED = (
    "healthy_deliveries_per_s",
    "healthy_rate_vs_baseline",
    "worker_cpu_ms_per_delivery",
    "postgres_cpu_ms_per_delivery",
)


def rounds_summary(runs: list[dict]) -> dict:
    """One scenario over the rounds: the last round's details, with the medians of the figures (and the
    value of each round beside them)."""
    summary = dict(runs[-1])
    for key in SUMMARISED:
        values = [run[key] for run in runs if run.get(key) is not None]
        summary[key] = round(statistics.median(values), 2) if values else None
        summary[f"{key}_per_round"] = [run.get(key) for run in runs]
    return summary


def report(results: dict[str, Any]) -> None:
    machine = results["machine"]
    worker = results["worker"]
    rows = [
        ("machine", f"{machine['nproc']} CPU ({machine['cpu']}), {machine['memory']}"),
        ("worker", f"{worker['processes']} x celery -Q webhooks -P {worker['pool']} -c {worker['concurrency']}"),
    ]
    for name, scenario in results["scenarios"].items():
        endpoints = scenario["endpoints"]
        rows.append(
            (
                name,
                f"{fmt(scenario['healthy_deliveries_per_s'])} healthy deliveries/s, "
                f"x{scenario['healthy_rate_vs_baseline']} of its round's healthy run (medians; per round "
                f"{scenario['healthy_deliveries_per_s_per_round']}/s, "
                f"x{scenario['healthy_rate_vs_baseline_per_round']}) endpoints {endpoints}",
            )
        )
        rows.append(
            (
                "",
                f"CPU per healthy delivery: workers {scenario['worker_cpu_ms_per_delivery']} ms, "
                f"PostgreSQL {scenario['postgres_cpu_ms_per_delivery']} ms",
            )
        )
        if scenario["unhealthy_statuses"]:
            rows.append(("", f"unhealthy deliveries at the end: {scenario['unhealthy_statuses']}"))
        peaks = [memory["peak_total_rss_mb"] for memory in (scenario.get("memory") or {}).values() if memory]
        if peaks:
            rows.append(("", f"peak RSS workers {' + '.join(f'{peak} MB' for peak in peaks)}"))
    rows.append(("target", "healthy >= 300 deliveries/s; slow/down endpoints must not slow the healthy ones"))
    print_table("bench webhooks", rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoints", type=int, default=10, help="subscriber endpoints per scenario")
    parser.add_argument("--tenants", type=int, default=200, help="deliveries per endpoint")
    parser.add_argument("--pool", default=os.environ.get("BENCH_WEBHOOK_POOL", "threads"), help="celery pool")
    parser.add_argument(
        "--processes",
        type=int,
        default=int(os.environ.get("BENCH_WEBHOOK_PROCESSES", 2)),
        help="delivery worker processes (one per core, as deployed)",
    )
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_WEBHOOK_CONCURRENCY", 8)))
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three scenarios; medians reported")
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait per scenario")
    parser.add_argument("--profile", action="store_true", help="py-spy the worker during the healthy run")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
