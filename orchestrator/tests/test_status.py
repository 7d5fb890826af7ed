"""``/orchestrator/status`` (dependency checks, shared per process, details for staff only) and the probes."""

import re
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

from devstack.stack import TcpProxy
from orchestrator.health import status_cache_clear

pytestmark = pytest.mark.django_db

DEPENDENCIES = {"database", "broker", "dynamodb", "eventbridge", "codebuild"}
# One round of checks: the AWS operations it calls, once each.
ONE_ROUND = Counter(
    {"DynamoDB_20120810.DescribeTable": 1, "AWSEvents.DescribeEventBus": 1, "CodeBuild_20161006.ListProjects": 1}
)


@pytest.fixture(autouse=True)
def _fresh_status():
    status_cache_clear()
    yield
    status_cache_clear()


class AwsRequests:
    """The AWS endpoints behind recording proxies: counts the requests that reach them, by operation."""

    def __init__(self, proxies: list[TcpProxy]) -> None:
        self.proxies = proxies

    def operations(self) -> Counter:
        text = "\n".join(proxy.sent_text() for proxy in self.proxies)
        return Counter(re.findall(r"^x-amz-target: *(\S+)\r?$", text, flags=re.IGNORECASE | re.MULTILINE))

    def in_flight(self) -> int:
        return sum(proxy.held_connections for proxy in self.proxies)


@pytest.fixture
def aws_requests(aws, settings):
    """Every AWS endpoint the checks call, reached through a proxy on 127.0.0.1 that records what is sent."""
    proxies: dict[str, TcpProxy] = {}
    endpoints = dict(settings.AWS_SERVICE_ENDPOINT_URLS)
    for service in ("dynamodb", "events", "codebuild"):
        url = urlsplit(endpoints[service])
        if url.netloc not in proxies:
            proxies[url.netloc] = TcpProxy(url.hostname, url.port, record=True)
        endpoints[service] = proxies[url.netloc].url
    settings.AWS_SERVICE_ENDPOINT_URLS = endpoints
    yield AwsRequests(list(proxies.values()))
    for proxy in proxies.values():
        proxy.close()


def staff_member():
    return get_user_model().objects.create_user(username=f"staff-{uuid.uuid4().hex[:8]}", is_staff=True)


def staff_client() -> Client:
    client = Client()
    client.force_login(staff_member())
    return client


def test_status_reports_every_dependency_ok(client, aws):
    response = client.get("/orchestrator/status")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == DEPENDENCIES
    assert all(check == {"status": "ok"} for check in body["checks"].values())


def test_anonymous_callers_learn_which_dependency_failed_but_no_details(client, aws):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/orchestrator/status")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"] == {"status": "failed"}
    assert body["checks"]["database"] == {"status": "ok"}
    assert "127.0.0.1" not in response.content.decode()
    assert "latency" not in response.content.decode()


def test_staff_see_latencies_check_times_and_errors(aws):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = staff_client().get("/orchestrator/status")

    assert response.status_code == 503
    checks = response.json()["checks"]
    broker = checks["broker"]
    assert broker["status"] == "failed"
    assert broker["error"].startswith("ConnectionError: ")
    assert "127.0.0.1:1" in broker["error"]  # where it tried: for staff, this is the point
    assert broker["latency_ms"] >= 0
    database = checks["database"]
    assert set(database) == {"status", "latency_ms", "checked_at"}
    assert database["status"] == "ok"


def test_staff_with_a_token_see_details_too(aws):
    token = Token.objects.create(user=staff_member())

    response = Client(HTTP_AUTHORIZATION=f"Token {token.key}").get("/orchestrator/status")

    assert response.status_code == 200
    assert "latency_ms" in response.json()["checks"]["dynamodb"]


def test_status_reports_missing_aws_resources(live_services):
    from devstack.pytest_plugin import reset_moto
    from tenants.bootstrap import delete_tables

    reset_moto(live_services["moto_url"])
    delete_tables()  # also when DynamoDB is served by DynamoDB Local rather than moto
    response = staff_client().get("/orchestrator/status")

    assert response.status_code == 503
    dynamodb = response.json()["checks"]["dynamodb"]
    assert dynamodb["status"] == "failed"
    assert dynamodb["error"].startswith("ResourceNotFoundException: ")


def test_anonymous_calls_within_the_cache_window_share_one_round(client, aws_requests, settings):
    settings.STATUS_CACHE_SECONDS = 300

    statuses = [client.get("/orchestrator/status").status_code for _ in range(20)]
    staff = staff_client().get("/orchestrator/status")

    # then twenty anonymous calls and a staff call made one AWS request per dependency, and the staff call
    # read that same round
    assert statuses == [200] * 20
    assert aws_requests.operations() == ONE_ROUND
    assert staff.json()["checked_at"] == client.get("/orchestrator/status").json()["checked_at"]


def test_concurrent_callers_wait_for_the_round_in_flight(aws_requests, settings):
    # given AWS holding its answers, so the first round stays in flight
    settings.STATUS_CACHE_SECONDS = 300
    for proxy in aws_requests.proxies:
        proxy.hold_responses()
    answers: list[int] = []

    def call() -> None:
        try:
            answers.append(Client().get("/orchestrator/status").status_code)
        finally:
            connection.close()  # the thread's own database connection

    # when 20 callers ask at the same time
    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while aws_requests.in_flight() < len(ONE_ROUND) and time.monotonic() < deadline:
        time.sleep(0.05)
    in_flight, answered_early = aws_requests.in_flight(), list(answers)
    for proxy in aws_requests.proxies:
        proxy.release()
    for thread in threads:
        thread.join(timeout=60)

    # then one round was sent while every caller waited, and all of them got its result
    assert in_flight == len(ONE_ROUND)
    assert answered_early == []
    assert answers == [200] * 20
    assert aws_requests.operations() == ONE_ROUND


def test_without_a_cache_window_every_call_checks(client, aws_requests, settings):
    settings.STATUS_CACHE_SECONDS = 0

    for _ in range(3):
        assert client.get("/orchestrator/status").status_code == 200

    assert aws_requests.operations() == Counter({operation: 3 for operation in ONE_ROUND})


# --- probes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "queries"), [("/orchestrator/live", 0), ("/orchestrator/ready", 1)])
@override_settings(ALLOWED_HOSTS=["orchestrator.example"], SECURE_SSL_REDIRECT=True)
def test_probes_answer_any_host_over_http_and_call_no_aws(path, queries, aws_requests, django_assert_num_queries):
    # given production-like host checks and HTTPS redirect, and a probe addressing the container by IP
    client = Client(HTTP_HOST="10.0.3.7:8000")

    # then liveness runs no query, readiness one (SELECT 1), and neither calls AWS
    with django_assert_num_queries(queries):
        probe = client.get(path)

    assert probe.status_code == 200
    assert probe.json() == {"status": "ok"}
    assert aws_requests.operations() == Counter()
    # the same request to any other path meets the host check
    assert client.get("/orchestrator/status").status_code == 400


def test_probes_answer_only_get_and_head(client):
    assert client.head("/orchestrator/live").status_code == 200
    refused = client.post("/orchestrator/live")
    assert refused.status_code == 405
    assert refused["Allow"] == "GET, HEAD"
