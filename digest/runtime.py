"""The process-wide settings, database and mailer, made once and shared by tasks."""

from __future__ import annotations

from functools import cache

from digest.config import Settings, load_settings
from digest.send.batch import EditionMailer
from digest.send.ratelimit import LocalRateLimiter, NoLimit, RateLimiter, RedisRateLimiter
from digest.store.db import Database


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """Redis-backed (shared by all workers) on a Redis broker, the local clock otherwise."""
    if not (settings.rate_limit or settings.rate_limit_per_domain):
        return NoLimit()
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")):
        import redis

        return RedisRateLimiter(
            redis.Redis.from_url(settings.broker_url),
            settings.rate_limit,
            settings.rate_limit_per_domain,
        )
    return LocalRateLimiter(settings.rate_limit, settings.rate_limit_per_domain)


def make_mailer(settings: Settings) -> EditionMailer:
    """A mailer with the DKIM signer and rate limiter the settings ask for."""
    from digest.mail.dkim import make_signer

    return EditionMailer(
        settings, signer=make_signer(settings), rate_limiter=make_rate_limiter(settings)
    )


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
    return make_mailer(settings())


def reset() -> None:
    """Forget the cached objects (tests that change the environment call this)."""
    for made in (settings, database, mailer):
        made.cache_clear()
