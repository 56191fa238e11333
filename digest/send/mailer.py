"""The mailer: each edition variant's message built once, personalised per recipient.

The costly work (Jinja2, premailer, header encoding) happens once per edition
and section variant, cached per process; per recipient there is a token
signature, a join of ready segments, quoted-printable encoding and, when
configured, a DKIM signature.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urlsplit

from digest.config import Settings
from digest.edition.build import Draft, variant_draft
from digest.edition.select import SectionBlock
from digest.errors import DigestError
from digest.mail.mime import MessageTemplate, format_address
from digest.mail.msgid import signer_for
from digest.mail.tokens import PREFERENCES, UNSUBSCRIBE, TokenSigner
from digest.mail.tracking import CLICK, OPEN, LinkSigner
from digest.mail.verp import return_path
from digest.render.context import DigestContext, digest_context
from digest.render.placeholders import PIXEL
from digest.render.renderer import Renderer
from digest.send.ratelimit import NoLimit, RateLimiter
from digest.store.models import MailingList

#: Edition variants kept rendered per process (each is about 100 KB).
TEMPLATE_CACHE_SIZE = 64


def mail_domain(settings: Settings, mailing_list: MailingList | None = None) -> str:
    address = (mailing_list and mailing_list.from_address) or settings.from_address
    return address.rpartition("@")[2] or "localhost"


class EditionMailer:
    """Builds each edition variant's message once and personalises it per recipient."""

    def __init__(
        self,
        settings: Settings,
        renderer: Renderer | None = None,
        signer: Callable[[bytes], bytes] | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.renderer = renderer or Renderer(settings.templates_dir)
        self.tokens = TokenSigner(settings.secret)
        self.tracking = LinkSigner(settings.secret)
        self.dkim_signer = signer
        self.rate_limiter: RateLimiter = rate_limiter or NoLimit()
        # Bounded: a worker lives for months, and yesterday's editions are not sent again.
        self._templates: OrderedDict[tuple[int, tuple[str, ...]], MessageTemplate] = OrderedDict()

    # -- once per edition variant -------------------------------------------------
    def context(self, draft: Draft, links: dict[str, str] | None = None) -> DigestContext:
        """The template context: the list's language and direction, placeholders for the
        personal links, the archive page for "view in browser" and "N more in ..."."""
        return digest_context(self.settings, draft, links)

    def template_for(
        self, edition_id: int, draft: Draft, wanted: list[str] | None
    ) -> MessageTemplate:
        """The message of the readers who chose ``wanted`` (None: every section). DigestError
        when their sections have nothing today and the list skips them."""
        sections = draft.sections_for(wanted)
        if not sections:
            raise DigestError("nothing in the reader's sections in this edition")
        return self.template_of(edition_id, draft, sections)

    def template_of(
        self, edition_id: int, draft: Draft, sections: list[SectionBlock]
    ) -> MessageTemplate:
        """The message of the readers who get ``sections`` (``Draft.sections_for`` of their
        choice, not empty), with a subject and preview line from those sections' headlines;
        made once per edition and variant, then kept."""
        key = (edition_id, tuple(s.slug for s in sections))
        template = self._templates.get(key)
        if template is None:
            template = self.message_template(variant_draft(self.settings, draft, sections))
            self._templates[key] = template
            if len(self._templates) > TEMPLATE_CACHE_SIZE:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(key)
        return template

    def forget(self, edition_id: int) -> None:
        """Drop the edition's rendered variants: an editor changed it, and what is sent
        from now on is rendered again from its new content."""
        for key in [k for k in self._templates if k[0] == edition_id]:
            del self._templates[key]

    def check(self, draft: Draft) -> None:
        """Render the draft's templates (Jinja2 only, no inlining): a broken template, the
        list's own or the default, raises TemplateError with file and line before any
        edition is stored or any message sent."""
        if draft.sections:
            self.renderer.for_list(draft.mailing_list.template_dir).check(self.context(draft))

    def message_template(self, draft: Draft) -> MessageTemplate:
        lst = draft.mailing_list
        domain = mail_domain(self.settings, lst)
        host = urlsplit(self.settings.base_url).hostname or domain
        return MessageTemplate(
            from_name=lst.from_name or self.settings.site_name,
            from_address=lst.from_address or self.settings.from_address,
            subject=draft.subject,
            list_id=format_address(lst.name, f"{lst.slug}.{host}"),
            # The list's own template folder, if it names one, in front of the default.
            rendered=self.renderer.for_list(lst.template_dir).render_digest(self.context(draft)),
            unsubscribe_mailto=self.settings.unsubscribe_mailto or f"unsubscribe@{domain}",
            signer=self.dkim_signer,
        )

    # -- once per recipient ---------------------------------------------------------
    def return_path(self, template: MessageTemplate, delivery_id: int) -> str:
        """The envelope sender (MAIL FROM) of one delivery: where bounces go. With a bounce
        domain it names the delivery (VERP), so a bounce says whose it is."""
        return return_path(self.settings, delivery_id, template.from_address)

    def message_id(self, edition_id: int, delivery_id: int, domain: str) -> str:
        """The Message-ID of one ledger row: the same for a resend, unique per recipient, and
        signed, so a report quoting it can act on that delivery and a guessed one cannot
        (``digest.mail.msgid``)."""
        return signer_for(self.settings.secret).message_id(edition_id, delivery_id, domain)

    def personal_links(
        self,
        subscriber_id: int,
        list_id: int,
        *,
        template: MessageTemplate | None = None,
        edition_id: int = 0,
        delivery_id: int = 0,
    ) -> dict[str, str]:
        """The recipient's own links; with ``template``, also a tracked link for each article
        it tracks (and its open pixel), naming ``delivery_id`` of ``edition_id``."""
        base = self.settings.base_url.rstrip("/")
        links = {
            "unsubscribe": f"{base}/unsubscribe/"
            + self.tokens.sign(UNSUBSCRIBE, subscriber_id, list_id),
            # Naming the list lets the preferences page speak its language.
            "preferences": f"{base}/preferences/"
            + self.tokens.sign(PREFERENCES, subscriber_id, list_id),
        }
        if template is not None:
            sign = self.tracking.sign
            for article_id, name in template.tracked_links:
                links[name] = f"{base}/c/{sign(CLICK, edition_id, article_id, delivery_id)}"
            if template.has_pixel:
                links[PIXEL] = f"{base}/o/{sign(OPEN, edition_id, 0, delivery_id)}"
        return links


def make_mailer(settings: Settings) -> EditionMailer:
    """A mailer with the DKIM signer and rate limiter the settings ask for: the one way every
    face of Digest (CLI, web, worker) gets a mailer, so they all sign and throttle alike."""
    from digest.mail.dkim import make_signer
    from digest.send.ratelimit import make_rate_limiter

    return EditionMailer(
        settings, signer=make_signer(settings), rate_limiter=make_rate_limiter(settings)
    )
