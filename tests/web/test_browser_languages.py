"""An Urdu list's subscribe page in a real browser (headless Chromium): laid out right to
left, and with no accessibility violation axe-core finds."""

from __future__ import annotations

from typing import Any

import pytest

from digest.config import Settings
from digest.service import catalog
from digest.store.db import Database
from digest.web import create_app
from tests.web.browser import chromium_page, live_server, require_browser


def _box(page: Any, selector: str) -> dict[str, float]:
    """Where the text of the first element matching ``selector`` is drawn (not its box, which
    for a block is the whole line)."""
    found: dict[str, float] = page.evaluate(
        """selector => {
            const range = document.createRange();
            range.selectNodeContents(document.querySelector(selector));
            const r = range.getBoundingClientRect();
            return {left: r.left, right: r.right};
        }""",
        selector,
    )
    return found


def _axe(page: Any) -> list[str]:
    """axe-core's violations of the page (every rule, every impact)."""
    axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")
    results = axe_playwright.Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_urdu_subscribe_page_is_right_to_left_and_accessible(
    db: Database, settings: Settings
) -> None:
    """The form of an Urdu list starts on the right: the email field's label sits at the
    right edge of its field, each section's checkbox right of its name; and axe-core finds
    no violation in it (nor in the English form, for comparison)."""
    require_browser()
    with db.session() as session:
        catalog.add_section(session, "national", "قومی")
        catalog.add_section(session, "sports", "Sports")
        catalog.add_list(session, "akhbar", "روزنامہ", ["national", "sports"], language="ur")
        catalog.add_list(session, "daily", "Daily", ["national", "sports"])

    def app_for(base_url: str) -> object:
        return create_app(settings.replace(base_url=base_url))

    with live_server(app_for) as base_url, chromium_page() as page:
        page.goto(f"{base_url}/subscribe/akhbar")
        assert page.evaluate("document.documentElement.dir") == "rtl"
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        field = page.locator("#email").bounding_box()
        label = _box(page, "label[for=email]")
        assert abs(label["right"] - (field["x"] + field["width"])) < 2
        assert label["left"] > field["x"] + field["width"] / 2
        for name in ("قومی", "Sports"):
            row = page.locator("label.check", has_text=name)
            box = row.locator("input").bounding_box()
            text = row.locator("span").bounding_box()
            assert box["x"] > text["x"] + text["width"], name
        assert page.get_by_role("button", name="سبسکرائب کریں").is_visible()
        assert _axe(page) == []

        page.goto(f"{base_url}/subscribe/daily")
        assert page.evaluate("getComputedStyle(document.body).direction") == "ltr"
        field = page.locator("#email").bounding_box()
        assert abs(_box(page, "label[for=email]")["left"] - field["x"]) < 2
        assert _axe(page) == []
