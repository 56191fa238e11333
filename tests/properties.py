"""What the property tests share: a snapshot of every table (so a refused call can be shown
to have changed nothing), Hypothesis settings, and strategies for hostile input."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import select

from digest.config import Settings
from digest.edition.build import build_edition
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Article, Base

#: The day of the fixture site's article and edition.
DAY = dt.date(2026, 11, 24)

#: One fixture database per test function, shared by its examples: each example compares
#: the tables before and after itself, so sharing is safe and keeps the suite fast.
#: ``DIGEST_PROPERTY_EXAMPLES`` raises the count for a deeper hunt (30 keeps the suite within
#: its time: every example of a command or endpoint snapshots every table twice).
PROPERTY = settings(
    max_examples=int(os.environ.get("DIGEST_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Columns that change on a refused call by design: the token's "last used" stamp.
VOLATILE = {("api_tokens", "last_used_at")}


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order, without the VOLATILE columns."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE]
            rows = conn.execute(select(*columns)).all()
            tables[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return tables


def build_site(db: Database, settings: Settings) -> None:
    """Two sections, a list with one reader, a list with none and an edition of it (so the
    edition routes meet a real id too), and one article."""
    with db.session() as session:
        news, _ = catalog.add_section(session, "news", "News")
        catalog.add_section(session, "sports", "Sports")
        daily, _ = catalog.add_list(session, "daily", "Daily", ["news"])
        weekly, _ = catalog.add_list(session, "weekly", "Weekly", ["news", "sports"])
        catalog.subscribe(session, daily, "reader@example.com")
        session.add(
            Article(
                url="https://n.example/1",
                section_id=news.id,
                headline="A headline",
                teaser="Teaser.",
                published_at=dt.datetime(2026, 11, 24, 9),
            )
        )
        session.flush()
        build_edition(session, settings, weekly, DAY)


# -- what a hostile client sends ---------------------------------------------------------------

#: Text that reaches the checks: real slugs and values among control characters, NUL,
#: emoji, right-to-left text, lone surrogates and strings longer than any column.
nasty_text = st.one_of(
    st.sampled_from(
        ["news", "daily", "weekly", "sports", "", " ", "UTC", "07:00", "en", "2026-11-24"]
    ),
    st.text(max_size=30),
    st.text(alphabet=st.sampled_from("\x00\n\r\t\x1b\x7f\u202e-a😀é/:[]%"), max_size=20),
    st.text(alphabet=st.characters(categories=["Cc"]), max_size=5),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3),
    st.integers(min_value=60, max_value=5000).map(lambda n: "x" * n),
    # Valid but long: past a column's size (200 for names, 2,000 for URLs) without a check.
    st.integers(min_value=180, max_value=2100).map(lambda n: "https://x.example/" + "a" * n),
    st.sampled_from(["http://[::1", "http://", "https://x.example/\x00", "file:///etc/passwd"]),
)
#: The same in a URL: a query can carry any bytes, which the server decodes as UTF-8 with
#: replacement, so a lone surrogate cannot arrive there (and the test client cannot send one).
url_text = nasty_text.map(lambda t: t.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
huge_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**31 - 2, max_value=10**40),
    st.integers(max_value=-(2**31), min_value=-(10**40)),
    st.floats(allow_nan=True, allow_infinity=True),
)
dates = st.one_of(
    st.dates().map(dt.date.isoformat),
    st.sampled_from(["0001-01-01", "9999-12-31", "1899-12-31", "2201-01-01", "20261124"]),
    nasty_text,
)
json_values = st.recursive(
    st.none() | st.booleans() | huge_numbers | nasty_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)
