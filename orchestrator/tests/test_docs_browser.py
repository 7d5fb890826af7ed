"""The API docs in a real browser that can reach nothing but 127.0.0.1: Swagger UI (``/docs``) and ReDoc
(``/api/redoc/``) load every script, style and font from our own static files (drf-spectacular-sidecar)
and list every operation of the schema. Screenshots go to the test artifacts folder."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from devstack.browser import loopback_only

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def operations() -> list[tuple[str, str, str]]:
    """(method, path, operationId) of every operation the schema documents."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method, path, operation["operationId"])
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


@pytest.fixture
def offline_page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    refused = loopback_only(context)
    page = context.new_page()
    failed = []
    # A request the page's Content-Security-Policy stops never leaves the browser (ReDoc's menu logo, which
    # it hides); any other failure is an asset the page needed and did not get.
    page.on(
        "requestfailed", lambda request: request.failure == "csp" or failed.append(f"{request.url} ({request.failure})")
    )
    page.on("pageerror", lambda error: failed.append(f"script error: {error}"))
    yield page, refused, failed
    context.close()


def test_swagger_ui_lists_every_operation_with_only_loopback_requests(
    offline_page, live_server, operations, artifacts_dir
):
    page, refused, failed = offline_page

    page.goto(f"{live_server.url}/docs", wait_until="networkidle")

    blocks = page.locator("#swagger-ui .opblock")
    expect(blocks).to_have_count(len(operations), timeout=20_000)
    for method, path, _operation_id in operations:
        block = page.locator(f"#swagger-ui .opblock-{method}:has(.opblock-summary-path[data-path='{path}'])")
        expect(block).to_have_count(1)
    expect(page.locator("#swagger-ui .info .title")).to_contain_text("Orchestrator API")
    page.screenshot(path=str(artifacts_dir / "docs-swagger-ui.png"))
    assert refused == []
    assert failed == []


def test_redoc_lists_every_operation_with_only_loopback_requests(offline_page, live_server, operations, artifacts_dir):
    page, refused, failed = offline_page

    page.goto(f"{live_server.url}/api/redoc/", wait_until="networkidle")

    sections = page.locator("[data-section-id^='operation/']")
    expect(sections).to_have_count(len(operations), timeout=20_000)
    for _method, _path, operation_id in operations:
        expect(page.locator(f"[data-section-id='operation/{operation_id}']")).to_have_count(1)
        expect(page.locator(f"li[data-item-id$='/operation/{operation_id}']")).to_have_count(1)
    page.screenshot(path=str(artifacts_dir / "docs-redoc.png"))
    assert refused == []
    assert failed == []
