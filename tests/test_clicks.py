"""Tracked links: sent over real SMTP, followed through the web app, counted on both databases;
scanners told from readers, forged or bent tokens refused, and nothing tracked when it is off."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from digest.config import Settings
from digest.edition.build import build_edition
from digest.feedback import clicks
from digest.mail.tracking import CLICK, OPEN, LinkSigner
from digest.render.renderer import HTML_BUDGET
from digest.send.mailer import EditionMailer
from digest.service import catalog
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import Article, Click, Delivery, utcnow
from digest.web import create_app
from tests.conftest import SmtpSink
from tests.render import cases, htmlcheck

DAY = dt.date(2026, 11, 24)
URLS = ["https://n.example/0", "https://n.example/1", "https://s.example/2"]
TRACKED = re.compile(r"https://news\.example/c/[0-9.]+[A-Za-z0-9_-]+")


def site(db: Database, settings: Settings, readers: int = 2) -> int:
    """A list 'daily' with two sections and three articles on DAY, ``readers`` subscribers, and
    its edition built; returns the edition id."""
    with db.session() as session:
        national, _ = catalog.add_section(session, "national", "National")
        sports, _ = catalog.add_section(session, "sports", "Sports")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["national", "sports"])
        for i, (url, section) in enumerate(zip(URLS, [national, national, sports], strict=True)):
            session.add(
                Article(
                    url=url,
                    guid=f"g{i}",
                    section_id=section.id,
                    headline=f"Story {i} in {section.name}",
                    teaser="A teaser.",
                    published_at=dt.datetime(2026, 11, 24, 9 + i),
                )
            )
        for i in range(readers):
            catalog.subscribe(session, mailing_list, f"reader{i}@example.com", f"Reader {i}")
        session.flush()
        edition, _ = build_edition(session, settings, mailing_list, DAY)
        return edition.id


def send(db: Database, settings: Settings, edition_id: int, *, sent_ago: float = 3600) -> None:
    """Send the edition for real, then date its deliveries ``sent_ago`` seconds back (a reader
    clicks minutes or hours after the message arrived)."""
    Digest(settings, db=db).send_all(edition_id)
    with db.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.edition_id == edition_id)
            .values(sent_at=utcnow() - dt.timedelta(seconds=sent_ago))
        )


def parts(received: bytes) -> tuple[str, str]:
    msg = message_from_bytes(received, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    html = msg.get_body(("html",))
    text = msg.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def click_rows(db: Database) -> list[tuple[int | None, bool]]:
    with db.session() as session:
        return [
            (row.article_id, row.is_scanner)
            for row in session.scalars(select(Click).order_by(Click.id))
        ]


@pytest.fixture
def tracked(settings: Settings, smtp_server: SmtpSink) -> Settings:
    return settings.replace(smtp_url=smtp_server.url, track_clicks=True, track_opens=True)


@pytest.fixture
def client(tracked: Settings, db: Database) -> FlaskClient:
    return create_app(tracked).test_client()


def _path(url: str) -> str:
    return url.removeprefix("https://news.example")


def test_a_sent_messages_tracked_links_redirect_to_their_articles(
    db: Database, tracked: Settings, smtp_server: SmtpSink, client: FlaskClient
) -> None:
    """Over SMTP every article link (HTML and text) is a /c/ link, no article URL is in clear,
    and following one answers 302 to its article and records one reader's click."""
    edition_id = site(db, tracked, readers=1)
    send(db, tracked, edition_id)
    html, text = parts(smtp_server.received[0].data)
    hrefs = [h for h in htmlcheck.read(html).links if "/c/" in h]
    assert len(hrefs) == 6  # headline and "Read more" of each of the three articles
    assert len(set(hrefs)) == 3
    text_links = TRACKED.findall(text)
    assert sorted(set(text_links)) == sorted(set(hrefs))
    for url in URLS:
        assert url not in html and url not in text

    targets = set()
    for href in set(hrefs):
        answer = client.get(_path(href))
        assert answer.status_code == 302
        targets.add(answer.headers["Location"])
        assert click_rows(db)[-1][1] is False  # an hour after delivery, one at a time: a reader
        # Spaced out like a reader, so no burst: move each recorded click back a minute.
        with db.session() as session:
            for row in session.scalars(select(Click)):
                row.at -= dt.timedelta(minutes=1)
    assert targets == set(URLS)
    rows = click_rows(db)
    assert len(rows) == 3 and not any(scanner for _, scanner in rows)


def test_head_is_answered_but_never_counted(
    db: Database, tracked: Settings, smtp_server: SmtpSink, client: FlaskClient
) -> None:
    """A HEAD of a tracked link or of the pixel gets the same answer as a GET and records
    nothing."""
    edition_id = site(db, tracked, readers=1)
    send(db, tracked, edition_id)
    html, _ = parts(smtp_server.received[0].data)
    href = next(h for h in htmlcheck.read(html).links if "/c/" in h)
    pixel = next(i["src"] for i in htmlcheck.read(html).images if "/o/" in (i["src"] or ""))
    assert pixel is not None
    answer = client.head(_path(href))
    assert answer.status_code == 302 and answer.headers["Location"] in URLS
    assert client.head(_path(pixel)).status_code == 200
    assert click_rows(db) == []


def test_a_burst_of_every_link_within_a_second_is_a_scanner(
    db: Database, tracked: Settings, smtp_server: SmtpSink, client: FlaskClient
) -> None:
    """All three links of one message fetched within a second (an hour after delivery) are
    all marked as a scanner's, the first ones too, and count as no reader."""
    edition_id = site(db, tracked, readers=1)
    send(db, tracked, edition_id)
    html, _ = parts(smtp_server.received[0].data)
    for href in dict.fromkeys(h for h in htmlcheck.read(html).links if "/c/" in h):
        assert client.get(_path(href)).status_code == 302
    rows = click_rows(db)
    assert len(rows) == 3
    assert all(scanner for _, scanner in rows)


def test_a_fetch_right_at_delivery_is_a_scanner(
    db: Database, tracked: Settings, smtp_server: SmtpSink, client: FlaskClient
) -> None:
    """One link fetched a second after the message was accepted is a scanner's, not a
    reader's; the redirect still works."""
    edition_id = site(db, tracked, readers=1)
    send(db, tracked, edition_id, sent_ago=1)
    html, _ = parts(smtp_server.received[0].data)
    href = next(h for h in htmlcheck.read(html).links if "/c/" in h)
    assert client.get(_path(href)).status_code == 302
    assert [scanner for _, scanner in click_rows(db)] == [True]


def test_readers_clicks_apart_in_time_are_counted_and_a_later_burst_is_not(
    db: Database, tracked: Settings
) -> None:
    """Two links clicked a minute apart are a reader's; three fetched in the same two seconds
    later on are a scanner's, and the reader's earlier clicks stay a reader's."""
    edition_id = site(db, tracked, readers=1)
    rules = clicks.ScannerRules.of(tracked)
    signer = LinkSigner(tracked.secret)
    with db.session() as session:
        delivery = session.scalars(select(Delivery)).one()
        delivery.sent_at = dt.datetime(2026, 11, 24, 7)
        session.commit()
        ids = sorted(clicks.edition_article_ids(session.get_one(clicks.Edition, edition_id)))
        links = [signer.verify(CLICK, signer.sign(CLICK, edition_id, i, delivery.id)) for i in ids]
        at = dt.datetime(2026, 11, 24, 8)
        clicks.record(session, links[0], rules, at)
        clicks.record(session, links[1], rules, at + dt.timedelta(minutes=1))
        later = at + dt.timedelta(hours=1)
        for n, link in enumerate(links):
            clicks.record(session, link, rules, later + dt.timedelta(seconds=n))
    assert [scanner for _, scanner in click_rows(db)] == [False, False, True, True, True]


def test_a_forged_or_altered_token_gets_400_and_records_nothing(
    db: Database, tracked: Settings, smtp_server: SmtpSink, client: FlaskClient
) -> None:
    """Changing the article, the delivery or the signature of a real link, or signing with
    another secret, answers 400 without a redirect and records no click."""
    edition_id = site(db, tracked, readers=1)
    send(db, tracked, edition_id)
    html, _ = parts(smtp_server.received[0].data)
    token = next(h for h in htmlcheck.read(html).links if "/c/" in h).rsplit("/", 1)[1]
    edition, article, delivery, tag = token.split(".")
    other = next(a for a in ("1", "2", "3") if a != article)
    forged = [
        f"{edition}.{other}.{delivery}.{tag}",
        f"{edition}.{article}.{int(delivery) + 1}.{tag}",
        f"{edition}.{article}.{delivery}.{tag[:-1]}{'A' if tag[-1] != 'A' else 'B'}",
        LinkSigner("another-secret").sign(CLICK, int(edition), int(article), int(delivery)),
        LinkSigner(tracked.secret).sign(OPEN, int(edition), int(article), int(delivery)),
        "not-a-token",
    ]
    for bad in forged:
        answer = client.get(f"/c/{bad}")
        assert answer.status_code == 400, bad
        assert "Location" not in answer.headers
        assert "not valid" in answer.get_data(as_text=True)
    assert client.get(f"/o/{token}").status_code == 400  # a click token is no pixel token
    assert click_rows(db) == []


def test_a_tracked_link_cannot_be_turned_to_an_outside_address(
    db: Database, tracked: Settings, smtp_server: SmtpSink, client: FlaskClient
) -> None:
    """A correctly signed token for an article the edition did not carry is refused; a URL in
    the query is ignored; a stored address that is not http(s) is never redirected to."""
    edition_id = site(db, tracked, readers=1)
    send(db, tracked, edition_id)
    with db.session() as session:
        outside = Article(
            url="https://evil.example/phish",
            section_id=1,
            headline="Not in the edition",
            published_at=dt.datetime(2026, 11, 20),
        )
        session.add(outside)
        session.flush()
        outside_id = outside.id
        delivery_id = session.scalars(select(Delivery.id)).one()
    signer = LinkSigner(tracked.secret)
    answer = client.get(f"/c/{signer.sign(CLICK, edition_id, outside_id, delivery_id)}")
    assert answer.status_code == 400 and "Location" not in answer.headers

    html, _ = parts(smtp_server.received[0].data)
    href = next(h for h in htmlcheck.read(html).links if "/c/" in h)
    answer = client.get(_path(href) + "?url=https://evil.example/&next=//evil.example")
    assert answer.status_code == 302 and answer.headers["Location"] in URLS

    target = client.get(_path(href)).headers["Location"]
    with db.session() as session:
        edition = session.get_one(clicks.Edition, edition_id)
        # The address stored with the edition is the one followed: bend that one.
        edition.content = [
            {**block, "urls": {k: "javascript:alert(1)" if v == target else v
                               for k, v in block["urls"].items()}}
            for block in edition.content
        ]  # fmt: skip
    assert client.get(_path(href)).status_code == 400
    # One row: the second redirect was the same link within the minute, the third refused.
    assert len(click_rows(db)) == 1


def test_tracking_off_leaves_every_link_the_articles_own(
    db: Database, settings: Settings, smtp_server: SmtpSink
) -> None:
    """With tracking off (the default) the message carries each article's own URL, no /c/
    link and no pixel."""
    plain = settings.replace(smtp_url=smtp_server.url)
    assert not plain.track_clicks and not plain.track_opens
    edition_id = site(db, plain, readers=1)
    send(db, plain, edition_id)
    html, text = parts(smtp_server.received[0].data)
    page = htmlcheck.read(html)
    for url in URLS:
        assert page.links.count(url) == 2
        assert url in text.splitlines()
    assert "/c/" not in html + text and "/o/" not in html
    assert not [i for i in page.images if i.get("width") == "1"]


def test_opens_are_counted_once_per_get_and_test_copies_count_nothing(
    db: Database, tracked: Settings, smtp_server: SmtpSink, client: FlaskClient
) -> None:
    """The pixel of a sent message answers a GIF and records an open (no article); the
    archive and a test copy carry the articles' own URLs and a blank pixel."""
    edition_id = site(db, tracked, readers=1)
    send(db, tracked, edition_id)
    html, _ = parts(smtp_server.received[0].data)
    pixel = next(i["src"] for i in htmlcheck.read(html).images if "/o/" in (i["src"] or ""))
    assert pixel is not None
    answer = client.get(_path(pixel))
    assert answer.status_code == 200 and answer.mimetype == "image/gif"
    assert click_rows(db) == [(None, False)]

    archive = client.get("/archive/daily/2026-11-24").get_data(as_text=True)
    assert "/c/" not in archive and "/o/" not in archive
    assert all(htmlcheck.read(archive).links.count(url) == 2 for url in URLS)
    core = Digest(tracked, db=db)
    core.send_test(core.edition_draft(edition_id), "editor@example.com")
    test_html, test_text = parts(smtp_server.received[-1].data)
    assert "/c/" not in test_html + test_text and "/o/" not in test_html
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Click)) == 1


def test_link_tokens_are_purpose_scoped_and_exact() -> None:
    """A token verifies only for its own purpose and secret, and says what it names."""
    signer = LinkSigner("s3cret")
    token = signer.sign(CLICK, 4, 17, 99)
    link = signer.verify(CLICK, token)
    assert (link.edition_id, link.article_id, link.delivery_id) == (4, 17, 99)
    for purpose, candidate in [
        (OPEN, token),
        (CLICK, token + "x"),
        (CLICK, token.replace("4.17", "4.18")),
        (CLICK, "4.17.99"),
        (CLICK, "+4.17.99." + token.rsplit(".", 1)[1]),
    ]:
        with pytest.raises(Exception, match="not valid"):
            signer.verify(purpose, candidate)


@pytest.mark.heavy  # renders an oversized edition
def test_a_tracked_oversized_edition_still_fits_under_gmails_clip_size() -> None:
    """With every article link tracked (a long base URL, large ids), an edition far over
    budget is cut so the message a reader gets, links filled in, stays under 100 KB."""
    settings = cases.settings().replace(
        track_clicks=True, track_opens=True, base_url="https://newsletters.a-rather-long.example"
    )
    mailer = EditionMailer(settings)
    template = mailer.message_template(cases.draft(200, per_section=200))
    links = mailer.personal_links(
        10**9, 10**6, template=template, edition_id=10**7, delivery_id=10**12
    )
    html = template.html.fill(links)
    assert len(template.tracked_links) > 6
    assert len(html.encode("utf-8")) < HTML_BUDGET
    assert html.count("/c/") == 2 * len(template.tracked_links) + html.count('class="dg-thumb"')


def test_the_sweep_deletes_clicks_past_their_retention(db: Database, tracked: Settings) -> None:
    """Clicks older than DIGEST_CLICK_RETENTION_DAYS go at the next sweep; newer ones stay,
    and 0 keeps everything."""
    edition_id = site(db, tracked, readers=1)
    with db.session() as session:
        delivery = session.scalars(select(Delivery)).one()
        delivery.sent_at = utcnow() - dt.timedelta(days=500)
        article_id = min(clicks.edition_article_ids(session.get_one(clicks.Edition, edition_id)))
        for age in (400, 10):
            at = utcnow() - dt.timedelta(days=age)
            session.add(Click(delivery_id=delivery.id, article_id=article_id, at=at))
    Digest(tracked.replace(click_retention_days=0), db=db).sweep()
    assert len(click_rows(db)) == 2
    Digest(tracked.replace(click_retention_days=30), db=db).sweep()
    with db.session() as session:
        ages = [(utcnow() - c.at).days for c in session.scalars(select(Click))]
    assert ages == [10]


def test_forgetting_a_reader_deletes_their_clicks(db: Database, tracked: Settings) -> None:
    """`subscribers forget` erases what the person clicked and opened, and nobody else's."""
    from digest.audience import forget

    edition_id = site(db, tracked, readers=2)
    with db.session() as session:
        article_id = min(clicks.edition_article_ids(session.get_one(clicks.Edition, edition_id)))
        for delivery in session.scalars(select(Delivery)):
            session.add(Click(delivery_id=delivery.id, article_id=article_id))
            session.add(Click(delivery_id=delivery.id, article_id=None))
    with db.session() as session:
        assert forget(session, "reader0@example.com").found
    assert len(click_rows(db)) == 2


def test_a_link_fetched_again_and_again_counts_once_a_minute(
    db: Database, tracked: Settings, smtp_server: SmtpSink, client: FlaskClient
) -> None:
    """Fifty GETs of one tracked link and twenty of the pixel (a reload loop, a script) each
    redirect or answer, but add one row each; a minute later the link counts again."""
    edition_id = site(db, tracked, readers=1)
    send(db, tracked, edition_id)
    html, _ = parts(smtp_server.received[0].data)
    href = next(h for h in htmlcheck.read(html).links if "/c/" in h)
    pixel = next(i["src"] for i in htmlcheck.read(html).images if "/o/" in (i["src"] or ""))
    assert pixel is not None
    assert {client.get(_path(href)).status_code for _ in range(50)} == {302}
    assert {client.get(_path(pixel)).status_code for _ in range(20)} == {200}
    rows = click_rows(db)
    assert len(rows) == 2 and sorted(a is None for a, _ in rows) == [False, True]
    with db.session() as session:
        for row in session.scalars(select(Click)):
            row.at -= dt.timedelta(seconds=61)
    assert client.get(_path(href)).status_code == 302
    assert len(click_rows(db)) == 3


def test_a_mailed_link_keeps_leading_where_the_edition_linked(
    db: Database, tracked: Settings, smtp_server: SmtpSink, client: FlaskClient
) -> None:
    """After the edition is mailed, a feed re-points an article (its row's URL changes): the
    mailed /c/ link still redirects to the address the edition was built with, and the
    archive's copy links it too."""
    edition_id = site(db, tracked, readers=1)
    send(db, tracked, edition_id)
    html, _ = parts(smtp_server.received[0].data)
    hrefs = list(dict.fromkeys(h for h in htmlcheck.read(html).links if "/c/" in h))
    with db.session() as session:
        for article in session.scalars(select(Article)):
            article.url = f"https://elsewhere.example/{article.id}"
    targets = set()
    for href in hrefs:
        answer = client.get(_path(href))
        assert answer.status_code == 302
        targets.add(answer.headers["Location"])
    assert targets == set(URLS)
    archive = client.get("/archive/daily/2026-11-24").get_data(as_text=True)
    assert "elsewhere.example" not in archive and all(url in archive for url in URLS)
