"""Behind a reverse proxy: with DIGEST_TRUSTED_PROXIES the login lockout keys on the client's
own address (X-Forwarded-For through ProxyFix), so one guesser does not lock the operator out;
without it the header is not believed, so a client cannot write its way round the lockout."""

from __future__ import annotations

from flask import Flask

from digest.config import Settings
from digest.store.db import Database
from digest.web import create_app
from tests.web.test_dashboard import _log_in

PROXY = "10.0.0.2"


def _through_proxy(app: Flask, client_ip: str, password: str | None = None) -> int:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = PROXY
    client.environ_base["HTTP_X_FORWARDED_FOR"] = client_ip
    return int((_log_in(client, password) if password else _log_in(client)).status_code)


def test_a_guesser_behind_the_proxy_does_not_lock_out_the_operator(
    web_settings: Settings, db: Database
) -> None:
    """With one trusted proxy, a guesser's wrong passwords lock out the guesser's address
    only; the operator, through the same proxy from another address, still signs in."""
    app = create_app(web_settings.replace(trusted_proxies=1))
    codes = [_through_proxy(app, "203.0.113.66", f"guess {i}") for i in range(8)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert _through_proxy(app, "198.51.100.7") == 303


def test_without_trusted_proxies_x_forwarded_for_is_not_believed(
    web_settings: Settings, db: Database
) -> None:
    """By default the peer's address counts: a guesser changing X-Forwarded-For on every try
    is still locked out after five."""
    app = create_app(web_settings)
    codes = [_through_proxy(app, f"203.0.113.{i}", "wrong") for i in range(8)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
