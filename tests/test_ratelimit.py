"""Global rate limits: shared through a real Redis by every limiter with the same name."""

from __future__ import annotations

import threading
import time
import uuid

import redis

from digest.send.ratelimit import LocalRateLimiter, RedisRateLimiter


def _timed_waits(limiters: list[RedisRateLimiter] | list[LocalRateLimiter], each: int,
                 domain: str = "example.com") -> float:  # fmt: skip
    """Seconds for every limiter, in its own thread (a worker), to pass ``each`` messages."""

    def run(limiter: RedisRateLimiter | LocalRateLimiter) -> None:
        for _ in range(each):
            limiter.wait(domain)

    threads = [threading.Thread(target=run, args=(limiter,)) for limiter in limiters]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - start


def test_two_workers_share_one_redis_limit(redis_url: str) -> None:
    """Two limiters at 100 msg/s on one Redis pass 60 messages in no less than ~0.6 s together,
    where two independent per-worker limits would need only half that."""
    client = redis.Redis.from_url(redis_url)
    name = f"test-{uuid.uuid4().hex[:8]}"
    workers = [RedisRateLimiter(client, 100, name=name) for _ in range(2)]
    elapsed = _timed_waits(workers, 30)
    assert elapsed >= 0.5


def test_per_domain_limit_applies_per_domain(redis_url: str) -> None:
    """A per-domain limit of 20 msg/s slows messages to one domain, not the transport as a whole."""
    client = redis.Redis.from_url(redis_url)
    name = f"test-{uuid.uuid4().hex[:8]}"
    limiter = RedisRateLimiter(client, 0, per_domain=20, name=name)
    start = time.monotonic()
    for _ in range(11):
        limiter.wait("slow.example")
    one_domain = time.monotonic() - start
    start = time.monotonic()
    for i in range(11):
        limiter.wait(f"d{i}.example")
    many_domains = time.monotonic() - start
    assert one_domain >= 0.45
    assert many_domains < one_domain


def test_local_limit_spaces_messages() -> None:
    """In-process, 50 msg/s lets 11 messages through in no less than ~0.2 s."""
    elapsed = _timed_waits([LocalRateLimiter(50)], 11)
    assert elapsed >= 0.18
