"""Personal links land only where the template put them, never where feed text spells a marker."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from digest.errors import DigestError, TemplateError
from digest.mail.mime import EncodedPart, MessageTemplate, Recipient
from digest.render.placeholders import LINK_NAMES, PersonalTemplate, Placeholders
from digest.render.renderer import RenderedDigest
from digest.send.mailer import EditionMailer
from digest.service.core import Digest
from digest.transports import Envelope, Outcome, SmtpConfig, SmtpTransport
from tests.conftest import SmtpSink
from tests.render import cases, htmlcheck


def _received(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_feed_text_spelling_a_placeholder_reaches_the_reader_unchanged(
    smtp_server: SmtpSink,
) -> None:
    """A feed link and headline spelling ``DGSTLINK0<name>0`` arrive over SMTP exactly as the
    feed wrote them; the reader's tokens appear only in the footer and List-Unsubscribe."""
    mailer = EditionMailer(cases.settings())
    template = mailer.message_template(cases.hostile_draft())
    links = mailer.personal_links(7, 1)
    message = template.build(Recipient("reader@example.com", "Reader", links, "m1@gazette.example"))
    with SmtpTransport(SmtpConfig.from_url(smtp_server.url)) as transport:
        result = transport.send(Envelope(template.from_address, "reader@example.com"), message)
    assert result.outcome == Outcome.SENT
    msg = _received(smtp_server.received[0].data)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()

    hrefs = htmlcheck.read(html).links
    assert hrefs.count(cases.SPOOF_URL) == 2  # headline and "Read more"
    assert [h for h in hrefs if h in links.values()] == [links["preferences"], links["unsubscribe"]]
    tokens = [url.rsplit("/", 1)[1] for url in links.values()]
    for part in (html, text):
        assert cases.SPOOF_HEADLINE in part
        assert "DGSTLINK0preferences0." in part
        for token in tokens:
            assert part.count(token) == 1, "a personal token outside its one footer link"
    assert cases.SPOOF_URL in text.splitlines()
    assert str(msg["List-Unsubscribe"]).startswith(f"<{links['unsubscribe']}>")


def test_previews_and_archive_show_a_spoofing_headline_literally() -> None:
    """The operator's preview and the public archive fill (sample or public links) a digest
    whose headline spells a placeholder of an unknown link: no error, text as written."""
    draft = cases.hostile_draft()
    html = Digest(cases.settings()).preview_html(draft)
    assert cases.SPOOF_HEADLINE in html
    template = EditionMailer(cases.settings()).template_for(1, draft, None)
    public = "https://news.example/subscribe/daily"
    page = template.html.fill({"unsubscribe": public, "preferences": public})
    assert 'href="https://wire.example.net/story?u=DGSTLINK0unsubscribe0&amp;p=' in page
    assert page.count(public) == 2


def test_every_render_draws_its_own_placeholders() -> None:
    """Two renders never share a token, and a template split on one render's tokens leaves
    another render's tokens as plain text."""
    first, second = Placeholders.fresh(), Placeholders.fresh()
    assert first.token("unsubscribe") != second.token("unsubscribe")
    assert first.token("unsubscribe").isalnum()
    text = f"a {first.token('unsubscribe')} b {second.token('preferences')} c"
    template = PersonalTemplate.split(text, first)
    assert template.names == {"unsubscribe"}
    filled = template.fill({"unsubscribe": "U"})
    assert filled == f"a U b {second.token('preferences')} c"


def test_only_known_link_names_can_be_placeholders() -> None:
    """A template holding a link name Digest does not fill cannot be made, and placeholders
    exist only for lower-case names."""
    with pytest.raises(ValueError, match="unknown personal links"):
        PersonalTemplate(("a", "evil", "b"))
    with pytest.raises(ValueError):
        Placeholders.fresh(("un-subscribe",))
    with pytest.raises(ValueError):
        Placeholders.fresh().token("evil")
    assert set(Placeholders.fresh().names) == set(LINK_NAMES)


def test_a_missing_link_is_a_digest_error_not_a_key_error() -> None:
    """Filling without a link the template needs raises TemplateError (a DigestError, which a
    send records as one failed recipient), in the text, the encoded part and the message."""
    marks = Placeholders.fresh()
    template = PersonalTemplate.split(f"x {marks.token('preferences')} y", marks)
    with pytest.raises(TemplateError, match="preferences"):
        template.fill({"unsubscribe": "u"})
    with pytest.raises(TemplateError, match="preferences"):
        EncodedPart(template).fill({"unsubscribe": "u"})
    message = MessageTemplate(
        from_name="G",
        from_address="d@g.example",
        subject="s",
        list_id="<l.g.example>",
        rendered=RenderedDigest(template, template),
        unsubscribe_mailto="u@g.example",
    )
    with pytest.raises(DigestError):
        message.build(Recipient("a@example.com", "", {"unsubscribe": "u"}, "i@x"))
    with pytest.raises(DigestError):
        message.build(Recipient("a@example.com", "", {"preferences": "p"}, "i@x"))
