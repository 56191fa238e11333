"""Helpers for real-browser tests: a live server for an app, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> Any:
    """Playwright's sync API, or a skip (a failure where CI demands a browser)."""
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
    missing = None if sync_api else "playwright is not installed"
    if not shutil.which(CHROMIUM):
        missing = f"{CHROMIUM} is not installed (Debian package chromium)"
    if missing:
        if os.environ.get("DIGEST_REQUIRE_CHROMIUM"):
            pytest.fail(missing)
        pytest.skip(missing)
    return sync_api


@contextmanager
def live_server(make_app: Callable[[str], Any]) -> Iterator[str]:
    """Serve the app ``make_app(base_url)`` on a free loopback port; yields the base URL."""
    holder: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start))
    base_url = f"http://127.0.0.1:{server.server_port}"
    holder["app"] = make_app(base_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base_url
    finally:
        server.shutdown()
        thread.join(timeout=5)


@contextmanager
def chromium_page() -> Iterator[Any]:
    sync_api = require_browser()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
