"""Whether any worker is there to take the queue: each worker process leaves a heartbeat in
Redis (``Beacon``), and `digest send`, `digest doctor` and ``/metrics`` read them
(``read_workers``).

A heartbeat rather than Celery's ``control.ping``, for three reasons. A ping is broadcast to
every worker on the broker and waits out its whole timeout for replies, on every call, so
each `digest send` and each scrape would pay a second or more. A worker answers a ping only
between tasks on the solo pool (the usual one in containers), so one in the middle of a long
batch would look dead. And the broadcast reaches the workers of every deployment sharing
the Redis, whatever their queue, so another site's workers would answer for ours. A heartbeat
is one ZADD every ``worker_heartbeat_seconds`` from a thread of the worker's main process
(a long batch does not silence it), kept per queue, read with one command and no waiting,
and it remembers when a worker was last seen ("no worker has answered for 12 minutes"). What
it proves is that the worker process lives and reaches the broker it consumes from; a
worker hung inside a task still beats, which is what the lease's own heartbeat and
``batch_stuck_seconds`` are for.

It needs Redis (the broker Digest documents, or Sentinel); on another broker the check says
it cannot tell.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from digest.config import Settings
from digest.errors import ConfigError, DigestError

if TYPE_CHECKING:
    import redis

__all__ = ["Beacon", "Workers", "read_workers", "redis_for", "span_words", "start_beacon"]

log = logging.getLogger(__name__)

#: Heartbeats older than this are forgotten (and the key itself expires after as long idle).
KEEP_SECONDS = 7 * 24 * 3600
#: Beats a worker may miss before it counts as gone.
MISSED_BEATS = 3

# Redis' own clock for every stamp, so hosts whose clocks disagree still agree on who is
# late. Returns 1.
_BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
# Returns {now, name1, score1, name2, score2, ...}, numbers as strings (Lua would truncate them).
_READ = """
local t = redis.call('TIME')
local reply = {tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000)}
for _, item in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')) do
  table.insert(reply, item)
end
return reply
"""


def heartbeat_key(queue: str) -> str:
    return f"digest:workers:{queue}"


def redis_for(settings: Settings) -> redis.Redis | None:
    """A Redis client on the broker (its master, through Sentinel); None when the broker is
    not Redis."""
    url = settings.broker_url or ""
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss"):
        import redis

        return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    if scheme == "sentinel":
        from redis.sentinel import Sentinel

        if not settings.broker_master_name:
            raise ConfigError("a sentinel:// broker needs DIGEST_BROKER_MASTER_NAME")
        nodes, password, db = [], None, 0
        for part in url.split(";"):
            parts = urlsplit(part.strip())
            if parts.hostname:
                nodes.append((parts.hostname, parts.port or 26379))
            password = password or (unquote(parts.password) if parts.password else None)
            if parts.path.strip("/").isdigit():
                db = int(parts.path.strip("/"))
        sentinel = Sentinel(nodes, socket_timeout=5, socket_connect_timeout=5)
        return sentinel.master_for(
            settings.broker_master_name, password=password, db=db, socket_timeout=5
        )
    return None


@dataclass(frozen=True)
class Workers:
    """The workers of one queue as their heartbeats tell it."""

    queue: str
    #: Workers heard from within the last MISSED_BEATS beats, by name.
    alive: tuple[str, ...]
    #: Seconds since the latest heartbeat of any worker (None: none in the last week).
    silent_for: float | None

    @property
    def answering(self) -> bool:
        return bool(self.alive)

    def words(self) -> str:
        """One line: who answers, or for how long nobody has."""
        if self.alive:
            names = ", ".join(self.alive[:5]) + (", ..." if len(self.alive) > 5 else "")
            count = f"{len(self.alive)} worker" + ("s" if len(self.alive) != 1 else "")
            return f"{count} answering on queue {self.queue} ({names})"
        if self.silent_for is None:
            return f"no worker has answered on queue {self.queue}: start `digest worker`"
        return (
            f"no worker has answered for {span_words(self.silent_for)} on queue "
            f"{self.queue}: start `digest worker`"
        )


def span_words(seconds: float) -> str:
    """``45 seconds``, ``12 minutes``, ``3 hours``: a wait as an operator reads it."""
    if seconds < 120:
        return f"{max(int(seconds), 0)} seconds"
    if seconds < 2 * 3600:
        return f"{int(seconds // 60)} minutes"
    return f"{int(seconds // 3600)} hours"


def read_workers(settings: Settings) -> Workers | None:
    """The queue's workers; None when the broker is not Redis (nothing to read). Raises
    DigestError, in one line, when Redis does not answer."""
    client = redis_for(settings)
    if client is None:
        return None
    try:
        reply = client.register_script(_READ)(keys=[heartbeat_key(settings.queue)])
    except Exception as exc:  # redis-py raises many kinds; all mean "not answering"
        raise DigestError(f"cannot read the workers' heartbeats: {exc}") from exc
    finally:
        client.close()
    now = float(reply[0])
    stamps = {
        _text(name): float(score) for name, score in zip(reply[1::2], reply[2::2], strict=True)
    }
    limit = MISSED_BEATS * settings.worker_heartbeat_seconds
    alive = tuple(sorted(name for name, at in stamps.items() if now - at <= limit))
    latest = max(stamps.values(), default=None)
    return Workers(settings.queue, alive, None if latest is None else max(now - latest, 0.0))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Beacon:
    """A worker's heartbeat: a daemon thread that stamps the worker's name in Redis every
    ``every`` seconds until stopped. A failed stamp is logged once and tried again next beat
    (the broker may be failing over)."""

    def __init__(self, client: redis.Redis, queue: str, name: str, every: float) -> None:
        self.client = client
        self.key = heartbeat_key(queue)
        self.name = name
        self.every = every
        self._script = client.register_script(_BEAT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="digest-heartbeat", daemon=True)
        self._failing = False

    def beat(self) -> None:
        self._script(keys=[self.key], args=[self.name, KEEP_SECONDS])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every + 5)

    def _run(self) -> None:
        while True:
            try:
                self.beat()
                if self._failing:
                    log.info("worker heartbeat: Redis answers again")
                self._failing = False
            except Exception as exc:  # any Redis error: the next beat tries again
                if not self._failing:
                    log.warning("worker heartbeat not written: %s", exc)
                self._failing = True
            if self._stop.wait(self.every):
                return


def start_beacon(settings: Settings, name: str) -> Beacon | None:
    """Start the heartbeat of the worker ``name`` (None: the broker is not Redis)."""
    client = redis_for(settings)
    if client is None:
        log.info("worker heartbeat: the broker is not Redis; `digest doctor` cannot see workers")
        return None
    beacon = Beacon(client, settings.queue, name, settings.worker_heartbeat_seconds)
    beacon.start()
    return beacon
