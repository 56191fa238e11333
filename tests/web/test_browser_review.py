"""An editor reviews and approves today's edition in a real browser (headless Chromium): the
digest that goes out carries every change, the page's history lists them, and axe-core finds
no serious or critical violation on the review page."""

from __future__ import annotations

import datetime as dt
import email
import time
from email import policy
from pathlib import Path
from typing import Any

import pytest

from digest.config import Settings
from digest.service import catalog
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import Article, utcnow
from digest.web import create_app
from tests.web.browser import chromium_page, live_server, require_browser

PASSWORD = "editor-password-for-tests"


def _serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations of the page."""
    axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")
    results = axe_playwright.Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _site(db: Database) -> tuple[list[int], str]:
    """A list reviewed before it goes ("hold"), due since 00:00, two readers and four
    stories of today; their ids and today's date."""
    now = utcnow()
    midnight = dt.datetime.combine(now.date(), dt.time())
    with db.session() as session:
        catalog.add_section(session, "national", "National")
        mailing_list, _ = catalog.add_list(
            session, "daily", "Daily", ["national"], send_at="00:00", review=True,
            unreviewed="hold",
        )  # fmt: skip
        mailing_list.created_at = now - dt.timedelta(days=2)
        for address in ("ann@example.com", "bob@example.com"):
            catalog.subscribe(session, mailing_list, address)
        section = catalog.get_section(session, "national")
        stories = [
            Article(url=f"https://n.example/{i}", section_id=section.id,
                    headline=f"Headline number {i}", teaser=f"Feed teaser {i}.",
                    published_at=max(midnight, now - dt.timedelta(minutes=40 - i)))
            for i in range(4)
        ]  # fmt: skip
        session.add_all(stories)
        session.commit()
        return [s.id for s in stories], now.date().isoformat()


def _sent(outbox: Path, count: int) -> list[email.message.EmailMessage]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = sorted(outbox.rglob("*.eml"))
        if len(files) >= count:
            return [
                email.message_from_bytes(f.read_bytes(), policy=policy.default)  # type: ignore[misc]
                for f in files
            ]
        time.sleep(0.2)
    raise AssertionError(f"{count} messages not in {outbox} after 60 s")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_editor_reviews_and_approves_todays_edition(db: Database, settings: Settings) -> None:
    """Sign in, open today's held edition from the overview, drop a story, pin one, edit a
    teaser, write a note, approve: both readers get the digest with every change, the
    history shows each with who made it, and axe finds nothing serious on the page."""
    require_browser()
    ids, today = _site(db)
    settings = settings.replace(operator_password=PASSWORD)
    Digest(settings, db=db).send_due()

    def app_for(base_url: str) -> object:
        return create_app(settings.replace(base_url=base_url))

    with live_server(app_for) as base_url, chromium_page() as page:
        page.goto(f"{base_url}/dashboard/login")
        page.fill("input[type=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base_url}/dashboard/")
        assert "awaiting review" in page.locator("#list-daily").inner_text()
        page.locator("#list-daily").get_by_role("link", name="Review", exact=True).click()
        assert page.get_by_role("heading", level=1).inner_text() == f"Review: Daily, {today}"
        assert _serious(page) == []

        page.locator(f"button[data-action=drop][data-story='{ids[3]}']").click()
        page.locator(f"button[data-action=pin][data-story='{ids[0]}']").click()
        page.fill(f"#teaser-{ids[1]}", "The editor's own <teaser>")
        page.locator(f"button[data-action=teaser][data-story='{ids[1]}']").click()
        page.fill("#note", "Good morning: three stories & a note")
        page.locator("button[data-action=note]").click()
        headlines = page.locator(".story h3 a").all_inner_texts()
        assert headlines == ["Headline number 0", "Headline number 2", "Headline number 1"]
        assert _serious(page) == []
        page.locator("button[data-action=approve]").click()
        history = page.locator("#review-history").inner_text()
        for words in ("dropped story", "pinned story", "teaser of story", "note:", "approved",
                      "released"):  # fmt: skip
            assert words in history
        assert history.count("operator") >= 5
        assert "approved by operator" in page.locator("#review-state").inner_text()

    messages = _sent(Path(settings.outbox_dir), 2)
    for message in messages:
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Headline number 0" in message["Subject"]
        # Headlines as the stories show them (the title and preheader name some too).
        for part, (before, after) in (
            (html, (">", "</a>")),
            (text.replace("\r\n", "\n"), ("\n", "\n")),
        ):
            assert "Headline number 3" not in part
            place = [part.index(f"{before}Headline number {i}{after}") for i in (0, 2, 1)]
            assert part.index("three stories") < place[0] < place[1] < place[2]
            assert "Feed teaser 1." not in part
        assert "Good morning: three stories &amp; a note" in html
        assert "The editor&#39;s own &lt;teaser&gt;" in html or "own &lt;teaser&gt;" in html
        assert "The editor's own <teaser>" in text
    assert sorted(m["To"] for m in messages) == ["ann@example.com", "bob@example.com"]
