"""``python -m bench intake``: how many events the HTTP intake accepts, and how fast it answers.

Setup: the production server (gunicorn as ``gunicorn.conf.py`` runs it: gevent workers, one per core;
``orchestrator.settings.production``, DEBUG off), a
dedicated PostgreSQL database and a dedicated Redis db; no Celery worker runs (accepted events wait in
the queue), so the figures are the intake's alone. The load generator is a second process on 127.0.0.1.

(a) maximum sustained throughput: ``wrk`` (closed loop, a Lua script gives every request a distinct
    event id and tenant id) for valid TENANT_PROVISIONING events; every 202 is then checked against the
    rows in the database;
(b) latency at a fixed 300 events/s (EventBridge's default API-destination rate): open-loop pacing by
    ``bench.loadgen``, latency from each request's due time;
(c) the same two measurements against ``POST /bench/echo/`` in the same server (DRF view that parses
    JSON and answers 202), reported as ratios: intake / bare endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    CpuMeter,
    add_web_arguments,
    ensure_wrk,
    fmt,
    log,
    machine_info,
    migrated_stack,
    print_table,
    sample_envelope,
    scalar,
    start_web,
    write_results,
)

API_KEY = "bench-intake-key"

WRK_SCRIPT = r"""
-- Distinct event ids per request: <run id>-<thread>-<counter>; counts 202s per thread.
-- accepted/other are globals so done() can read them with thread:get().
counter, accepted, other = 0, 0, 0
local template, run_id
local created = 0
local threads = {}

function setup(thread)
  created = created + 1
  thread:set("tid", created)
  table.insert(threads, thread)
end

function init(args)
  local handle = io.open(args[1], "rb")
  template = handle:read("*a")
  handle:close()
  run_id = args[2]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[3] and args[3] ~= "" then
    wrk.headers[args[3]] = args[4]
  end
end

function request()
  counter = counter + 1
  local id = run_id .. "-" .. tid .. "-" .. counter
  local body = (template:gsub("__ID__", id):gsub("__TENANT__", "tenant-" .. id))
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_accepted, total_other = 0, 0
  for _, thread in ipairs(threads) do
    total_accepted = total_accepted + thread:get("accepted")
    total_other = total_other + thread:get("other")
  end
  io.write(string.format(
    'BENCH_JSON {"accepted":%d,"other":%d,"requests":%d,"duration_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
    total_accepted, total_other, summary.requests, summary.duration,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def body_template() -> bytes:
    """The sample TENANT_PROVISIONING envelope with placeholders for the event id and the tenant id."""
    envelope = sample_envelope("tenant_provisioning")
    envelope["id"] = "__ID__"
    envelope["detail"]["tenant"]["id"] = "__TENANT__"
    override = envelope["detail"].get("builderConfig", {}).get("config", {}).get("environmentOverride", {})
    if isinstance(override.get("tenant"), str):
        tenant = json.loads(override["tenant"])
        tenant["id"] = "__TENANT__"
        override["tenant"] = json.dumps(tenant)
    return json.dumps(envelope).encode()


def run_wrk(
    wrk: str, *, url: str, body_file: Path, run_id: str, duration: float, connections: int, threads: int
) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        command = [
            wrk,
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{int(duration)}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            url,
            "--",
            str(body_file),
            run_id,
            "x-api-key",
            API_KEY,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(script.name)
    match = re.search(r"BENCH_JSON (\{.*\})", result.stdout)
    if not match:
        raise RuntimeError(f"wrk produced no result:\n{result.stdout}\n{result.stderr}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    data.update(
        tool="wrk",
        connections=connections,
        threads=threads,
        run_id=run_id,
        elapsed_s=round(seconds, 2),
        accepted_per_s=round(data["accepted"] / seconds, 1),
        requests_per_s=round(data["requests"] / seconds, 1),
    )
    return data


def run_loadgen(
    mode: str, *, url: str, body_file: Path, duration: float, rate: float = 300, connections: int = 32
) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        mode,
        "--url",
        url,
        "--body-file",
        str(body_file),
        "--header",
        f"x-api-key: {API_KEY}",
        "--duration",
        str(duration),
        "--rate",
        str(rate),
        "--connections",
        str(connections),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 120, cwd=Path(__file__).parent.parent
    )
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{result.stderr}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["tool"] = "bench.loadgen"
    return data


def max_throughput(
    wrk: str | None, *, url: str, body_file: Path, duration: float, connections: int, label: str
) -> dict:
    run_id = f"{label}{int(time.time() * 1000) % 10**8}"
    if wrk:
        return run_wrk(
            wrk, url=url, body_file=body_file, run_id=run_id, duration=duration, connections=connections, threads=2
        )
    data = run_loadgen("closed", url=url, body_file=body_file, duration=duration, connections=connections)
    data["requests_per_s"] = data["responses_per_s"]
    return data


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return round(statistics.median(known), 3) if known else None


def rounds_summary(runs: list[dict]) -> dict:
    """Several maximum-throughput runs of one endpoint: medians of the rates and costs, sums of the counts."""
    summary = {key: sum(run.get(key) or 0 for run in runs) for key in ("accepted", "other", "requests")}
    for key in ("accepted_per_s", "requests_per_s", "web_cpu_ms_per_request", "postgres_cpu_ms_per_request"):
        summary[key] = _median([run.get(key) for run in runs])
    summary["per_round_accepted_per_s"] = [run.get("accepted_per_s") for run in runs]
    summary["tool"], summary["connections"] = runs[0].get("tool"), runs[0].get("connections")
    return summary


def measured_cpu(stack: Any, run: Any, *args: Any) -> dict:
    """Run a maximum-throughput measurement and add the CPU it cost per answered request: web processes
    and PostgreSQL."""
    meter = CpuMeter([stack.processes["web"]])
    data = run(*args)
    answered = data.get("accepted") or 0
    if answered:
        data["web_cpu_ms_per_request"], data["postgres_cpu_ms_per_request"] = meter.ms_per(answered)
    return data


def profile_web(pids: list[int], *, duration: float, out_dir: Path) -> dict[str, Any]:
    """Sample the given processes with py-spy (``--gil``: CPU time, not waiting) while load runs."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return {"error": "py-spy is not installed (pip install py-spy)"}
    out_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for pid in pids:
        raw = out_dir / f"intake-profile-{pid}.txt"
        processes.append(
            (
                raw,
                subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(int(duration)),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--output",
                        str(raw),
                        "--nonblocking",
                        "--gil",  # only the thread holding the GIL: where the CPU goes
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            )
        )
    return {"files": processes}


def summarise_profile(files: list[Path], *, top: int = 25) -> dict[str, Any]:
    """Aggregate py-spy's collapsed stacks: share of samples by own frame and by module (inclusive)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            # Idle threads (gthread's poller, gevent's hub, waiting in select/accept) are not work: leave them out.
            leaf = frames[-1]
            if any(word in leaf for word in ("select (", "poll (", "wait (", "accept (", "_worker (concurrent")):
                continue
            total += count
            own[leaf] = own.get(leaf, 0) + count
            seen: set[str] = set()
            for frame in frames:
                match = re.search(r"\(([^)]+)\)", frame)
                where = match.group(1) if match else frame
                where = re.sub(r":\d+$", "", where)
                area = _area(where)
                if area not in seen:
                    seen.add(area)
                    inclusive[area] = inclusive.get(area, 0) + count
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "own_time_top": [
            {"frame": frame, "share": round(count / total, 3)}
            for frame, count in sorted(own.items(), key=lambda item: -item[1])[:top]
        ],
        "inclusive_by_area": {
            area: round(count / total, 3) for area, count in sorted(inclusive.items(), key=lambda item: -item[1])[:top]
        },
    }


AREAS = [
    ("events/intake/envelope", "events: envelope validation"),
    ("events/catalogue", "events: detail schemas"),
    ("events/services", "events: event_receive (store + enqueue)"),
    ("events/authentication", "events: authentication"),
    ("events/apis", "events: view"),
    ("kombu", "celery/kombu: publish to Redis"),
    ("celery", "celery/kombu: publish to Redis"),
    ("redis", "redis client"),
    ("psycopg", "psycopg (PostgreSQL driver)"),
    ("django/db", "django ORM"),
    ("rest_framework/serializers", "DRF serializers"),
    ("rest_framework/fields", "DRF serializers"),
    ("rest_framework", "DRF (views, request, response)"),
    ("django/core/handlers", "django request handling"),
    ("django/middleware", "django middleware"),
    ("django/contrib", "django contrib middleware"),
    ("orchestrator/logging", "RequestIdMiddleware (wraps the whole request)"),
    ("logging/", "stdlib logging"),
    ("pythonjsonlogger", "stdlib logging"),
    ("json/", "json"),
    ("gunicorn", "gunicorn"),
]


def _area(where: str) -> str:
    for needle, name in AREAS:
        if needle in where:
            return name
    return "other"


def run(args: argparse.Namespace) -> dict[str, Any]:
    wrk = None if args.no_wrk else ensure_wrk()
    if not wrk:
        log("wrk unavailable: maximum throughput is measured with the Python closed-loop generator")
    results: dict[str, Any] = {"machine": machine_info()}
    with migrated_stack(
        args,
        results,
        extra_env={"BENCH_ENDPOINTS": "true", "LOG_LEVEL": args.log_level, "INTAKE_API_KEYS": API_KEY},
        api_key=API_KEY,
    ) as stack:
        web, server = start_web(stack, args)
        log(f"gunicorn: {web.describe()} at {web.url}")
        results["server"] = {
            **server,
            "settings": "orchestrator.settings.production (DEBUG off)",
            "log_level": args.log_level,
            "celery_worker_running": False,
        }
        intake_url = f"{web.url}/api/events/"
        echo_url = f"{web.url}/bench/echo/"
        with tempfile.TemporaryDirectory() as tmp:
            body_file = Path(tmp) / "body.json"
            body_file.write_bytes(body_template())
            results["body_bytes"] = len(body_template())

            def maximum(url: str, label: str, duration: float = args.duration) -> dict:
                return max_throughput(
                    wrk, url=url, body_file=body_file, duration=duration, connections=args.connections, label=label
                )

            log("warming up (3 s each)")
            for url, label in ((intake_url, "warm"), (echo_url, "warmecho")):
                maximum(url, label, duration=3)

            stack.sampler.reset()
            profiler = None
            if args.profile:
                web_pids = stack.processes["web"].children()
                profiler = profile_web(web_pids, duration=args.duration, out_dir=Path(args.profile_dir or tmp))
            log(
                f"(a), (c) maximum throughput: {args.rounds} rounds of intake then bare endpoint, "
                f"{args.duration:.0f} s each, {args.connections} connections"
            )
            rows_before = scalar(stack.database_url, "SELECT count(*) FROM events_receivedevent")
            rounds = []
            for number in range(1, args.rounds + 1):
                intake = measured_cpu(stack, maximum, intake_url, f"max{number}")
                if profiler and "files" in profiler and number == 1:
                    for _, process in profiler["files"]:
                        process.wait(timeout=args.duration + 60)
                    results["profile"] = summarise_profile([path for path, _ in profiler["files"]])
                echo = measured_cpu(stack, maximum, echo_url, f"echo{number}")
                ratio = intake["accepted_per_s"] / echo["accepted_per_s"] if echo.get("accepted_per_s") else None
                rounds.append({"intake": intake, "echo": echo, "ratio": ratio})
                log(
                    f"    round {number}: intake {intake['accepted_per_s']:.0f} accepted/s, "
                    f"bare {echo.get('accepted_per_s', 0):.0f}/s, ratio {ratio or 0:.2f}"
                )
            rows_after = scalar(stack.database_url, "SELECT count(*) FROM events_receivedevent")
            intake_max = rounds_summary([entry["intake"] for entry in rounds])
            echo_max = rounds_summary([entry["echo"] for entry in rounds])
            intake_max["rows_stored"] = rows_after - rows_before
            # wrk stops counting at the deadline; requests in flight then are stored but not counted as 202.
            intake_max["every_202_stored"] = intake_max["rows_stored"] >= intake_max["accepted"]
            results["rounds"] = rounds

            log(f"(b) latency at {args.rate:.0f}/s, intake: {args.latency_duration:.0f} s open loop")
            intake_paced = run_loadgen(
                "open", url=intake_url, body_file=body_file, duration=args.latency_duration, rate=args.rate
            )
            log(f"(c) latency at {args.rate:.0f}/s, bare endpoint")
            echo_paced = run_loadgen(
                "open", url=echo_url, body_file=body_file, duration=args.latency_duration, rate=args.rate
            )
            results["memory"] = stack.sampler.report()

    echo_rate = echo_max.get("accepted_per_s") or 0
    results["intake_max"] = intake_max
    results["echo_max"] = echo_max
    results["intake_at_rate"] = intake_paced
    results["echo_at_rate"] = echo_paced
    results["figures"] = {
        "max_accepted_per_s": intake_max["accepted_per_s"],
        "echo_max_per_s": echo_rate,
        # Median of the per-round ratios: each round measures both endpoints back to back, so a change in
        # the VM's speed between rounds cancels out.
        "throughput_ratio": _median([entry["ratio"] for entry in results["rounds"]]),
        "web_cpu_ms_per_event": intake_max.get("web_cpu_ms_per_request"),
        "postgres_cpu_ms_per_event": intake_max.get("postgres_cpu_ms_per_request"),
        "echo_web_cpu_ms_per_request": echo_max.get("web_cpu_ms_per_request"),
        "rate": args.rate,
        "p50_ms": intake_paced["latency_ms"]["p50"],
        "p95_ms": intake_paced["latency_ms"]["p95"],
        "p99_ms": intake_paced["latency_ms"]["p99"],
        "echo_p50_ms": echo_paced["latency_ms"]["p50"],
        "echo_p99_ms": echo_paced["latency_ms"]["p99"],
        "achieved_rate_per_s": intake_paced["accepted_per_s"],
        "targets": {"max_accepted_per_s": 1000, "p99_ms_at_300": 50, "throughput_ratio": 0.5},
    }
    figures = results["figures"]
    figures["meets_targets"] = {
        "throughput": figures["max_accepted_per_s"] >= 1000,
        "p99": figures["p99_ms"] is not None and figures["p99_ms"] < 50,
        "ratio": figures["throughput_ratio"] is not None and figures["throughput_ratio"] >= 0.5,
    }
    report(results)
    path = write_results("intake", results)
    log(f"results written to {path}")
    return results


def report(results: dict[str, Any]) -> None:
    figures = results["figures"]
    server = results["server"]
    machine = results["machine"]
    memory = results.get("memory", {})
    intake_max = results["intake_max"]
    paced = results["intake_at_rate"]
    print_table(
        "bench intake",
        [
            ("machine", f"{machine['nproc']} CPU ({machine['cpu']}), {machine['memory']}"),
            (
                "server",
                f"gunicorn {server['gunicorn']}",
            ),
            (
                "load generator",
                f"{intake_max['tool']} ({intake_max.get('connections')} connections); open loop: bench.loadgen",
            ),
            (
                "(a) max accepted events/s",
                f"{fmt(figures['max_accepted_per_s'])} (median; rounds {intake_max['per_round_accepted_per_s']})"
                "   target >= 1,000",
            ),
            (
                "    CPU per event: web / PostgreSQL",
                f"{figures['web_cpu_ms_per_event']} ms / {figures['postgres_cpu_ms_per_event']} ms",
            ),
            (
                "    202s / other / stored",
                f"{intake_max['accepted']} / {intake_max.get('other', '-')} / {intake_max['rows_stored']}",
            ),
            ("(b) latency at 300/s p50", fmt(figures["p50_ms"], " ms")),
            ("    p95", fmt(figures["p95_ms"], " ms")),
            ("    p99", f"{fmt(figures['p99_ms'], ' ms')}   target < 50 ms"),
            (
                "    achieved / statuses",
                f"{fmt(figures['achieved_rate_per_s'])}/s {paced['statuses']} errors {paced['errors']}",
            ),
            (
                "(c) bare endpoint max/s",
                f"{fmt(figures['echo_max_per_s'])} (median; rounds {results['echo_max']['per_round_accepted_per_s']})",
            ),
            (
                "    bare p50 / p99 at 300/s",
                f"{fmt(figures['echo_p50_ms'], ' ms')} / {fmt(figures['echo_p99_ms'], ' ms')}",
            ),
            ("    bare web CPU per request", f"{figures['echo_web_cpu_ms_per_request']} ms"),
            (
                "    ratio intake / bare",
                f"{figures['throughput_ratio']} (median of the rounds' ratios)   target >= 0.5",
            ),
            *(
                (
                    f"peak RSS {name}",
                    f"{values['peak_total_rss_mb']} MB total, {values['peak_process_rss_mb']} MB largest process",
                )
                for name, values in memory.items()
                if name == "web"
            ),
        ],
    )
    profile = results.get("profile")
    if profile and profile.get("samples"):
        print("\n  where the web workers' CPU goes (py-spy --gil, inclusive share of samples holding the GIL):")
        for area, share in profile["inclusive_by_area"].items():
            print(f"    {share * 100:5.1f}%  {area}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_web_arguments(parser)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per maximum-throughput run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="maximum-throughput rounds (intake then bare endpoint); medians reported"
    )
    parser.add_argument("--latency-duration", type=float, default=20.0, help="seconds per paced run")
    parser.add_argument("--rate", type=float, default=300.0, help="events/s of the paced run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python closed-loop generator")
    parser.add_argument("--profile", action="store_true", help="sample the web workers with py-spy during (a)")
    parser.add_argument("--profile-dir", help="keep py-spy's raw stacks there (default: a temporary directory)")
    parser.add_argument("--log-level", default="INFO", help="the server's LOG_LEVEL (production default INFO)")
