#!/usr/bin/env python3
"""Demo callback receiver: plays every downstream system of the deployment chain on one port.

Standard library only (``http.server``); signatures are checked with ``webhooks/verify.py``, the same
helper downstream teams copy. It answers like the real services (bootstraps and the control-plane
webhook 204, the subscriber 200) and logs one line per call, never a secret or a body.

Paths, under ``DEMO_RECEIVER_URL`` (default ``http://127.0.0.1:8100``), as ``demo/build.sh`` exports them
(with or without a ``/<tenant-key>`` prefix, which the build script adds):

    POST {base}/webhook                          control plane (API_ENDPOINT): x-signature over
                                                 body + context + x-timestamp; type must be 0 (else 422)
    POST {base}[/<key>]/bootstrap                app-plane bootstrap, derived by the orchestrator from
                                                 USER_CALLBACK_ENDPOINT={base}[/<key>]/user-callback;
                                                 x-signature over body + x-timestamp
    POST {base}[/<key>]/feature-service/bootstrap   feature service (APP_PLANE_ENDPOINT_FEATURE_SERVICE=
                                                 {base}[/<key>]/feature-service); body + x-timestamp
    POST {base}/subscriber                       a Standard Webhooks subscriber (webhook-id/-timestamp/
                                                 -signature) with the secret DEMO_SUBSCRIBER_SECRET
    GET  {base}[/<key>]/app                      the tenant's app plane (APP_PLANE_REDIRECT_URL): a page
    GET  {base}/calls                            the last calls received, as JSON (no bodies, no secrets)

Environment:
    DEMO_RECEIVER_PORT      port (default 8100), bound to DEMO_RECEIVER_HOST (default 127.0.0.1)
    DEMO_CALLBACK_SECRET    the build's ``secret`` (the control plane generated it and put it in the
    DEMO_CALLBACK_CONTEXT   provisioning request with ``context``); default: the values of the sample
                            TENANT_PROVISIONING event (events/tests/samples), which ``send_sample_event`` sends
    DEMO_SUBSCRIBER_SECRET  whsec_... secret of the subscriber endpoint (``manage.py webhooks_demo_subscriber``
                            registers {base}/subscriber with it)
    DEMO_FAIL_PATHS         comma-separated path suffixes answered 503 (to watch retries), e.g. "/webhook"
"""

import collections
import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webhooks.verify import ReplayGuard, VerificationError, verify_original, verify_standard  # noqa: E402

SAMPLE = ROOT / "events" / "tests" / "samples" / "tenant_provisioning.json"
TOLERANCE_SECONDS = 300
MAX_BODY = 1024 * 1024

logger = logging.getLogger("demo.receiver")


def sample_override(name: str) -> str:
    try:
        detail = json.loads(SAMPLE.read_text())["detail"]
        return str(detail["builderConfig"]["config"]["environmentOverride"].get(name, ""))
    except (OSError, ValueError, KeyError, TypeError):
        return ""


class Config:
    def __init__(self, environ: dict[str, str]) -> None:
        self.host = environ.get("DEMO_RECEIVER_HOST", "127.0.0.1")
        self.port = int(environ.get("DEMO_RECEIVER_PORT", "8100"))
        self.callback_secret = environ.get("DEMO_CALLBACK_SECRET") or sample_override("secret")
        self.callback_context = environ.get("DEMO_CALLBACK_CONTEXT") or sample_override("context")
        self.subscriber_secrets = [s for s in environ.get("DEMO_SUBSCRIBER_SECRET", "").split() if s]
        self.fail_paths = [p.strip() for p in environ.get("DEMO_FAIL_PATHS", "").split(",") if p.strip()]


def route(path: str) -> str:
    """Which role a path plays: webhook, feature-service, app-plane, subscriber (or "")."""
    path = path.split("?", 1)[0].rstrip("/")
    if path.endswith("/feature-service/bootstrap"):
        return "feature-service"
    if path.endswith("/bootstrap"):
        return "app-plane"
    if path == "/webhook" or path.endswith("/webhook"):
        return "webhook"
    if path == "/subscriber" or path.startswith("/subscriber/"):
        return "subscriber"
    return ""


class DemoReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: Config) -> None:
        self.config = config
        self.replays = ReplayGuard(window=2 * TOLERANCE_SECONDS)
        self.calls: collections.deque[dict] = collections.deque(maxlen=200)
        self.lock = threading.Lock()
        super().__init__((config.host, config.port), Handler)

    def record(self, call: dict) -> None:
        with self.lock:
            self.calls.append(call)


class Handler(BaseHTTPRequestHandler):
    server: DemoReceiver
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/calls":
            with self.server.lock:
                calls = list(self.server.calls)
            self._answer(200, json.dumps(calls, indent=2).encode())
        elif path.endswith("/app") or path == "":
            page = b"<!doctype html><title>App plane</title><h1>Tenant app plane (demo)</h1>"
            self._answer(200, page, "text/html; charset=utf-8")
        else:
            self._answer(404, b'{"error":"not found"}')

    def do_POST(self) -> None:
        config = self.server.config
        role = route(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413, b'{"error":"too large"}')
            return
        body = self.rfile.read(length)
        headers = {name: value for name, value in self.headers.items()}
        call = {"at": time.strftime("%H:%M:%S"), "path": self.path, "role": role or "unknown", "bytes": len(body)}
        try:
            status, note = self._handle(role, body, headers, config)
        except VerificationError as error:
            status, note = 401, f"signature refused: {error}"
        call.update(status=status, note=note)
        self.server.record(call)
        logger.info("%s %s -> %s (%s)", role or "?", self.path, status, note)
        if status == 401:
            self._answer(401, json.dumps({"error": note}).encode())
        elif status in (200, 422, 503, 404):
            self._answer(status, json.dumps({"status": status, "note": note}).encode())
        else:
            self._answer(status)

    def _handle(self, role: str, body: bytes, headers: dict[str, str], config: Config) -> tuple[int, str]:
        if not role:
            return 404, "no such path"
        if any(self.path.rstrip("/").endswith(suffix) for suffix in config.fail_paths):
            return 503, "DEMO_FAIL_PATHS: failing on purpose"
        guard = self.server.replays
        if role == "subscriber":
            if not config.subscriber_secrets:
                raise VerificationError("DEMO_SUBSCRIBER_SECRET is not set")
            payload = verify_standard(body=body, headers=headers, secrets=config.subscriber_secrets, replay_guard=guard)
            tenant = (payload.get("data") or {}).get("tenant") or {}
            return 200, f"{payload.get('type')} for tenant {tenant.get('key') or tenant.get('id')}"
        context = config.callback_context if role == "webhook" else None
        verify_original(body=body, headers=headers, secret=config.callback_secret, context=context, replay_guard=guard)
        payload = json.loads(body)
        if role == "webhook":
            if payload.get("type") != 0:
                return 422, "Invalid type of webhook"
            status = (payload.get("data") or {}).get("status")
            return 204, f"tenant {payload.get('initiatorId')}: resources {'provisioned' if status == 1 else 'FAILED'}"
        tenant = payload.get("tenant") or {}
        return 204, f"{role} bootstrap for tenant {tenant.get('key') or tenant.get('id')}"

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per call is logged in do_POST; the default access log would repeat it


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = Config(dict(os.environ))
    server = DemoReceiver(config)
    logger.info(
        "demo receiver on http://%s:%s (callback secret %s, subscriber secret %s)",
        config.host,
        server.server_address[1],
        "set" if config.callback_secret else "MISSING",
        "set" if config.subscriber_secrets else "MISSING",
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
