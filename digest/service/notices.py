"""Mail Digest sends one at a time, outside an edition: the sign-up confirmation, and the note
to an address that is subscribed already. Built here, sent by the core through the same
mailer as every digest (DKIM-signed, rate-limited, through the configured transport), and on
a broker queued for the workers rather than sent from the web process.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.audience import mailbox_key
from digest.config import Settings
from digest.errors import NotFoundError
from digest.mail.mime import simple_message
from digest.mail.tokens import CONFIRM, PREFERENCES, TokenSigner
from digest.send.mailer import mail_domain
from digest.service.translations import wording
from digest.store.models import MailingList, Subscriber

__all__ = ["CONFIRM_NOTICE", "SUBSCRIBED_NOTICE", "Notice", "build_notice", "signup_mail_key"]

#: The kinds of notice.
CONFIRM_NOTICE = "confirm"
SUBSCRIBED_NOTICE = "already-subscribed"

#: Throttle kind of sign-up emails: one per mailbox and list in DIGEST_CONFIRM_MAIL_HOURS.
SIGNUP_MAIL = "signup-mail"


def signup_mail_key(address: str, list_id: int) -> str:
    """The sign-up mail limit's key: the mailbox without its ``+tag``, so ``victim+1@`` ...
    ``victim+20@`` share one allowance."""
    return f"{mailbox_key(address)}\x00{list_id}"


@dataclass(frozen=True)
class Notice:
    """One notice to send: its kind, to whom, about which list (and which sign-up, whose
    consent event a confirm link names). Plain ids, so it can travel in a Celery task."""

    kind: str
    subscriber_id: int
    list_id: int
    signup_id: int = 0

    def as_args(self) -> list[object]:
        return [self.kind, self.subscriber_id, self.list_id, self.signup_id]


@dataclass(frozen=True)
class BuiltNotice:
    """A notice ready for the transport: the envelope's addresses and the message."""

    from_address: str
    to_address: str
    message: bytes


def build_notice(
    settings: Settings, tokens: TokenSigner, subscriber: Subscriber, mailing_list: MailingList,
    notice: Notice,
) -> BuiltNotice:  # fmt: skip
    """The message of ``notice``, in the list's language. The To header carries the address
    alone: a name typed into a public form is nobody's to put in a header of mail sent to
    someone else's inbox."""
    base = settings.base_url.rstrip("/")
    words = wording(mailing_list.language)
    names = {"list": mailing_list.name, "site": settings.site_name}
    if notice.kind == CONFIRM_NOTICE:
        link = f"{base}/confirm/" + tokens.sign(
            CONFIRM, subscriber.id, mailing_list.id, notice.signup_id
        )
        subject = words.gettext("Confirm your subscription to %(list)s", **names)
        text = (
            words.gettext(
                "Please confirm that you want %(list)s from %(site)s at this address:", **names
            )
            + f"\n\n{link}\n\n"
            + words.gettext(
                "If you did not ask for it, ignore this email: nothing will be sent to you."
            )
            + "\n"
        )
    elif notice.kind == SUBSCRIBED_NOTICE:
        # The link names the list, so the preferences page speaks its language.
        link = f"{base}/preferences/" + tokens.sign(PREFERENCES, subscriber.id, mailing_list.id)
        subject = words.gettext("You already receive %(list)s", **names)
        text = (
            words.gettext(
                "Someone, probably you, asked to subscribe this address to %(list)s from "
                "%(site)s. It is subscribed already, so nothing has changed.",
                **names,
            )
            + "\n\n"
            + words.gettext("To choose sections or lists, or to unsubscribe:")
            + f"\n\n{link}\n"
        )
    else:
        raise NotFoundError("notice kind", notice.kind)
    from_address = mailing_list.from_address or settings.from_address
    domain = mail_domain(settings, mailing_list)
    message = simple_message(
        from_name=mailing_list.from_name or settings.site_name,
        from_address=from_address,
        to_name="",
        to_address=subscriber.email,
        subject=subject,
        text=text,
        domain=domain,
    )
    return BuiltNotice(from_address, subscriber.email, message)
