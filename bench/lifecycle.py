"""``python -m bench lifecycle``: N tenants from TENANT_PROVISIONING to ACTIVE, end to end on one machine.

The whole path runs for real: the intake (gunicorn), a Celery worker, a delivery worker (``-Q webhooks``,
threads, as docker-compose runs it) and beat, moto_server as AWS
(CodeBuild StartBuild, EventBridge PutEvents, the SQS relay that carries the bus back to the intake), and
the demo receiver (``demo/receiver.py``) answering every deployment callback and verifying signatures.
The bench plays only what a real build would do: once a tenant's build has started it posts the
build's ``TENANT_PROVISIONING_SUCCESS`` (with the receiver's URLs as build outputs) to the intake. A real
build takes minutes, so in a burst every build has started before the first one reports: the bench holds
the reports until the last build has started, which also splits the run into two phases whose CPU and
SQL are measured apart (event -> build started; build reported -> ACTIVE with the deployment callbacks).

Measured: tenants/s (first event sent -> last tenant ACTIVE), p50/p99 from the provisioning event's
arrival to "Build started" (CodeBuild answered StartBuild), p50/p99 from the TENANT_DEPLOYMENT event's
arrival (it comes back through EventBridge and the relay) to the deployment's last callback answered,
and SQL statements per tenant: ``pg_stat_statements`` in a private PostgreSQL cluster, counting every
statement the orchestrator's processes (web, worker, beat; their own database role) ran, divided by N.
CPU per tenant per kind of process (web, worker, delivery worker, beat, PostgreSQL, the AWS emulator, the
demo receiver) from /proc, per phase: less sensitive than tenants/s to the shared machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.common import (
    CpuByKind,
    add_web_arguments,
    fmt,
    log,
    machine_info,
    percentile,
    print_table,
    start_web,
    write_results,
)
from bench.steady import (
    LOCAL_BUILDER_ENV,
    add_steady_arguments,
    builder_of,
    open_loop_send,
    start_workers,
    steady_rows,
    steady_summary,
    tier_code,
)
from devstack import envelopes

API_KEY = "bench-intake-key"
SECRET = "bench-build-secret"
CONTEXT = "bench-build-context"
SUBSCRIBER_SECRET = "whsec_" + "YmVuY2gtc3Vic2NyaWJlci1zZWNyZXQtMzJieXRlcyE="
APP_ROLE = "orchestrator"
ROOT = Path(__file__).resolve().parent.parent


def provisioning_envelope(*, tenant_id: str, key: str, builder: str = "CODE_BUILD") -> dict[str, Any]:
    return envelopes.provisioning_envelope(
        tenant_id=tenant_id,
        key=key,
        name=f"Bench {key}",
        source="saas.bench",
        secret=SECRET,
        context=CONTEXT,
        builder=builder,
    )


def success_envelope(*, tenant: dict[str, Any], build_id: str, project: str, receiver: str) -> dict[str, Any]:
    """What the provisioning build's post-build step sends (see events/tests/samples)."""
    key = tenant["key"]
    detail = {
        "tenant": json.dumps(tenant, separators=(",", ":")),
        "secret": SECRET,
        "context": CONTEXT,
        "API_ENDPOINT": f"{receiver}/webhook",
        "USER_CALLBACK_ENDPOINT": f"{receiver}/{key}/user-callback",
        "APP_PLANE_ENDPOINT_FEATURE_SERVICE": f"{receiver}/{key}/feature-service",
        "APP_PLANE_REDIRECT_URL": f"{receiver}/{key}/app",
        "CLIENT_ID": f"{key}-client",
        "CLIENT_SECRET": "bench-client-secret",
        "TF_STATE_BUCKET": "bench-terraform-state",
        "TF_KEY": f"tenants/{key}/terraform.tfstate",
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        "CODEBUILD_BUILD_POSTBUILD": "1",
        "EVENT_BUS_NAME": "orchestrator",
        "tier": "BASIC",
        "jobName": project,
    }
    return envelopes.bus_envelope(
        detail_type="TENANT_PROVISIONING_SUCCESS",
        source="saas.tenant.provisioning.codebuild",
        detail=detail,
        time="2025-01-15T10:40:00Z",
    )


class Poster:
    """POSTs envelopes to the intake from a thread pool, retrying 5xx/timeouts like EventBridge."""

    def __init__(self, url: str, threads: int = 16) -> None:  # open loop: enough threads never to queue
        self.url = url
        self.pool = ThreadPoolExecutor(max_workers=threads)
        self.local = threading.local()
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()

    def _post(self, envelope: dict[str, Any]) -> int:
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        status = 0
        for attempt in range(8):
            try:
                status = session.post(
                    self.url,
                    data=json.dumps(envelope),
                    headers={"Content-Type": "application/json", "x-api-key": API_KEY},
                    timeout=30,
                ).status_code
            except requests.RequestException:
                status = 0
            if 0 < status < 500:
                break
            time.sleep(min(0.2 * 2**attempt, 5))
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
        return status

    def submit(self, envelope: dict[str, Any]):
        return self.pool.submit(self._post, envelope)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import redis as redis_client

    from devstack.processes import free_port
    from devstack.stack import LiveStack, PrivatePostgres, postgres_bin_dir

    if postgres_bin_dir() is None:
        raise RuntimeError("PostgreSQL server binaries are needed (a private cluster counts SQL statements)")
    n = args.tenants = int(args.rate * args.duration) if args.rate else args.tenants
    results: dict[str, Any] = {"machine": machine_info(), "tenants": n}
    redis_url = args.redis_url or os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/12"
    try:
        redis_client.Redis.from_url(redis_url, socket_connect_timeout=1).flushdb()
    except redis_client.RedisError:
        log("no Redis at the configured address; the stack starts an embedded one")
        redis_url = None

    log("starting a private PostgreSQL cluster with pg_stat_statements")
    with PrivatePostgres(
        database="orchestrator_bench", options={"shared_preload_libraries": "pg_stat_statements"}
    ) as pg:
        pg.execute(
            f"CREATE ROLE {APP_ROLE} LOGIN",
            f"ALTER DATABASE orchestrator_bench OWNER TO {APP_ROLE}",
            database="postgres",
        )
        pg.execute("CREATE EXTENSION pg_stat_statements", f"ALTER SCHEMA public OWNER TO {APP_ROLE}")
        app_url = f"postgres://{APP_ROLE}@127.0.0.1:{pg.port}/orchestrator_bench"
        web_port, receiver_port = free_port(), free_port()
        receiver = f"http://127.0.0.1:{receiver_port}"
        with LiveStack(
            database_url=app_url,
            redis_url=redis_url,
            aws_endpoint_url=None,  # moto_server, started by the stack
            api_key=API_KEY,
            extra_env={
                "ORCHESTRATOR_BASE_URL": f"http://127.0.0.1:{web_port}",
                "LOG_LEVEL": "WARNING",
                "DEMO_RECEIVER_URL": receiver,
                "DEMO_SUBSCRIBER_SECRET": SUBSCRIBER_SECRET,
                "OUTBOX_RESEND_AFTER_SECONDS": "5",
                **(LOCAL_BUILDER_ENV if builder_of(args) == "LOCAL" else {}),
            },
        ) as stack:
            log("migrating, creating tier BASIC, bootstrapping the AWS side (moto)")
            stack.manage("migrate", "--no-input", "-v", "0")
            stack.manage("shell", "-c", tier_code(builder=builder_of(args), receiver=receiver))
            stack.manage("bootstrap_aws")
            stack.manage("webhooks_demo_subscriber")
            stack.start_process(
                "receiver",
                [sys.executable, str(ROOT / "demo" / "receiver.py")],
                env={
                    "DEMO_RECEIVER_PORT": str(receiver_port),
                    "DEMO_CALLBACK_SECRET": SECRET,
                    "DEMO_CALLBACK_CONTEXT": CONTEXT,
                },
                port=receiver_port,
            )
            beat = stack.start_beat()  # first: it has started up by the time anything is measured
            web, server = start_web(stack, args, port=web_port)
            start_workers(stack, args)
            results["server"] = {
                **server,
                "celery_worker_concurrency": args.concurrency,
                "celery_pool": "prefork (worker), threads (webhook-worker)",
            }
            postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
            cpu = CpuByKind(
                {
                    "web": [web.process.pid],
                    "worker": [stack.processes["worker"].pid],
                    "delivery-worker": [stack.processes["webhook-worker"].pid],  # the Procfile's webhook-worker
                    "beat": [beat.pid],
                    "postgresql": [postmaster],
                    "emulator": [stack.processes["moto"].pid],
                    "receiver": [stack.processes["receiver"].pid],
                }
            )
            pg.execute("SELECT pg_stat_statements_reset()")
            stack.sampler.reset()
            measured = drive(args=args, pg=pg, cpu=cpu, intake=f"{web.url}/api/events/", receiver=receiver)
            results.update(measured)
            results["cpu_ms_per_tenant"] = {
                "event_to_build_started": cpu.ms_per("start", "builds_started", n),
                "build_reported_to_active": cpu.ms_per("builds_started", "end", n),
                "event_to_active": cpu.ms_per("start", "end", n),
            }
            results["memory"] = stack.sampler.report()
            statements = pg.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                f"WHERE r.rolname = '{APP_ROLE}'"
            )[0][0]
            foreign_key_checks = pg.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                f"WHERE r.rolname = '{APP_ROLE}' AND s.query LIKE '%FOR KEY SHARE OF x'"
            )[0][0]
            results["sql_statements_total"] = int(statements)
            results["sql_foreign_key_checks"] = int(foreign_key_checks)
            results["sql_client_statements_per_tenant"] = round((int(statements) - int(foreign_key_checks)) / n, 1)
            results["sql_statements_per_tenant"] = round(int(statements) / n, 1)
            results["sql_statements_per_tenant_to_build_started"] = round(
                measured.pop("sql_statements_to_build_started") / n, 1
            )
            results["sql_by_family_per_tenant"] = {
                family: round(int(calls) / n, 1)
                for family, calls in pg.execute(
                    "SELECT upper(split_part(ltrim(s.query), ' ', 1)), sum(calls) FROM pg_stat_statements s "
                    f"JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = '{APP_ROLE}' GROUP BY 1 ORDER BY 2 DESC"
                )
            }
            results["sql_top_statements"] = [
                {"calls": int(calls), "query": query[:160]}
                for calls, query in pg.execute(
                    "SELECT calls, query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                    f"WHERE r.rolname = '{APP_ROLE}' ORDER BY calls DESC LIMIT 12"
                )
            ]
    report(results)
    path = write_results("lifecycle", results)
    log(f"results written to {path}")
    return results


def app_statements(pg: Any) -> int:
    """Statements the orchestrator's role has run since the last reset of ``pg_stat_statements``."""
    return int(
        pg.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
            f"WHERE r.rolname = '{APP_ROLE}'"
        )[0][0]
    )


def drive(*, args: argparse.Namespace, pg: Any, cpu: CpuByKind, intake: str, receiver: str) -> dict[str, Any]:
    n = args.tenants
    run_id = uuid.uuid4().hex[:6]
    builder = builder_of(args)
    tenants = {}
    for index in range(n):
        tenant_id = str(uuid.uuid4())
        tenants[tenant_id] = provisioning_envelope(tenant_id=tenant_id, key=f"b{run_id}{index:05d}", builder=builder)
    poster = Poster(intake, threads=64 if args.rate else 16)
    reported: set[str] = set()
    deadline = time.monotonic() + args.timeout
    log(f"sending {n} TENANT_PROVISIONING events" + (f", {args.rate}/s open loop" if args.rate else ""))
    cpu.mark("start")
    statements_to_build_started = None
    started = time.time()
    futures: list[Any] = []
    if args.rate:
        open_loop_send(poster=poster, envelopes=list(tenants.values()), rate=args.rate, futures=futures)
    else:
        futures += [poster.submit(envelope) for envelope in tenants.values()]
    sent_done = None
    active = 0
    last_log = 0.0
    try:
        while time.monotonic() < deadline:
            if sent_done is None and len(futures) == n and all(future.done() for future in futures):
                sent_done = time.time()
            rows = started_builds(pg=pg, tenants=tenants)
            if statements_to_build_started is None and len(rows) >= n:
                cpu.mark("builds_started")
                statements_to_build_started = app_statements(pg)
                log(f"    all {n} builds started")
            # Play the CodeBuild builds' post-build step (a LOCAL build reports its outcome itself). Closed loop:
            # none reports before the last has started (a real build takes minutes), so the phases' CPU separates.
            if builder == "CODE_BUILD" and (args.rate or statements_to_build_started is not None):
                post_build_outcomes(rows=rows, poster=poster, tenants=tenants, reported=reported, receiver=receiver)
            active = pg.execute("SELECT count(*) FROM tenants_tenant WHERE status = 'ACTIVE'")[0][0]
            if time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                log(f"    {len(reported)} builds reported, {active}/{n} tenants ACTIVE")
            if active >= n and sent_done is not None:
                break
            time.sleep(0.2 if statements_to_build_started is None else 0.5)
    finally:
        poster.close()
    finished = time.time()
    cpu.mark("end")
    if statements_to_build_started is None:
        cpu.mark("builds_started")
    statuses = dict(
        pg.execute("SELECT status, count(*) FROM tenants_tenant GROUP BY status ORDER BY status")  # type: ignore[arg-type]
    )
    # Timings from the database (one clock: this machine's; the server stamps arrival and progress).
    build_lags = [
        float(lag)
        for (lag,) in pg.execute(
            "SELECT extract(epoch FROM min(h.at) - e.received_at) FROM tenants_build b "
            "JOIN events_receivedevent e ON e.id = b.event_id "
            "JOIN tenants_tenanthistory h ON h.ref_type = 'build' AND h.ref_id = b.id::text "
            "AND h.kind = 'build' AND h.summary LIKE '%started%' "
            "WHERE b.purpose = 'provision' GROUP BY b.id, e.received_at"
        )
    ]
    deploy_lags = [
        float(lag)
        for (lag,) in pg.execute(
            "SELECT extract(epoch FROM max(d.finished_at) - e.received_at) FROM events_receivedevent e "
            "JOIN webhooks_webhookdelivery d ON d.event_id = e.id "
            "WHERE e.detail_type = 'TENANT_DEPLOYMENT' AND d.status = 'succeeded' GROUP BY e.id, e.received_at"
        )
    ]
    last_active = pg.execute(
        "SELECT extract(epoch FROM max(at)) FROM tenants_tenanthistory "
        "WHERE kind = 'transition' AND details->>'to' = 'ACTIVE'"
    )[0][0]
    steps = {
        step: {
            "n": int(count),
            "created_to_finished_mean_ms": round(float(mean) * 1000, 1),
            "request_mean_ms": round(float(request_ms or 0), 1),
            "created_to_attempt_start_mean_ms": round(float(start) * 1000, 1),
            "attempts": int(attempts),
        }
        for step, count, mean, request_ms, start, attempts in pg.execute(
            "SELECT d.step, count(*), avg(extract(epoch FROM d.finished_at - d.created_at)), avg(a.duration_ms), "
            "avg(extract(epoch FROM a.started_at - d.created_at)), sum(d.attempts) "
            "FROM webhooks_webhookdelivery d JOIN webhooks_deliveryattempt a "
            "ON a.delivery_id = d.id AND a.outcome = 'succeeded' "
            "WHERE d.status = 'succeeded' GROUP BY d.step ORDER BY 3"
        )
    }
    end = float(last_active) if last_active and active >= n else finished
    elapsed = end - started
    steady = steady_summary(args=args, pg=pg) if args.rate else {}
    return {
        **steady,
        "completed": active >= n,
        "tenants_active": active,
        "tenant_statuses": statuses,
        "intake_answers": poster.statuses,
        "elapsed_s": round(elapsed, 1),
        "send_s": round((sent_done or finished) - started, 1),
        "tenants_per_s": round(active / elapsed, 2) if elapsed > 0 else None,
        "sql_statements_to_build_started": statements_to_build_started or 0,
        "event_to_build_start_ms": {
            "p50": _ms(percentile(build_lags, 0.5)),
            "p99": _ms(percentile(build_lags, 0.99)),
            "n": len(build_lags),
        },
        "deliveries_by_step": steps,
        "deployment_event_to_last_callback_ms": {
            "p50": _ms(percentile(deploy_lags, 0.5)),
            "p99": _ms(percentile(deploy_lags, 0.99)),
            "n": len(deploy_lags),
        },
    }


def started_builds(*, pg: Any, tenants: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(tenant, build id, project) of this run's provisioning builds that have started."""
    rows = pg.execute(
        "SELECT b.tenant_id, b.build_id, b.project FROM tenants_build b "
        "WHERE b.build_id <> '' AND b.purpose = 'provision'"
    )
    return [(tenant_id, build_id, project) for tenant_id, build_id, project in rows if tenant_id in tenants]


def post_build_outcomes(
    *, rows: list[tuple[str, str, str]], poster: Poster, tenants: dict[str, Any], reported: set[str], receiver: str
) -> None:
    """Report success for every started build not reported yet, as its post-build step would."""
    for tenant_id, build_id, project in rows:
        if tenant_id not in reported:
            reported.add(tenant_id)
            document = tenants[tenant_id]["detail"]["tenant"]
            poster.submit(success_envelope(tenant=document, build_id=build_id, project=project, receiver=receiver))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def report(results: dict[str, Any]) -> None:
    server = results["server"]
    machine = results["machine"]
    build = results["event_to_build_start_ms"]
    deploy = results["deployment_event_to_last_callback_ms"]
    rows = [
        ("machine", f"{machine['nproc']} CPU ({machine['cpu']}), {machine['memory']}"),
        (
            "processes",
            f"gunicorn {server['gunicorn']}, celery prefork "
            f"-c {server['celery_worker_concurrency']}, beat, moto_server, demo receiver",
        ),
        ("tenants ACTIVE", f"{results['tenants_active']} / {results['tenants']}  {results['tenant_statuses']}"),
        ("tenants/s", fmt(results["tenants_per_s"])),
        ("elapsed (send)", f"{results['elapsed_s']} s ({results['send_s']} s to send the events)"),
        ("event -> build start", f"p50 {fmt(build['p50'], ' ms')}  p99 {fmt(build['p99'], ' ms')}  (n={build['n']})"),
        (
            "deployment -> last callback",
            f"p50 {fmt(deploy['p50'], ' ms')}  p99 {fmt(deploy['p99'], ' ms')}  (n={deploy['n']})",
        ),
        (
            "SQL statements per tenant",
            f"{results['sql_client_statements_per_tenant']} sent by the processes (+ foreign-key checks: "
            f"{results['sql_statements_per_tenant']} in pg_stat_statements); "
            f"{results['sql_statements_per_tenant_to_build_started']} until every build started",
        ),
        ("SQL per tenant by statement", "  ".join(f"{k} {v}" for k, v in results["sql_by_family_per_tenant"].items())),
    ]
    for phase, kinds in results["cpu_ms_per_tenant"].items():
        rows.append(
            (f"CPU ms/tenant {phase.replace('_', ' ')}", "  ".join(f"{kind} {fmt(ms)}" for kind, ms in kinds.items()))
        )
    for name, values in results.get("memory", {}).items():
        if name in ("web", "worker", "delivery-worker"):
            rows.append((f"peak RSS {name}", f"{values['peak_total_rss_mb']} MB ({values['processes']} processes)"))
    if "steady" in results:
        rows += steady_rows(results)
    print_table("bench lifecycle", rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenants", type=int, default=500)
    add_web_arguments(parser)
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker processes (prefork)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="give up after this many seconds")
    add_steady_arguments(parser)
