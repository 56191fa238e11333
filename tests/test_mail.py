"""The per-recipient message: structure, headers, and hostile text kept out of headers."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.message import EmailMessage

from digest.config import Settings
from digest.edition.build import Draft
from digest.edition.select import ArticleView, SectionBlock
from digest.mail.mime import MessageTemplate, Recipient, encode_header, format_address
from digest.render.renderer import PersonalTemplate, Placeholders, RenderedDigest
from digest.send.batch import EditionMailer
from digest.store.models import MailingList

MARKS = Placeholders.fresh()
UNSUBSCRIBE = MARKS.token("unsubscribe")
PREFERENCES = MARKS.token("preferences")
HOSTILE = "Breaking\r\nBcc: victim@example.com =?UTF-8?Q?=0A?=X-Injected: 1"


def _parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _template(subject: str = "Hello") -> MessageTemplate:
    rendered = RenderedDigest(
        html=PersonalTemplate.split(f'<a href="{UNSUBSCRIBE}">Unsubscribe</a>', MARKS),
        text=PersonalTemplate.split(f"Unsubscribe:\n{UNSUBSCRIBE}\n", MARKS),
    )
    return MessageTemplate(
        from_name="Gazette",
        from_address="digest@gazette.example",
        subject=subject,
        list_id=format_address("Daily", "daily.gazette.example"),
        rendered=rendered,
        unsubscribe_mailto="unsubscribe@gazette.example",
    )


def _recipient(name: str = "Ann", email: str = "ann@example.com") -> Recipient:
    return Recipient(email, name, {"unsubscribe": "https://n.example/unsubscribe/tok"}, "id@x")


def test_hostile_subject_stays_one_header() -> None:
    """CR/LF and an encoded-word newline in a headline cannot add a header to the message."""
    data = _template(HOSTILE).build(_recipient())
    msg = _parse(data)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert "Bcc: victim@example.com" in str(msg["Subject"])
    header_block = data.split(b"\r\n\r\n", 1)[0]
    for line in header_block.split(b"\r\n"):
        assert line[:1] in (b" ", b"\t") or b":" in line
        assert not line.lower().startswith((b"bcc", b"x-injected"))


def test_hostile_display_name_is_quoted_not_parsed() -> None:
    """A subscriber name with quotes, commas and newlines stays inside the To display name."""
    data = _template().build(_recipient(name='Eve", evil@example.org\r\nBcc: x@example.org'))
    msg = _parse(data)
    assert msg["Bcc"] is None
    assert [a.addr_spec for a in msg["To"].addresses] == ["ann@example.com"]


def test_non_ascii_names_and_subject_round_trip() -> None:
    """UTF-8 names and subjects are encoded and decode back to the same text."""
    msg = _parse(_template("Nouvelles — Renée’s pick").build(_recipient(name="Renée Dubois")))
    assert str(msg["Subject"]) == "Nouvelles — Renée’s pick"
    assert msg["To"].addresses[0].display_name == "Renée Dubois"


def test_personal_link_fills_both_parts_and_header() -> None:
    """The unsubscribe placeholder becomes the recipient's link in text, HTML and headers."""
    msg = _parse(_template().build(_recipient()))
    assert (
        msg.get_body(("plain",)).get_content().strip().endswith("https://n.example/unsubscribe/tok")
    )
    assert 'href="https://n.example/unsubscribe/tok"' in msg.get_body(("html",)).get_content()
    assert str(msg["List-Unsubscribe"]).startswith("<https://n.example/unsubscribe/tok>")


def test_long_lines_are_safe_for_smtp() -> None:
    """Quoted-printable keeps every line within 78 characters plus CRLF, even for long links."""
    long_link = "https://n.example/unsubscribe/" + "x" * 300
    rendered = RenderedDigest(
        html=PersonalTemplate.split("<p>" + "word " * 400 + f"{UNSUBSCRIBE}</p>", MARKS),
        text=PersonalTemplate.split(UNSUBSCRIBE, MARKS),
    )
    template = MessageTemplate(
        from_name="G",
        from_address="d@g.example",
        subject="s",
        list_id="<l.g.example>",
        rendered=rendered,
        unsubscribe_mailto="u@g.example",
    )
    data = template.build(Recipient("a@example.com", "", {"unsubscribe": long_link}, "i@x"))
    body = data.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 78 for line in body.split(b"\r\n"))
    assert long_link in _parse(data).get_body(("html",)).get_content()


def test_header_encoding_folds_long_ascii() -> None:
    """A long ASCII header is folded onto continuation lines of at most 78 characters."""
    data = encode_header("Subject", "word " * 40)
    assert all(len(line) <= 78 for line in data.split(b"\r\n"))


def test_rendered_digest_escapes_feed_text(tmp_path: object) -> None:
    """Markup in a headline or teaser reaches the HTML escaped, never as a tag."""
    settings = Settings(secret_key="k", site_name="Gazette")
    when = dt.datetime(2026, 11, 24, 8)
    article = ArticleView(
        1, "national", "<script>alert(1)</script> & co", "<b>bold</b>", "https://n.example/a", when
    )
    draft = Draft(
        MailingList(slug="daily", name="Daily"),
        when.date(),
        [SectionBlock("national", "National", [article])],
        "Subject",
        "pre",
    )
    template = EditionMailer(settings).message_template(draft)
    html = template.html.fill({"unsubscribe": "u", "preferences": "p"})
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html
    assert template.html.names == {"unsubscribe", "preferences"}


def test_encoded_parts_decode_to_exactly_the_filled_template() -> None:
    """Pre-encoded segments plus per-recipient links decode to the same text as filling the
    template directly: soft line breaks add nothing, even around long links and dots."""
    html = ".lead {}\n" + "é word. " * 50 + f'x <a href="{UNSUBSCRIBE}">u</a> ' + "z" * 200
    text = f"Unsubscribe:\n{UNSUBSCRIBE}\nPreferences: {PREFERENCES} end \n"
    rendered = RenderedDigest(
        PersonalTemplate.split(html, MARKS), PersonalTemplate.split(text, MARKS)
    )
    template = MessageTemplate(
        from_name="G",
        from_address="d@g.example",
        subject="s",
        list_id="<l.g.example>",
        rendered=rendered,
        unsubscribe_mailto="u@g.example",
    )
    links = {
        "unsubscribe": "https://n.example/unsubscribe/" + "a.b-c_d" * 30,
        "preferences": "https://n.example/p?x=1&y=2",
    }
    msg = _parse(template.build(Recipient("a@example.com", "", links, "i@x")))
    # MIME's canonical line end is CRLF; the templates use LF.
    html_part = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    text_part = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert html_part == rendered.html.fill(links)
    assert text_part == rendered.text.fill(links)
