"""The management pages in a real browser (headless Chromium, one browser for the module):
an operator signs in with a user name, visits every page with axe-core finding no serious or
critical violation, adds a section, a feed source and a list through the forms, and goes
through the send confirmation."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.config import Settings
from digest.store.db import Database
from digest.web import create_app
from tests.web.browser import chromium_page, live_server, require_browser

FEEDS = Path(__file__).resolve().parent.parent / "data" / "feeds"
PASSWORD = "browser-operator-pw"


def _serious(page: Any) -> list[str]:
    axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")
    results = axe_playwright.Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture
def feed_url() -> Iterator[str]:
    """A feed served over http on loopback."""
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(FEEDS))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    name = sorted(p.name for p in FEEDS.glob("*.xml"))[0]
    yield f"http://127.0.0.1:{server.server_port}/{name}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_operator_sets_up_a_site_in_the_browser(
    db: Database, settings: Settings, feed_url: str
) -> None:
    """Sign in as a named operator; add a section, a source (the feed is checked) and a list;
    every management page passes axe-core; the send button asks for confirmation first."""
    require_browser()

    def app_for(base_url: str) -> object:
        app = create_app(settings.replace(base_url=base_url))
        with app.app_context():
            from digest.web import context

            context().core.users.add("olga", PASSWORD, "operator")
        return app

    with live_server(app_for) as base, chromium_page() as page:
        page.goto(f"{base}/dashboard/")
        assert _serious(page) == []
        page.get_by_label("User name").fill("olga")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("text=Today's editions")
        assert _serious(page) == []

        page.get_by_role("link", name="Sections").click()
        page.get_by_label("Slug").fill("national")
        page.get_by_label("Name", exact=True).fill("National")
        page.get_by_role("button", name="Add section").click()
        page.wait_for_selector("text=Section National (national) added.")
        assert _serious(page) == []

        page.get_by_role("link", name="Sources").click()
        assert page.locator("text=No sources yet").is_visible()
        page.get_by_label("Feed URL").fill(feed_url)
        page.get_by_label("Allow a loopback or private address").check()
        page.get_by_role("button", name="Check and add").click()
        page.wait_for_selector("#content table")
        assert "added in National" in page.content()
        assert _serious(page) == []

        page.get_by_role("link", name="Lists").click()
        page.get_by_label("Slug").fill("morning")
        page.get_by_label("Name", exact=True).fill("Morning")
        page.get_by_label("Sections, in order").fill("national")
        page.get_by_role("button", name="Add list").click()
        page.wait_for_selector("text=List Morning added.")
        assert _serious(page) == []

        for link in ("Lists", "Subscribers", "Suppressions"):
            page.get_by_role("link", name=link, exact=True).click()
            page.wait_for_load_state()
            assert _serious(page) == [], link

        page.goto(f"{base}/dashboard/subscribers")
        page.get_by_label("Email address").fill("ann@example.com")
        page.get_by_role("button", name="Add subscriber").click()
        page.wait_for_selector("text=ann@example.com subscribed to morning")
        assert _serious(page) == []

        page.get_by_role("link", name="Today").click()
        page.get_by_role("link", name="Send Morning now").click()
        page.wait_for_selector("text=Send “Morning” to 1 subscriber?")
        assert _serious(page) == []
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement !== document.body")
