"""A real Prometheus server for tests: Debian's ``prometheus`` on a free loopback port, a generated config."""

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from devstack.processes import free_port, wait_for_port

BINARY = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
MISSING = "Debian's prometheus package is not installed (.ci/run installs it: apt-get install prometheus)"
ALERTS = Path(settings.BASE_DIR) / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = Path(settings.BASE_DIR) / "deploy" / "grafana" / "orchestrator.json"


def dashboard_expressions() -> list[str]:
    """Every query of the Grafana dashboard's panels."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


class PrometheusServer:
    """``prometheus`` scraping ``scrape_configs`` every second, evaluating ``rule_files``; ``query`` its API."""

    def __init__(self, *, scrape_configs: list[dict[str, Any]], rule_files: list[Path], log_dir: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="orchestrator-prometheus-"))
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": scrape_configs,
        }
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (log_dir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=60, process=self.process)

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=30) as response:  # a loaded machine can be slow
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> dict[frozenset, float]:
        """An instant query's series: labels -> value."""
        return {
            frozenset(series["metric"].items()): float(series["value"][1])
            for series in self.api("query", query=expression)["result"]
        }

    def scalar(self, expression: str) -> float | None:
        """The value of a query that yields one series (None if it yields none)."""
        result = list(self.query(expression).values())
        assert len(result) <= 1, result
        return result[0] if result else None

    def wait_for(self, expectations: dict[str, float], *, timeout: float = 60.0) -> dict[str, float | None]:
        """Poll until every expression's value is the expected one; the last values seen."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {expression: self.scalar(expression) for expression in expectations}
            if seen == expectations or time.monotonic() > deadline:
                return seen
            time.sleep(0.5)

    def close(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PrometheusServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
