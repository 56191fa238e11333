"""Global send rate limits: messages per second for the transport, and per recipient domain.

Celery's ``rate_limit`` counts per worker; a provider's limit counts per
account. On a broker the limit is kept in Redis, shared by every worker on
every host, as a GCRA (generic cell rate algorithm): one key per limit holds
the theoretical arrival time of the next message, advanced by one interval
per message, so the rate holds without bursts at window edges.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Protocol

from digest.config import Settings

if TYPE_CHECKING:
    import redis

# Returns 0 when the message may go now (and books it), else milliseconds to wait. No burst
# tolerance: a message may go only once the previous one's interval has passed, so N messages
# take at least (N - 1) intervals, as the operator's "N per second" means.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat > now then
  return math.ceil(tat - now)
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return 0
"""


class RateLimiter(Protocol):
    def wait(self, domain: str) -> None:
        """Block until one more message to ``domain`` is within every limit."""


class NoLimit:
    def wait(self, domain: str) -> None:
        return None


class LocalRateLimiter:
    """For the embedded default: one process, so the clock is enough."""

    def __init__(self, per_second: float, per_domain: float = 0.0) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.domain_interval = 1.0 / per_domain if per_domain > 0 else 0.0
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, domain: str) -> None:
        for key, interval in (("", self.interval), (domain, self.domain_interval)):
            if not interval:
                continue
            with self._lock:
                now = time.monotonic()
                slot = max(self._next.get(key, now), now)
                self._next[key] = slot + interval
            if slot > now:
                time.sleep(slot - now)


class RedisRateLimiter:
    """Shared by every worker that uses the same Redis and ``name``."""

    def __init__(
        self, client: redis.Redis, per_second: float, per_domain: float = 0.0, name: str = "smtp"
    ) -> None:
        self.client = client
        self.limits = [
            (f"digest:rate:{name}", 1000.0 / per_second if per_second > 0 else 0.0),
        ]
        self.domain_interval = 1000.0 / per_domain if per_domain > 0 else 0.0
        self.name = name
        self._script = client.register_script(_GCRA)

    def wait(self, domain: str) -> None:
        limits = list(self.limits)
        if self.domain_interval:
            limits.append((f"digest:rate:{self.name}:domain:{domain}", self.domain_interval))
        for key, interval in limits:
            if not interval:
                continue
            while True:
                wait_ms = int(self._script(keys=[key], args=[interval]))
                if wait_ms <= 0:
                    break
                time.sleep(wait_ms / 1000.0)


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
