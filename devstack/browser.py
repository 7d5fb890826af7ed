"""Headless Chromium for browser tests: Debian's package driven by Playwright, never a browser download.

The browser resolves no host name but ``127.0.0.1`` and ``localhost`` (``--host-resolver-rules``), and
``loopback_only`` makes a page's context refuse (and record) every request to another host, so a page that
still needs a CDN or web fonts shows up as a failed test instead of a slow one.
"""

import os
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


def missing_reason() -> str:
    """Why browser tests cannot run here ("" when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; no browser download needed)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    return ""


def loopback_only(context: Any) -> list[str]:
    """Abort every request of ``context`` to a host other than 127.0.0.1/localhost; the list fills with
    the URLs refused (data: and blob: URLs never leave the browser and pass)."""
    refused: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOOPBACK_HOSTS:
            route.continue_()
        else:
            refused.append(url)
            route.abort("addressunreachable")

    context.route("**/*", guard)
    return refused
