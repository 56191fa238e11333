"""Property-based tests of the management forms: whatever an operator's browser posts (NUL
bytes, control characters, lone surrogates, huge text, missing fields), the answer is a page
or a redirect, never a 500, and a refused change leaves every table as it was."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from digest.config import Settings
from digest.store.db import Database
from tests.properties import PROPERTY, build_site, nasty_text, snapshot
from tests.web.manage_helpers import add_users, sign_in


@pytest.fixture
def operator(
    app: Flask, client: FlaskClient, db: Database, web_settings: Settings
) -> tuple[FlaskClient, str]:
    build_site(db, web_settings)
    add_users(app)
    return client, sign_in(client, "olga")


def _form(**keys: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict(keys))


def _check(client: FlaskClient, token: str, db: Database, path: str, form: dict[str, Any]) -> None:
    before = snapshot(db)
    # Encoded here: a lone surrogate becomes bytes that are not UTF-8, as a broken client sends.
    body = urlencode({**form, "csrf_token": token}, encoding="utf-8", errors="surrogatepass")
    response = client.post(
        path,
        data=body,
        content_type="application/x-www-form-urlencoded",
        follow_redirects=True,
    )
    assert response.status_code < 500, response.get_data(True)[:500]
    if response.status_code >= 400 or "Not done:" in response.get_data(True):
        assert snapshot(db) == before


ROUTES = [
    ("/dashboard/sections", _form(slug=nasty_text, name=nasty_text)),
    ("/dashboard/sections/news/remove", _form()),
    ("/dashboard/sources", _form(url=nasty_text, section=nasty_text, name=nasty_text)),
    (
        "/dashboard/lists",
        _form(
            slug=nasty_text,
            name=nasty_text,
            sections=nasty_text,
            send_at=nasty_text,
            timezone=nasty_text,
            per_section=nasty_text,
            language=nasty_text,
            subject=nasty_text,
            from_address=nasty_text,
        ),
    ),
    (
        "/dashboard/lists/daily",
        _form(
            name=nasty_text,
            sections=nasty_text,
            send_at=nasty_text,
            timezone=nasty_text,
            per_section=nasty_text,
            language=nasty_text,
            subject=nasty_text,
            from_address=nasty_text,
            from_name=nasty_text,
            when_empty=nasty_text,
            utm=nasty_text,
            review=st.sampled_from(["on", ""]) | nasty_text,
            review_hours=nasty_text,
            unreviewed=nasty_text,
        ),
    ),
    ("/dashboard/subscribers", _form(email=nasty_text, name=nasty_text, list=nasty_text)),
    ("/dashboard/suppressions", _form(email=nasty_text, reason=nasty_text)),
    ("/dashboard/suppressions/remove", _form(email=nasty_text)),
]


@PROPERTY
@given(
    choice=st.sampled_from(range(len(ROUTES))).flatmap(
        lambda i: st.tuples(st.just(ROUTES[i][0]), ROUTES[i][1])
    )
)
def test_management_forms_never_500_and_refusals_change_nothing(
    operator: tuple[FlaskClient, str], db: Database, choice: tuple[str, dict[str, Any]]
) -> None:
    """Any values in any management form: no 500; a refused change writes nothing."""
    client, token = operator
    path, form = choice
    _check(client, token, db, path, form)


@PROPERTY
@given(query=nasty_text, slug=nasty_text)
def test_management_pages_never_500_on_any_query(
    operator: tuple[FlaskClient, str], query: str, slug: str
) -> None:
    """The search, export and per-list pages answer every query string without a 500."""
    client, _ = operator
    for path in ("/dashboard/subscribers", "/dashboard/subscribers/export"):
        query_string = urlencode({"q": query, "list": slug}, errors="surrogatepass")
        assert client.get(f"{path}?{query_string}").status_code < 500
    slug_path = quote(slug.replace("/", ""), errors="surrogatepass") or "x"
    assert client.get(f"/dashboard/lists/{slug_path}/send").status_code < 500
