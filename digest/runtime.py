"""The process-wide settings, database and mailer, made once and shared by tasks."""

from __future__ import annotations

from functools import cache

from digest.config import Settings, load_settings
from digest.db import Database
from digest.sending import EditionMailer


@cache
def settings() -> Settings:
    return load_settings()


@cache
def database() -> Database:
    return Database.from_settings(settings())


@cache
def mailer() -> EditionMailer:
    # One per process: its cache of rendered edition variants is what keeps
    # Jinja2 and premailer off the per-recipient path.
    return EditionMailer(settings())


def reset() -> None:
    """Forget the cached objects (tests that change the environment call this)."""
    for made in (settings, database, mailer):
        made.cache_clear()
