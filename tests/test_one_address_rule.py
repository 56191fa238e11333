"""One address rule: every path that meets an address (subscribe, the sign-up form, import,
forget, DSNs, relay webhooks) reads it through ``digest.audience.addresses``, so one person
written in any form (case, Unicode or punycode domain, spaces, a display name) is one
subscriber; and no module outside ``digest/audience`` folds addresses by hand."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.audience import forget
from digest.config import Settings
from digest.feedback.dsn import parse_report
from digest.feedback.webhooks.common import apply_notices
from digest.feedback.webhooks.postmark import postmark_notices
from digest.service import catalog
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import MailingList, Subscriber, SubscriberStatus
from tests.feedback.conftest import dsn, make_site

PACKAGE = Path(__file__).resolve().parent.parent / "digest"
_FOLDING = re.compile(
    r"\.strip\(\)\.lower\(\)|\.lower\(\)\.strip\(\)|\.casefold\(\)|strip\(\"<>\"\)"
)

#: Folding outside digest/audience that is about no address: (file, code on the line) -> why.
ALLOWED = {
    ("config.py", "flag = str(raw).strip().lower()"): "a boolean setting's word",
    ("web/charts.py", "value = node.attrib[name].strip().lower()"): "an SVG attribute",
    ("feedback/dsn.py", 'action = block.get("Action").strip().lower()'): "a DSN Action word",
    (
        "feedback/dsn.py",
        'feedback_type = fields.get("Feedback-Type").strip().lower()',
    ): "an ARF feedback type",
    (
        "feedback/webhooks/mailgun.py",
        "if not hmac.compare_digest(expected, given.strip().lower()):",
    ): "a hex signature",
    (
        "transports/outbox.py",
        'wanted = bool(colon) and name.strip().lower() in ("to", "cc")',
    ): "a header's name",
    ("mail/verp.py", "match = _TOKEN.match(token.strip().lower())"): "a base32 token",
    ("mail/verp.py", "match = _NOTICE_TOKEN.match(token.strip().lower())"): "a base32 token",
    ("mail/verp.py", "return token.strip().lower().startswith(NOTICE_PREFIX)"): "a token",
    (
        "ingest/run.py",
        "return {category.casefold(): ids[slug] for category, slug in mapping.items()"
        " if slug in ids}",
    ): "a feed's category name",
    ("ingest/run.py", "section_id = categories.get(category.casefold())"): "a category name",
    (
        "ingest/fetch.py",
        'encoding = response.headers.get("Content-Encoding", "identity").strip().lower()',
    ): "an HTTP header value",
    (
        "edition/cluster.py",
        'text = unicodedata.normalize("NFKC", text).casefold()',
    ): "headline text compared for near-duplicates",
}

STORED = "frank@xn--bcher-kva.de"
FORMS = [
    STORED,
    "Frank@Bücher.de",
    "  FRANK@xn--BCHER-KVA.DE  ",
    '"Frank B." <frank@bücher.de>',
    "Frank <Frank@Bücher.DE>",
    "<frank@bücher.de>",
]


@pytest.mark.unit
def test_no_address_is_folded_by_hand_outside_audience() -> None:
    """Outside digest/audience, .strip().lower(), .lower().strip(), .casefold() and
    .strip("<>") appear only where the allow-list says what non-address text they fold; and
    every allow-list entry is still in the code."""
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("audience/"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if _FOLDING.search(line):
                found.add((relative, line.strip()))
    unexplained = found - set(ALLOWED)
    assert not unexplained, f"fold addresses through digest.audience.addresses: {unexplained}"
    assert set(ALLOWED) <= found, f"stale allow-list entries: {set(ALLOWED) - found}"


def _subscriber_count(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Subscriber)) or 0)


@pytest.mark.parametrize("form", FORMS)
def test_one_person_in_any_form_is_one_subscriber(
    form: str, db: Database, settings: Settings
) -> None:
    """The same person written as ``form`` is stored in one form by the operator's subscribe
    and the sign-up form, is already there for an import, is the recipient a DSN and a
    relay's webhook name (the webhook bouncing that very subscriber), and is found by
    forget."""
    make_site(db, readers=1)
    with db.session() as session:
        daily = session.scalars(select(MailingList)).one()
        subscriber, _ = catalog.subscribe(session, daily, form, "Frank")
        assert subscriber.email == STORED
        sid = subscriber.id
    people = _subscriber_count(db)

    check = Digest(settings, db=db).readers.check_signup(
        "daily", email=form, name="", sections=[], ip="203.0.113.5"
    )
    assert check.signup is not None and check.signup.address == STORED

    rows = io.StringIO()
    csv.writer(rows).writerows([["email", "name"], [form, "Frank"]])
    report = catalog.import_subscribers(db, daily.id, io.BytesIO(rows.getvalue().encode()))
    assert (report.added, report.already, report.errors) == (0, 1, [])
    assert _subscriber_count(db) == people

    bounce = parse_report(dsn("bounces@gazette.example", form))
    assert bounce is not None and bounce.recipient == STORED

    body = json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "Email": form}).encode()
    outcome = apply_notices(db, settings, postmark_notices(body), "postmark")
    assert outcome.applied == 1 and _subscriber_count(db) == people
    with db.session() as session:
        bounced = session.get(Subscriber, sid)
        assert bounced is not None and bounced.status == SubscriberStatus.BOUNCED

    with db.session() as session:
        forgotten = forget(session, form)
    assert forgotten.found and forgotten.subscriber_id == sid and forgotten.address == STORED


@pytest.mark.unit
@pytest.mark.parametrize(
    ("written", "bare"),
    [
        ("a@b.example", "a@b.example"),
        ("  <a@b.example> ", "a@b.example"),
        ("mailto:a@b.example", "a@b.example"),
        ("rfc822; a@b.example", "a@b.example"),
        ('"Doe; Jane" <a@b.example>', "a@b.example"),
        ("Jane <mailto:a@b.example>", "a@b.example"),
        ("say; a@b.example", "a@b.example"),
        ("two words; a@b.example", "two words; a@b.example"),  # no address type: as written
    ],
)
def test_bare_address_reads_the_ways_addresses_are_quoted(written: str, bare: str) -> None:
    """bare_address takes off angle brackets, mailto:, a DSN's address type and a display
    name (quoted, even with a semicolon in it), and leaves anything else as written."""
    from digest.audience import bare_address

    assert bare_address(written) == bare
