"""Property-based tests of the inbox: whatever arrives (arbitrary bytes; arbitrary headers,
huge folded encoded words and parameter lists among them; reports quoting real deliveries
without a valid signature), every entry (the SMTP handler, ``handle_inbound``, the IMAP
path) answers without raising, within bounded time and memory, and changes no table."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.config import Settings
from digest.feedback.dsn import parse_report
from digest.feedback.inbound import (
    InboundHandler,
    Recipient,
    Verdict,
    handle_imap_message,
    handle_inbound,
)
from digest.feedback.reader import Limits, MessageRefused
from digest.store.db import Database
from tests.feedback.conftest import BOUNCE_DOMAIN, arf, delivery_of, dsn
from tests.feedback.hostile import HOSTILE
from tests.feedback.test_inbound import _sent_site
from tests.properties import PROPERTY, snapshot

#: Far above what any example needs (the worst takes a fraction of a second), far below
#: the quadratic parsers' seconds and gigabytes.
SECONDS = 5.0
PEAK_BYTES = 100 * 1024 * 1024
PLAIN = f"bounces@{BOUNCE_DOMAIN}"
UNSUBSCRIBE = "unsubscribe@gazette.example"
FORGED_TOKEN = f"bounces+aaaa-{'a' * 16}@{BOUNCE_DOMAIN}"
NOT_OURS = "postmaster@gazette.example"
HEADER_NAMES = [
    "Subject",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "To",
    "Delivered-To",
    "X-Original-To",
    "Message-ID",
    "From",
]


def _folded(unit: str, count: int) -> str:
    return "\r\n ".join([unit] * count)


header_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "multipart/report; report-type=delivery-status; boundary=B",
            "multipart/report; report-type=feedback-report; boundary=B",
            "message/rfc822",
            'multipart/mixed; boundary="B"',
            "text/plain; charset=punycode",
            "base64",
            "quoted-printable",
            f"<{PLAIN}>",
            f"unsubscribe https://news.example/unsubscribe/1.2.{'a' * 20}",
        ]
    ),
    # The attacks: folded encoded words, parameter lists, address lists, up to 300 KB.
    st.integers(1, 20_000).map(lambda n: _folded("=?utf-8?q?a?=", n)),
    st.integers(1, 60_000).map(lambda n: "multipart/report; " + _folded("a=b;", n)),
    st.integers(1, 60_000).map(lambda n: _folded("a@b,", n)),
    st.integers(1, 20_000).map(lambda n: 'x; a="' + "\\" * n),
)
header_names = st.one_of(st.sampled_from(HEADER_NAMES), st.text(min_size=1, max_size=20))
bodies = st.one_of(
    st.binary(max_size=600),
    st.sampled_from([b"--B\r\n", b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"]),
    st.integers(1, 100_000).map(lambda n: b"--B\r\n\r\n" * n),
    st.integers(1, 20_000).map(lambda n: b"--B\r\nContent-Type: message/rfc822\r\n\r\n" * n),
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A header block of drawn fields (any text, as UTF-8 or not) and a drawn body."""
    fields = draw(st.lists(st.tuples(header_names, header_values), max_size=6))
    raw = b"".join(
        name.encode("utf-8", "surrogatepass") + b": " + value.encode("utf-8", "surrogatepass")
        + b"\r\n"
        for name, value in fields
    )  # fmt: skip
    return raw + b"\r\n" + draw(bodies)


@st.composite
def forged_reports(draw: st.DrawFn, ids: dict[str, int]) -> bytes:
    """A well-formed DSN or ARF about a real delivery (or a near one), unsigned, with a made-up
    MAC, or quoting something else, naming a real reader or not."""
    edition, delivery = ids["edition"], draw(st.sampled_from([ids["victim"], ids["other"], 1]))
    message_id = draw(
        st.sampled_from(
            [
                f"digest.e{edition}.d{delivery}@gazette.example",
                f"digest.e{edition}.d{delivery}.{'a' * 20}@gazette.example",
                f"digest.e{edition + 1}.d{delivery}@x",
                "",
                "<>",
            ]
        )
        | st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
    )
    recipient = draw(st.sampled_from(["reader1@example.com", "reader0@example.com", ""]))
    if draw(st.booleans()):
        return arf(PLAIN, recipient, message_id, draw(st.sampled_from(["abuse", "other"])))
    return dsn(PLAIN, recipient, message_id=message_id.replace("\n", " "))


HOSTILE_AT_SIZES = st.tuples(
    st.sampled_from(sorted(HOSTILE)), st.integers(1_000, 2 * 1024 * 1024)
).map(lambda kind_size: HOSTILE[kind_size[0]][0](kind_size[1]))


@pytest.fixture
def site(db: Database, bounce_settings: Settings) -> dict[str, int]:
    editions = _sent_site(db, bounce_settings, readers=2, days=1)
    return {
        "edition": editions[0],
        "victim": delivery_of(db, editions[0], "reader1@example.com"),
        "other": delivery_of(db, editions[0], "reader0@example.com"),
    }


def _bounded(call: Any) -> Any:
    """``call()``'s result, checked to take under SECONDS and PEAK_BYTES of allocations."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = call()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < SECONDS, elapsed
    assert peak < PEAK_BYTES, peak
    return result


def _every_entry(db: Database, settings: Settings, data: bytes) -> None:
    """The message through the SMTP handler (to every kind of address at once), straight to
    ``handle_inbound`` as a plain and a forged-token bounce, and through the IMAP path."""
    handler = InboundHandler(db, settings)
    verdicts = _bounded(lambda: handler.process([PLAIN, FORGED_TOKEN, UNSUBSCRIBE, NOT_OURS], data))
    assert verdicts[3] == Verdict.IGNORED
    verdicts.append(_bounded(lambda: handle_inbound(db, settings, Recipient("bounce"), data)))
    verdicts.append(_bounded(lambda: handle_imap_message(db, settings, data)))
    assert set(verdicts) <= {Verdict.IGNORED, Verdict.REFUSED}, verdicts


@PROPERTY
@given(data=st.one_of(st.binary(max_size=3000), messages(), HOSTILE_AT_SIZES))
def test_any_message_changes_nothing_within_bounds(
    db: Database, bounce_settings: Settings, site: dict[str, int], data: bytes
) -> None:
    """Arbitrary bytes, arbitrary headers and the hostile messages at any size: every entry
    answers ignored or refused, within the bounds, and every table stays as it was."""
    before = snapshot(db)
    _every_entry(db, bounce_settings, data)
    assert snapshot(db) == before


@PROPERTY
@given(data=st.data())
def test_unsigned_reports_about_real_deliveries_change_nothing(
    db: Database, bounce_settings: Settings, site: dict[str, int], data: st.DataObject
) -> None:
    """Well-formed reports quoting a real delivery's id without a valid MAC (unsigned, a
    made-up MAC, a neighbour's edition, garbage), naming its reader or not, change nothing
    through any entry."""
    report = data.draw(forged_reports(site))
    before = snapshot(db)
    _every_entry(db, bounce_settings, report)
    assert snapshot(db) == before


@pytest.mark.unit
@PROPERTY
@given(data=st.one_of(st.binary(max_size=3000), messages(), HOSTILE_AT_SIZES))
def test_the_report_reader_never_raises_but_refuses(data: bytes) -> None:
    """``parse_report`` on anything gives a report, None, or MessageRefused, within the bounds:
    no other exception escapes the reader."""

    def parse() -> object:
        try:
            return parse_report(data, Limits())
        except MessageRefused as exc:
            return exc

    _bounded(parse)
