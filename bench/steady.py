"""Steady load for ``bench lifecycle --rate R --duration D``: provisioning events sent open loop (one every 1/R s,
whatever the orchestrator has finished), and where each tenant's time went.

Every timestamp comes from the database the processes write (one clock, this machine's): the intake stamps
arrival, the services stamp builds, outbox rows, deliveries, attempts and the tenant's history. The latencies
are per tenant, reported as p50/p95/p99:

- provisioning event accepted -> its build started (the builder took it);
- TENANT_DEPLOYMENT accepted (it came back through EventBridge and the emulator's relay) -> the deployment's
  last callback answered by the receivers;
- provisioning event accepted -> tenant ACTIVE (with the LOCAL builder, the whole lifecycle: the build runs
  ``demo/build.sh``, posts its outcome, the outbox publishes the deployment, the chain calls back).

The breakdown splits provisioning -> ACTIVE into its hops, so a slow hop shows by name.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import threading
import time
from typing import Any

from bench.common import fmt, percentile

# The LOCAL builder runs demo/build.sh on the worker (the stack runs the production settings, hence the opt-in).
LOCAL_BUILDER_ENV = {
    "LOCAL_BUILDER_ENABLED": "true",
    "LOCAL_BUILDER_ALLOW_IN_PRODUCTION": "true",
    "LOCAL_BUILD_COMMANDS": "demo/build.sh provision",
}

# Per tenant: when each hop of the lifecycle happened (epoch seconds; NULL when it did not happen).
HOPS_SQL = """
SELECT
  extract(epoch FROM pe.received_at),
  (SELECT extract(epoch FROM min(h.at)) FROM tenants_tenanthistory h
    WHERE h.ref_type = 'build' AND h.ref_id = b.id::text AND h.kind = 'build' AND h.summary LIKE '%started%'),
  (SELECT extract(epoch FROM min(e.received_at)) FROM events_receivedevent e
    WHERE e.tenant_id = b.tenant_id AND e.detail_type = 'TENANT_PROVISIONING_SUCCESS'),
  (SELECT extract(epoch FROM min(e.finished_at)) FROM events_receivedevent e
    WHERE e.tenant_id = b.tenant_id AND e.detail_type = 'TENANT_PROVISIONING_SUCCESS'),
  (SELECT extract(epoch FROM min(o.sent_at)) FROM events_outboxevent o
    WHERE o.tenant_id = b.tenant_id AND o.detail_type = 'TENANT_DEPLOYMENT'),
  (SELECT extract(epoch FROM min(e.received_at)) FROM events_receivedevent e
    WHERE e.tenant_id = b.tenant_id AND e.detail_type = 'TENANT_DEPLOYMENT'),
  (SELECT extract(epoch FROM min(e.started_at)) FROM events_receivedevent e
    WHERE e.tenant_id = b.tenant_id AND e.detail_type = 'TENANT_DEPLOYMENT'),
  (SELECT extract(epoch FROM min(a.started_at)) FROM webhooks_deliveryattempt a
    JOIN webhooks_webhookdelivery d ON d.id = a.delivery_id WHERE d.tenant_id = b.tenant_id),
  (SELECT extract(epoch FROM max(d.finished_at)) FROM webhooks_webhookdelivery d
    WHERE d.tenant_id = b.tenant_id AND d.status = 'succeeded'),
  (SELECT extract(epoch FROM min(h.at)) FROM tenants_tenanthistory h
    WHERE h.tenant_id = b.tenant_id AND h.kind = 'transition' AND h.details->>'to' = 'ACTIVE')
FROM tenants_build b JOIN events_receivedevent pe ON pe.id = b.event_id
WHERE b.purpose = 'provision'
"""
HOP_NAMES = (
    "accepted",
    "build_started",
    "outcome_accepted",
    "outcome_handled",
    "deployment_published",
    "deployment_accepted",
    "deployment_handling",
    "first_callback_sent",
    "last_callback_answered",
    "active",
)
# (label, from hop, to hop): consecutive hops, then the three end-to-end figures the issue sets targets for.
SEGMENTS = (
    ("provisioning accepted -> build started", "accepted", "build_started"),
    ("build started -> outcome accepted (the build runs, posts)", "build_started", "outcome_accepted"),
    ("outcome accepted -> handled (queue + handler)", "outcome_accepted", "outcome_handled"),
    ("outcome handled -> TENANT_DEPLOYMENT sent (outbox)", "outcome_handled", "deployment_published"),
    ("sent -> accepted (EventBridge, relay)", "deployment_published", "deployment_accepted"),
    ("deployment accepted -> handler started (queue)", "deployment_accepted", "deployment_handling"),
    ("handler started -> first callback sent", "deployment_handling", "first_callback_sent"),
    ("first callback sent -> last answered (chain)", "first_callback_sent", "last_callback_answered"),
    ("last callback -> ACTIVE", "last_callback_answered", "active"),
)
TARGETS = (
    ("event -> build start", "accepted", "build_started", 500.0),
    ("deployment -> last callback", "deployment_accepted", "last_callback_answered", 2000.0),
    ("provisioning -> ACTIVE", "accepted", "active", 5000.0),
)


def add_steady_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate", type=float, default=0.0, help="steady load: tenants/s, sent open loop (replaces --tenants)"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="steady load: seconds of sending")
    parser.add_argument(
        "--builder",
        choices=("CODE_BUILD", "LOCAL"),
        help="the tier's builder (default: LOCAL with --rate, else CODE_BUILD played by the bench)",
    )
    parser.add_argument(
        "--delivery-threads", type=int, default=8, help="threads of the delivery worker (-Q webhooks -P threads)"
    )


def builder_of(args: argparse.Namespace) -> str:
    return args.builder or ("LOCAL" if args.rate else "CODE_BUILD")


def tier_code(*, builder: str, receiver: str) -> str:
    """``manage.py shell -c`` code creating tier BASIC for the builder (LOCAL: demo/build.sh, outputs to the
    receiver)."""
    if builder == "LOCAL":
        return (
            "from tenants.models import Tier; tier, _ = Tier.objects.update_or_create(name='BASIC', defaults="
            "{'provision_project': 'demo/build.sh provision', 'deprovision_project': '', "
            "'allowed_builders': ['LOCAL']}); "
            f"tier.variables.create(name='DEMO_RECEIVER_URL', value='{receiver}')"
        )
    return (
        "from tenants.models import Tier; Tier.objects.update_or_create(name='BASIC', defaults="
        "{'provision_project': 'orchestrator-basic-provision', "
        "'deprovision_project': 'orchestrator-basic-deprovision'})"
    )


def start_workers(stack: Any, args: argparse.Namespace) -> None:
    """The workers as the Procfile runs them (docker-compose and the CDK app run the same queues and pools):
    ``worker`` (prefork, ``--concurrency`` processes) and ``webhook-worker`` (threads, ``--delivery-threads``).
    Not waited for by their "ready." log line: at LOG_LEVEL WARNING (no per-task log lines) they print none."""
    from devstack.stack import ROOT as STACK_ROOT

    programs = {}
    for line in (STACK_ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name in ("worker", "webhook-worker"):
            programs[name] = shlex.split(command.rpartition("&& exec ")[2])
    for name, program in programs.items():
        pool = program[program.index("-P") + 1] if "-P" in program else "prefork"
        stack.start_worker(
            name,
            queues=program[program.index("-Q") + 1].split(","),
            concurrency=args.delivery_threads if pool == "threads" else args.concurrency,
            pool=pool,
            wait=False,
        )
    for name in programs:
        _wait_answering(stack, name)


def _wait_answering(stack: Any, name: str, timeout: float = 120.0) -> None:
    """Wait until the worker answers a ping over the broker (it consumes its queues then)."""
    from devstack.stack import BIN

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not stack.processes[name].running:
            raise RuntimeError(f"worker {name} exited:\n{stack.processes[name].log_tail()}")
        ping = [str(BIN / "celery"), "-A", "orchestrator", "inspect", "ping", "-d", f"{name}@stack", "-t", "2"]
        if subprocess.run(ping, env=stack.env, capture_output=True, timeout=60).returncode == 0:
            return
    raise TimeoutError(f"worker {name} did not answer within {timeout} s")


def open_loop_send(*, poster: Any, envelopes: list[dict[str, Any]], rate: float, futures: list[Any]) -> None:
    """Hand envelope i to the poster at start + i/rate, however long earlier ones take (open loop), from a
    thread, appending each future to ``futures``. The poster's pool must be large enough not to queue them."""

    def send() -> None:
        start = time.monotonic()
        for index, envelope in enumerate(envelopes):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(poster.submit(envelope))

    threading.Thread(target=send, name="open-loop", daemon=True).start()


def _stats(values: list[float]) -> dict[str, Any]:
    ms = [value * 1000 for value in values]
    return {
        "p50": percentile(ms, 0.5),
        "p95": percentile(ms, 0.95),
        "p99": percentile(ms, 0.99),
        "max": round(max(ms), 1) if ms else None,
        "n": len(ms),
    }


def latency_breakdown(pg: Any) -> dict[str, Any]:
    """The three end-to-end latencies and every hop between them, p50/p95/p99/max in ms over the tenants."""
    rows = [
        dict(zip(HOP_NAMES, (None if v is None else float(v) for v in row), strict=True))
        for row in pg.execute(HOPS_SQL)
    ]

    def between(start: str, end: str) -> list[float]:
        return [row[end] - row[start] for row in rows if row[start] is not None and row[end] is not None]

    return {
        "targets": {label: {**_stats(between(a, b)), "target_p99_ms": target} for label, a, b, target in TARGETS},
        "hops": {label: _stats(between(a, b)) for label, a, b in SEGMENTS},
    }


def steady_summary(*, args: argparse.Namespace, pg: Any) -> dict[str, Any]:
    return {
        "steady": {
            "rate": args.rate,
            "duration": args.duration,
            "builder": builder_of(args),
            "load_average": " ".join(f"{value:.1f}" for value in os.getloadavg()),
            "breakdown": latency_breakdown(pg),
        }
    }


def steady_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """Report lines: the three targets, then the hops."""
    steady = results["steady"]
    rows = [
        (
            "open loop",
            f"{steady['rate']} tenants/s for {steady['duration']} s ({results['tenants']} tenants), "
            f"builder {steady['builder']}, load average {steady['load_average']}",
        )
    ]
    for label, values in steady["breakdown"]["targets"].items():
        met = values["p99"] is not None and values["p99"] < values["target_p99_ms"]
        rows.append(
            (
                label,
                f"p50 {fmt(values['p50'], ' ms')}  p95 {fmt(values['p95'], ' ms')}  p99 {fmt(values['p99'], ' ms')}"
                f"  (n={values['n']}; target p99 < {values['target_p99_ms']:.0f} ms: {'met' if met else 'NOT met'})",
            )
        )
    for label, values in steady["breakdown"]["hops"].items():
        rows.append((f"  {label}", f"p50 {fmt(values['p50'], ' ms')}  p99 {fmt(values['p99'], ' ms')}"))
    return rows
