"""``python -m bench metrics``: CPU cost of recording metrics on the hot paths, per call.

Runs each recorder many times in a fresh Python (the metrics mode is chosen at import): with
``PROMETHEUS_MULTIPROC_DIR`` (multiprocess mode, as gunicorn and the workers run: a lock, a pid check and a
write into a memory-mapped file per value) and without it (one process). Reported: CPU microseconds per call
of ``intake_request_observe`` (one counter and one histogram: what every intake request costs),
``handler_run_observe`` (per event handled) and ``delivery_attempts_observe`` for one attempt. Needs no
database: recording does not touch one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import log, machine_info, print_table, write_results

ROOT = Path(__file__).resolve().parent.parent

MEASURE = """
import json, sys, time
import django
django.setup()
from events.metrics import handler_run_observe, intake_request_observe
from webhooks.metrics import delivery_attempts_observe
from webhooks.models import DeliveryAttempt, WebhookDelivery

calls = int(sys.argv[1])
delivery, attempt = WebhookDelivery(step="subscriber"), DeliveryAttempt(outcome="succeeded", duration_ms=12)
recorders = {
    "intake_request_observe": lambda: intake_request_observe(status=202, data=None, seconds=0.0031),
    "handler_run_observe": lambda: handler_run_observe(detail_type="X", outcome="succeeded", seconds=0.2),
    "delivery_attempts_observe": lambda: delivery_attempts_observe([(delivery, attempt)]),
}
result = {}
for name, record in recorders.items():
    for _ in range(1000):
        record()
    best = None
    for _ in range(5):
        started = time.process_time()
        for _ in range(calls):
            record()
        spent = (time.process_time() - started) / calls * 1e6
        best = spent if best is None else min(best, spent)
    result[name] = round(best, 2)
print(json.dumps(result))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=50_000, help="calls per timed round (best of 5 rounds)")


def _measure(calls: int, multiprocess_dir: str | None) -> dict[str, float]:
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env["DJANGO_SETTINGS_MODULE"] = "orchestrator.settings.test"
    if multiprocess_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir
    output = subprocess.run(
        [sys.executable, "-c", MEASURE, str(calls)], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> None:
    log(f"metrics: {args.calls} calls per round, best of 5, multiprocess and single-process mode")
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as folder:
        multiprocess = _measure(args.calls, folder)
    single = _measure(args.calls, None)
    rows = [(name, f"{multiprocess[name]:.2f} µs (one process: {single[name]:.2f} µs)") for name in multiprocess]
    print_table("metrics: CPU per call, multiprocess mode", rows)
    write_results("metrics", {"machine": machine_info(), "multiprocess_us": multiprocess, "single_process_us": single})
