"""Operator actions shared by the web API and the dashboard: preview, test copy, starting and
continuing a send. Plain functions over settings and a database, so neither web module has to
reach into the CLI (which prints as it goes) to do the same work."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import select

from digest.config import Settings
from digest.edition.build import Draft, build_edition, draft_edition, stored_draft
from digest.edition.select import local_today
from digest.errors import DigestError, InputError, NotFoundError
from digest.mail.mime import Recipient, random_message_id
from digest.runtime import make_mailer
from digest.send.batch import EditionMailer, mail_domain, send_until_done
from digest.service import catalog
from digest.store.db import Database
from digest.store.models import Edition, EditionStatus
from digest.transports import Envelope, Outcome, SmtpTransport, transport_for

log = logging.getLogger(__name__)

#: Transport failures a background send retries (after 2, 4, 8 s), as the CLI's in-process send.
BACKGROUND_RETRIES = 3


def parse_day(value: str | None) -> dt.date | None:
    """``YYYY-MM-DD`` or nothing; anything else is an InputError naming the value."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"date must be YYYY-MM-DD, not {value!r}") from exc


def sample_links(settings: Settings) -> dict[str, str]:
    """Links that stand in for a subscriber's own in previews and test copies: they lead to
    the test-copy page rather than to anyone's real unsubscribe."""
    base = settings.base_url.rstrip("/")
    return {
        "unsubscribe": f"{base}/unsubscribe/preview",
        "preferences": f"{base}/preferences/preview",
    }


def edition_draft(
    db: Database, settings: Settings, list_slug: str, day: dt.date | None
) -> tuple[Draft, Edition | None]:
    """What the list's edition of ``day`` (default: today in its zone) holds: the stored
    content if it was built, else a draft of what building it now would choose. Stores nothing."""
    with db.session() as session:
        mailing_list = catalog.get_list(session, list_slug)
        day = day or local_today(mailing_list.timezone)
        edition = session.scalars(
            select(Edition).where(Edition.list_id == mailing_list.id, Edition.edition_date == day)
        ).first()
        if edition is not None:
            return stored_draft(session, settings, edition), edition
        return draft_edition(session, settings, mailing_list, day), None


def preview_html(settings: Settings, draft: Draft) -> str:
    """The digest's HTML as a subscriber would see it, with sample personal links."""
    if not draft.sections:
        raise DigestError(
            f"no articles for {draft.mailing_list.slug} on {draft.day}: nothing to preview"
        )
    template = EditionMailer(settings).message_template(draft)
    return template.html.fill(sample_links(settings))


def edition_as_draft(db: Database, settings: Settings, edition_id: int) -> Draft:
    with db.session() as session:
        edition = session.get(Edition, edition_id)
        if edition is None:
            raise NotFoundError("edition", edition_id)
        return stored_draft(session, settings, edition)


def send_test_copy(settings: Settings, draft: Draft, to_address: str) -> tuple[str, str]:
    """Send one copy of the digest to ``to_address`` without touching the ledger.

    Returns (normalised address, the transport's detail: the outbox file, or the SMTP reply).
    """
    address = catalog.normalise_email(to_address)
    if not draft.sections:
        raise DigestError(
            f"no articles for {draft.mailing_list.slug} on {draft.day}: nothing to send"
        )
    template = make_mailer(settings).message_template(draft)
    domain = mail_domain(settings, draft.mailing_list)
    message = template.build(
        Recipient(address, "", sample_links(settings), random_message_id(domain))
    )
    label = f"{draft.mailing_list.slug}-{draft.day.isoformat()}-test"
    with transport_for(settings) as transport:
        result = transport.send(Envelope(template.from_address, address, label), message)
    if result.outcome != Outcome.SENT:
        raise DigestError(f"test copy to {address} refused: {result.code} {result.detail}")
    return address, result.detail


@dataclass
class SendStart:
    """What starting a send did: the edition, and whether anything will go out."""

    edition_id: int
    list_slug: str
    day: dt.date
    status: EditionStatus
    created: bool
    #: "queued" (batches for the workers), "background" (a thread here), or "nothing".
    mode: str = "nothing"
    batches: int = 0

    @property
    def sending(self) -> bool:
        return self.mode != "nothing"


@dataclass
class BackgroundSends:
    """In-process sends started from the web app, one thread per edition at most.

    A second thread on the same edition would be harmless (the ledger hands each row to one
    claimer) but pointless. Kept per app so tests can wait for the sends they started.
    """

    threads: dict[int, threading.Thread] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, db: Database, settings: Settings, edition_id: int) -> None:
        with self.lock:
            running = self.threads.get(edition_id)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(
                target=_send_in_background,
                args=(db, settings, edition_id),
                name=f"digest-send-{edition_id}",
                daemon=True,
            )
            self.threads[edition_id] = thread
            thread.start()

    def wait(self, timeout: float = 60.0) -> bool:
        """Join every send started so far; returns whether all of them finished."""
        with self.lock:
            threads = list(self.threads.values())
        for thread in threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in threads)


def _send_in_background(db: Database, settings: Settings, edition_id: int) -> None:
    try:
        report = send_until_done(
            db,
            make_mailer(settings),
            edition_id,
            lambda: transport_for(settings),
            retries=BACKGROUND_RETRIES,
        )
    except Exception:
        # Nobody waits on this thread: the log is the only place a crash can be seen. The
        # rows it did not reach stay in the ledger, and the next send finishes them.
        log.exception("background send of edition %s stopped", edition_id)
        return
    if report.error:
        log.warning("background send of edition %s stopped: %s", edition_id, report.error)


def probe_smtp(settings: Settings) -> None:
    """Connect to the SMTP server once, so an unreachable one is reported before anything is
    built rather than discovered by a thread nobody watches."""
    if not settings.smtp_url or settings.uses_broker:
        return
    with transport_for(settings) as probe:
        if isinstance(probe, SmtpTransport):
            probe.connect()


def continue_send(
    db: Database, settings: Settings, edition_id: int, background: BackgroundSends
) -> tuple[str, int]:
    """Hand a sending edition's open rows to the workers, or to a thread of this process.

    Returns (mode, batches queued).
    """
    if settings.uses_broker:
        from digest.worker.tasks import fan_out

        return "queued", fan_out(db, edition_id)
    background.start(db, settings, edition_id)
    return "background", 0


def start_send(
    db: Database,
    settings: Settings,
    list_slug: str,
    day: dt.date | None,
    background: BackgroundSends,
) -> SendStart:
    """Build the list's edition of ``day`` (once: a second call finds the first one's) and
    send it to everyone who does not have it yet."""
    probe_smtp(settings)
    with db.session() as session:
        mailing_list = catalog.get_list(session, list_slug)
        day = day or local_today(mailing_list.timezone)
        edition, created = build_edition(session, settings, mailing_list, day)
        start = SendStart(edition.id, list_slug, day, edition.status, created)
    if start.status == EditionStatus.READY:
        start.mode, start.batches = continue_send(db, settings, start.edition_id, background)
    return start
