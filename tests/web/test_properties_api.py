"""Property-based tests of the operator API: whatever a token holder sends (any JSON shape,
NUL bytes, lone surrogates, huge numbers, dates far away, malformed URLs, deep nesting), the
answer is a success or a 4xx with a JSON error, never a 500, and a refused call leaves every
table as it was. Runs on SQLite and on PostgreSQL (which refuses NUL in text)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from werkzeug.test import TestResponse

from digest.config import Settings
from digest.store.db import Database
from tests.builders import api_token
from tests.properties import (
    PROPERTY,
    build_site,
    dates,
    huge_numbers,
    json_values,
    nasty_text,
    snapshot,
    url_text,
)


@pytest.fixture
def site(db: Database, web_settings: Settings) -> None:
    build_site(db, web_settings)


@pytest.fixture
def auth(db: Database) -> dict[str, str]:
    token = api_token(db, "properties")
    return {"Authorization": f"Bearer {token}"}


def fields(**keys: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A JSON object with some of ``keys`` (each drawn from its strategy, or anything), or
    any JSON value at all."""
    values = {k: st.one_of(v, json_values) for k, v in keys.items()}
    return st.one_of(
        st.fixed_dictionaries({}, optional=values),
        json_values,
    )


def check(response: TestResponse, before: dict[str, Any], db: Database) -> None:
    """The properties: no 500, an error is JSON with one line, and it changed nothing."""
    status = response.status_code
    assert status < 500, response.get_data(as_text=True)[:500]
    if status >= 400:
        error = response.get_json()["error"]
        assert isinstance(error, str) and error and "\n" not in error
        assert "Traceback" not in error
        assert snapshot(db) == before


def post(client: FlaskClient, auth: dict[str, str], path: str, body: Any) -> TestResponse:
    # A lone surrogate cannot be encoded as UTF-8 by a client; ensure_ascii sends it escaped,
    # as a JSON client may, so the server must handle "\ud800" after parsing.
    return client.post(
        path, data=json.dumps(body), headers={**auth, "Content-Type": "application/json"}
    )


# -- the properties ----------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("site")


@PROPERTY
@given(body=fields(slug=nasty_text, name=nasty_text))
def test_sections_post_never_500(
    client: FlaskClient, auth: dict[str, str], db: Database, body: Any
) -> None:
    """POST /api/sections with any JSON answers 2xx or 4xx; a refusal stores nothing."""
    before = snapshot(db)
    check(post(client, auth, "/api/sections", body), before, db)


@PROPERTY
@given(body=fields(url=nasty_text, section=nasty_text, name=nasty_text))
def test_sources_post_never_500(
    client: FlaskClient, auth: dict[str, str], db: Database, body: Any
) -> None:
    """POST /api/sources with any JSON (malformed URLs among it) never answers 500."""
    before = snapshot(db)
    check(post(client, auth, "/api/sources", body), before, db)


@PROPERTY
@given(
    body=fields(
        slug=nasty_text,
        name=nasty_text,
        sections=st.lists(nasty_text, max_size=3) | nasty_text,
        timezone=nasty_text,
        send_at=nasty_text,
        per_section=huge_numbers,
        from_address=nasty_text,
        from_name=nasty_text,
        when_empty=nasty_text,
        utm=nasty_text,
        review=st.booleans() | nasty_text,
        review_hours=huge_numbers,
        unreviewed=nasty_text,
    )
)
def test_lists_post_never_500(
    client: FlaskClient, auth: dict[str, str], db: Database, body: Any
) -> None:
    """POST /api/lists with any JSON (per_section up to 10**40) never answers 500."""
    before = snapshot(db)
    check(post(client, auth, "/api/lists", body), before, db)


@PROPERTY
@given(body=fields(email=nasty_text, list=nasty_text, name=nasty_text, timezone=nasty_text))
def test_subscribers_post_never_500(
    client: FlaskClient, auth: dict[str, str], db: Database, body: Any
) -> None:
    """POST /api/subscribers with any JSON never answers 500; a refusal stores nothing."""
    before = snapshot(db)
    check(post(client, auth, "/api/subscribers", body), before, db)


@PROPERTY
@given(
    slug=url_text,
    csv=st.binary(max_size=200) | nasty_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
)
def test_subscribers_import_never_500(
    client: FlaskClient, auth: dict[str, str], db: Database, slug: str, csv: bytes
) -> None:
    """POST /api/subscribers/import with any bytes and any list name never answers 500; a file
    with bad rows is a 422 carrying each bad row's line and reason (the good rows are kept,
    as the CLI keeps them), any other refusal changes nothing."""
    before = snapshot(db)
    response = client.post(
        "/api/subscribers/import",
        query_string={"list": slug},
        data=b"email,name\n" + csv,
        headers={**auth, "Content-Type": "text/csv"},
    )
    if response.status_code == 422:
        report = response.get_json()
        assert report["errors"], report
        assert all(e["line"] >= 2 and e["reason"] for e in report["errors"]), report
        return
    check(response, before, db)


@PROPERTY
@given(body=fields(list=nasty_text, date=dates))
def test_editions_send_never_500(
    client: FlaskClient, auth: dict[str, str], db: Database, body: Any
) -> None:
    """POST /api/editions/send with any list and date (0001-01-01, 9999-12-31, ...) never
    answers 500."""
    before = snapshot(db)
    check(post(client, auth, "/api/editions/send", body), before, db)


edition_ids = st.one_of(st.integers(min_value=0, max_value=3), st.integers(min_value=0))


@PROPERTY
@given(
    edition_id=edition_ids,
    action=st.sampled_from(["test", "pause", "resume", "cancel", "retry-failed"]),
    body=fields(to=nasty_text),
)
def test_edition_actions_never_500(
    client: FlaskClient,
    auth: dict[str, str],
    db: Database,
    edition_id: int,
    action: str,
    body: Any,
) -> None:
    """POST /api/editions/ID/ACTION with any id (up to huge) and body never answers 500."""
    before = snapshot(db)
    check(post(client, auth, f"/api/editions/{edition_id}/{action}", body), before, db)


@PROPERTY
@given(
    path=st.sampled_from(["/api/editions", "/api/subscribers", "/api/editions/preview"]),
    query=st.dictionaries(
        st.sampled_from(["list", "limit", "offset", "date"]),
        st.one_of(url_text, huge_numbers.map(str), st.dates().map(str), st.just("1e400")),
        max_size=4,
    ),
    edition_id=edition_ids,
)
def test_reads_never_500(
    client: FlaskClient,
    auth: dict[str, str],
    db: Database,
    path: str,
    query: dict[str, str],
    edition_id: int,
) -> None:
    """GETs with any query (limit=1e400, offset=10**30, list=NUL, ...) and any id never
    answer 500 and change nothing."""
    before = snapshot(db)
    check(client.get(path, query_string=query, headers=auth), before, db)
    check(client.get(f"/api/editions/{edition_id}", headers=auth), before, db)
    check(client.delete(f"/api/subscribers/{edition_id + 10**6}", headers=auth), before, db)


@PROPERTY
@given(body=st.binary(max_size=300))
def test_any_bytes_as_json_never_500(
    client: FlaskClient, auth: dict[str, str], db: Database, body: bytes
) -> None:
    """Bytes that are not JSON, or not UTF-8, sent as JSON: a 400 naming the body."""
    before = snapshot(db)
    response = client.post(
        "/api/lists", data=body, headers={**auth, "Content-Type": "application/json"}
    )
    check(response, before, db)


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_400(
    client: FlaskClient, auth: dict[str, str], db: Database, depth: int
) -> None:
    """JSON nested 100k deep is refused with a 400 (it used to be a RecursionError, a 500)."""
    before = snapshot(db)
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = client.post(
            "/api/sections", data=body, headers={**auth, "Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert "nested too deeply" in response.get_json()["error"]
    assert snapshot(db) == before


def test_huge_body_is_413(client: FlaskClient, auth: dict[str, str]) -> None:
    """A body over the size limit is a 413 with a JSON error, before anything reads it."""
    response = client.post(
        "/api/subscribers/import?list=daily",
        data=b"email\n" + b"a@b.example\n" * 600_000,
        headers={**auth, "Content-Type": "text/csv"},
    )
    assert response.status_code == 413
    assert response.get_json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/api/lists", {"slug": "x", "name": "X", "sections": ["news"], "per_section": 10**30},
         "per-section must be 1 to 500"),
        ("/api/sources", {"url": "http://[::1", "section": "news"}, "http:// or https://"),
        ("/api/sections", {"slug": "nul", "name": "a\x00b"}, "control character"),
        ("/api/sections", {"slug": "long", "name": "x" * 201}, "at most 200"),
        ("/api/sections", {"slug": "emoji-😀", "name": "E"}, "bad slug"),
        ("/api/sections", {"slug": "lone", "name": "\ud800"}, "not valid Unicode"),
        ("/api/subscribers", {"list": "daily", "email": "a@b.example", "name": "n\x00"},
         "control character"),
        ("/api/editions/send", {"list": "daily", "date": "9999-12-31"}, "1900-01-01 to 2200"),
        ("/api/editions/send", {"list": "daily", "date": "0001-01-01"}, "1900-01-01 to 2200"),
        ("/api/lists", [1, 2], "must be a JSON object"),
    ],
)  # fmt: skip
def test_known_bad_values_are_400(
    client: FlaskClient, auth: dict[str, str], db: Database, path: str, body: Any, words: str
) -> None:
    """The values issue 11 named each get a 400 whose message says what is wrong."""
    before = snapshot(db)
    response = post(client, auth, path, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert words in response.get_json()["error"]
    assert snapshot(db) == before


@pytest.mark.parametrize(
    "path",
    ["/api/editions/99999999999999999999", "/api/editions?list=%00", "/api/editions?offset=1e400"],
)
def test_huge_ids_and_nul_in_queries_are_4xx(
    client: FlaskClient, auth: dict[str, str], path: str
) -> None:
    """An id beyond the INTEGER column, or NUL in a query, is a 404 or 400, not a 500."""
    response = client.get(path, headers=auth)
    assert response.status_code in (400, 404)
    assert response.get_json()["error"]


def test_a_bug_is_a_logged_json_500(
    client: FlaskClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real bug under /api/ answers JSON 500 without the traceback, and logs it."""
    import logging

    from digest.service.catalog.facade import Catalog

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("secret detail")

    monkeypatch.setattr(Catalog, "add_section", broken)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("digest.web.api.base").addHandler(handler)
    try:
        response = post(client, auth, "/api/sections", {"slug": "a", "name": "A"})
    finally:
        logging.getLogger("digest.web.api.base").removeHandler(handler)
    assert response.status_code == 500
    assert "secret detail" not in response.get_data(as_text=True)
    assert response.get_json()["error"].startswith("internal error")
    assert records and records[0].exc_info is not None


def test_subject_repeating_a_long_headline_fits_its_column(
    client: FlaskClient, auth: dict[str, str], db: Database
) -> None:
    """A subject template repeating a 500-character headline still builds an edition (its
    subject cut to the 500 the column holds), on PostgreSQL too, rather than a 500."""
    import datetime as dt

    from digest.service import catalog
    from digest.store.models import Article

    with db.session() as session:
        news = catalog.get_section(session, "news")
        session.add(
            Article(
                url="https://n.example/long",
                section_id=news.id,
                headline="word " * 99 + "end",
                teaser="Teaser.",
                published_at=dt.datetime(2026, 11, 25, 9),
            )
        )
    body = {"slug": "long", "name": "Long", "sections": ["news"]}
    assert post(client, auth, "/api/lists", body).status_code == 201
    with db.session() as session:
        catalog.add_list(
            session, "long", "Long", ["news"], subject="{top headline} {top headline} {list}"
        )
    response = post(client, auth, "/api/editions/send", {"list": "long", "date": "2026-11-25"})
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    assert len(response.get_json()["subject"]) <= 500


@pytest.fixture
def held(db: Database) -> None:
    """The site's edition held for review, so the review routes reach their checks."""
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE editions SET status = 'held'"))


@PROPERTY
@given(
    edition_id=st.one_of(st.just(1), edition_ids),
    action=st.sampled_from(["drop", "pin", "move", "teaser", "note", "approve", "other"]),
    body=fields(story=st.one_of(st.just(1), huge_numbers), position=huge_numbers, text=nasty_text),
)
def test_review_actions_never_500(
    client: FlaskClient,
    auth: dict[str, str],
    db: Database,
    held: None,
    edition_id: int,
    action: str,
    body: Any,
) -> None:
    """POST /api/editions/ID/review/ACTION with any id, action and body never answers 500,
    and a refused change writes nothing (no edition change, no review event)."""
    before = snapshot(db)
    check(post(client, auth, f"/api/editions/{edition_id}/review/{action}", body), before, db)
    assert client.get(f"/api/editions/{edition_id}/review", headers=auth).status_code < 500
