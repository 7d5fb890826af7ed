"""The alerting rules (deploy/prometheus) and the Grafana dashboard (deploy/grafana) use only metrics the
orchestrator serves; the rules pass promtool's check and their unit tests."""

import json
import re
import subprocess

import pytest
import yaml

from orchestrator.tests.scraping import scrape
from tests.observability.prometheus import ALERTS, DASHBOARD, MISSING, PROMTOOL, dashboard_expressions

ALERT_TESTS = ALERTS.parent / "alerts_test.yml"
SERIES_SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def alert_expressions() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def metric_names(expressions: list[str]) -> set[str]:
    names = set()
    for name in re.findall(r"\borchestrator_[a-z_]+", " ".join(expressions)):
        for suffix in SERIES_SUFFIXES:
            if name.endswith(suffix):
                name = name.removesuffix(suffix)
                break
        names.add(name)
    return names


@pytest.mark.django_db
@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_used_is_one_the_orchestrator_serves(client, settings, source):
    expressions = alert_expressions() if source == "alerts" else dashboard_expressions()
    served = set(scrape(client, settings).families)

    used = metric_names(expressions)

    assert used, "no orchestrator metric found in the expressions"
    assert used <= served, f"{source} use metrics nobody serves: {sorted(used - served)}"


def test_the_dashboard_shows_every_metric_the_alerts_use():
    assert metric_names(alert_expressions()) <= metric_names(dashboard_expressions())


def test_dashboard_panels_have_unique_ids_and_read_the_chosen_prometheus():
    panels = dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    assert [variable["type"] for variable in dashboard()["templating"]["list"]] == ["datasource"]
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


@pytest.mark.skipif(PROMTOOL is None, reason=MISSING)
@pytest.mark.parametrize(("command", "path"), [("check", ALERTS), ("test", ALERT_TESTS)], ids=["check", "unit-tests"])
def test_alerting_rules_pass_promtool(command, path):
    result = subprocess.run(
        [PROMTOOL, command, "rules", str(path)], capture_output=True, text=True, timeout=60, cwd=path.parent
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
