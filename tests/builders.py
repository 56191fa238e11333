"""What many tests build: feeds as publishers write them, a list with readers and stories,
and an edition's ledger counted. One copy here, so a change of schema or format is made once."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from digest.edition import ledger
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import (
    Article,
    MailingList,
    Section,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    utcnow,
)

MEDIA_RSS = 'xmlns:media="http://search.yahoo.com/mrss/"'


def rss(*items: str, title: str = "News", namespaces: str = MEDIA_RSS) -> bytes:
    """An RSS 2.0 document holding ``items`` (raw ``<item>`` elements)."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" {namespaces}>'
        f"<channel><title>{title}</title><link>https://news.example/</link>"
        "<description>All the news</description>" + "".join(items) + "</channel></rss>"
    ).encode()


def atom(*entries: str, title: str = "News") -> bytes:
    """An Atom 1.0 document holding ``entries`` (raw ``<entry>`` elements)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title><id>urn:feed:news</id>'
        "<updated>2025-01-06T10:00:00Z</updated>" + "".join(entries) + "</feed>"
    ).encode()


def rss_item(title: str, link: str, when: dt.datetime) -> str:
    """One item as most publishers write it: the link as its guid, an RFC 822 date."""
    return (
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(when)}</pubDate>"
        f"<description>About {title}.</description></item>"
    )


def atom_entry(title: str, link: str, when: dt.datetime) -> str:
    """One Atom entry: the link as its id, an RFC 3339 date."""
    return (
        f'<entry><title>{title}</title><link href="{link}"/><id>{link}</id>'
        f"<updated>{when.isoformat()}</updated><summary>About {title}.</summary></entry>"
    )


def add_stories(
    session: Session, section: Section, count: int, first: dt.datetime, *, prefix: str = ""
) -> list[Article]:
    """``count`` articles in ``section``, an hour apart from ``first`` (naive UTC)."""
    stories = [
        Article(
            url=f"https://n.example/{prefix}{i}",
            guid=f"g{prefix}{i}",
            section_id=section.id,
            headline=f"Story {prefix}{i} in {section.name}",
            teaser="A teaser.",
            published_at=first + dt.timedelta(hours=i),
        )
        for i in range(count)
    ]
    session.add_all(stories)
    session.flush()
    return stories


def add_readers(
    session: Session,
    mailing_list: MailingList,
    count: int,
    address: str = "reader{:05d}@example.com",
) -> None:
    """``count`` confirmed readers (``address`` formatted with 0, 1, ...), written set-based:
    a subscribe call each would take minutes for the thousands the worker tests send to."""
    start = int(session.scalar(select(Subscriber.id).order_by(Subscriber.id.desc())) or 0)
    session.execute(
        insert(Subscriber),
        [{"email": address.format(i), "name": f"Reader {i}"} for i in range(count)],
    )
    ids = session.scalars(select(Subscriber.id).where(Subscriber.id > start)).all()
    now = utcnow()
    session.execute(
        insert(Subscription),
        [
            {
                "list_id": mailing_list.id,
                "subscriber_id": subscriber_id,
                "status": SubscriptionStatus.CONFIRMED,
                "source": "test",
                "created_at": now,
                "confirmed_at": now,
            }
            for subscriber_id in ids
        ],
    )


def add_list(session: Session, slug: str = "daily", sections: tuple[str, ...] = ("national",)
             ) -> tuple[MailingList, list[Section]]:  # fmt: skip
    """A list (UTC, 07:00) over ``sections``, each added with its slug capitalised as name."""
    made = [catalog.add_section(session, s, s.capitalize())[0] for s in sections]
    mailing_list, _ = catalog.add_list(session, slug, slug.capitalize(), list(sections))
    return mailing_list, made


def ledger_counts(db: Database, edition_id: int) -> dict[str, int]:
    """The edition's rows per status, the statuses that have none left out."""
    with db.session() as session:
        return {k: v for k, v in ledger.counts(session, edition_id).items() if v}


def api_token(db: Database, name: str = "tests") -> str:
    """A new API bearer token, made as `digest tokens create` makes one."""
    from digest.config import Settings
    from digest.service.access import Access

    return Access(Settings(), lambda: db).create_token(name)[1]
