"""The per-recipient message: structure, headers, and hostile text kept out of headers."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parseaddr

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.config import Settings
from digest.edition.build import Draft
from digest.edition.select import ArticleView, SectionBlock
from digest.mail.mime import (
    MessageTemplate,
    Recipient,
    address_header,
    encode_header,
    format_address,
    header_safe,
)
from digest.render.placeholders import PersonalTemplate, Placeholders
from digest.render.renderer import RenderedDigest
from digest.send.mailer import EditionMailer
from digest.store.models import MailingList
from digest.transports import Envelope, Outcome, SmtpConfig, SmtpTransport
from tests.conftest import SmtpSink

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


# -- headers that cannot be abused ----------------------------------------------------------

PHISH = "=?utf-8?q?Your_account_is_suspended?="
# Base64 for "\r\nBcc: x@evil.example": decoded by a receiver, a line break and a header.
CRLF_WORD = "=?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?="
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
EXPECTED = {
    "to",
    "date",
    "message-id",
    "list-unsubscribe",
    "from",
    "subject",
    "list-id",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
}


def _header_block(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def _raw(data: bytes, name: str) -> str:
    """A header's value as written, unfolded (folding removes only the CRLF)."""
    return b"".join(_lines(data, name)).split(b":", 1)[1].decode("ascii")[1:]


def _lines(data: bytes, name: str) -> list[bytes]:
    """The lines one header is written on."""
    lines = _header_block(data)
    key = name.lower().encode() + b":"
    start = next(i for i, line in enumerate(lines) if line.lower().startswith(key))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    return lines[start:end]


def _short(data: bytes) -> bool:
    """Every line of the headers made from names and subjects is at most 78 octets, and
    every header line at most 998."""
    ours = [line for h in ("To", "From", "Subject", "List-Id") for line in _lines(data, h)]
    return all(len(line) <= 78 for line in ours) and all(
        len(line) <= 998 for line in _header_block(data)
    )


def _display(data: bytes, name: str) -> str:
    """The display name a receiver shows for an address header: encoded words decoded and
    joined as RFC 2047 6.2 says (CPython's address parser puts spaces between them)."""
    phrase = _raw(data, name).rsplit(" <", 1)[0]
    if phrase.startswith("=?"):
        return str(make_header(decode_header(phrase)))
    if name == "List-Id":  # not an address header to the parser
        return parseaddr(_raw(data, name))[0]
    return str(_parse(data)[name].addresses[0].display_name)


def _template_from(from_name: str, subject: str, list_name: str) -> MessageTemplate:
    return MessageTemplate(
        from_name=from_name,
        from_address="digest@gazette.example",
        subject=subject,
        list_id=format_address(list_name, "daily.gazette.example"),
        rendered=RenderedDigest(_template().html, _template().text),
        unsubscribe_mailto="unsubscribe@gazette.example",
    )


def test_200_emoji_name_folds_into_short_lines() -> None:
    """A 200-emoji subscriber name, which once made a 1,331-octet To line that relays refuse,
    is encoded words of at most 75 characters on lines of at most 78."""
    name = "\U0001f600" * 200
    data = _template().build(_recipient(name=name))
    to_lines = _raw(data, "To")
    assert _short(data)
    assert all(len(word) <= 75 for word in to_lines.split(" ") if word.startswith("=?"))
    assert _display(data, "To") == name
    assert [a.addr_spec for a in _parse(data)["To"].addresses] == ["ann@example.com"]


def test_200_emoji_name_is_accepted_by_a_real_smtp_server(smtp_server: SmtpSink) -> None:
    """The message to a 200-emoji name is accepted by a real SMTP server (which refuses lines
    over 998 octets with a 500, once taken for a bounce) and shows the name whole."""
    name = "\U0001f600" * 200
    with SmtpTransport(SmtpConfig.from_url(smtp_server.url)) as transport:
        result = transport.send(
            Envelope("digest@gazette.example", "ann@example.com"),
            _template().build(_recipient(name=name)),
        )
    assert result.outcome == Outcome.SENT
    assert _display(smtp_server.received[0].data, "To") == name


@pytest.mark.parametrize("lookalike", [PHISH, CRLF_WORD, f"Ann {PHISH} Lee"])
def test_encoded_word_lookalikes_display_literally(lookalike: str) -> None:
    """Names, subjects, from names and list names that look like encoded words are encoded
    themselves, so receivers show the text as typed, never its decoding."""
    data = _template_from(lookalike, lookalike, lookalike).build(_recipient(name=lookalike))
    msg = _parse(data)
    assert str(msg["Subject"]) == lookalike
    assert _display(data, "To") == lookalike
    assert _display(data, "From") == lookalike
    assert _display(data, "List-Id") == lookalike
    assert msg["Bcc"] is None
    assert {k.lower() for k in msg} == EXPECTED


def test_bidi_controls_never_reach_a_header() -> None:
    """Bidi overrides and isolates are removed from names, subjects and list names."""
    hostile = f"Invoice{BIDI}fdp.exe"
    data = _template_from(hostile, hostile, hostile).build(_recipient(name=hostile))
    assert str(_parse(data)["Subject"]) == "Invoicefdp.exe"
    for header in ("To", "From", "List-Id"):
        assert _display(data, header) == "Invoicefdp.exe"


# Any text, with the characters attackers reach for over-represented.
_HOSTILE_CHARS = st.sampled_from(
    ["\r", "\n", "\r\n", "\x00", "\x85", "\u2028", '"', "\\", "<", ">", ",", ";", ":", "=?",
     "?=", "_", "=", " ", "\t", "\u202e", "\u2066", "\U0001f600", "é", "ش", "\u200f"]
)  # fmt: skip
_TEXT = st.lists(st.one_of(st.text(max_size=40), _HOSTILE_CHARS), max_size=40).map("".join)


# Heavy: each of 200 examples builds and parses a whole message from four kilobyte strings
# (seconds in all, mostly drawing the strings), so it runs with the full suite, not `-m unit`;
# test_hostile_subject_stays_one_header and its neighbours keep the quick check.
@pytest.mark.heavy
@hypothesis.settings(max_examples=200, deadline=None)
@given(name=_TEXT, subject=_TEXT, from_name=_TEXT, list_name=_TEXT)
def test_any_text_makes_short_headers_that_decode_to_the_cleaned_text(
    name: str, subject: str, from_name: str, list_name: str
) -> None:
    """For any name, subject, from name and list name: every header line is at most 78
    octets, no header is added, and each decodes to its input with controls removed."""
    data = _template_from(from_name, subject, list_name).build(_recipient(name=name))
    assert _short(data)
    msg = _parse(data)
    assert {k.lower() for k in msg} == EXPECTED
    assert str(msg["Subject"]) == header_safe(subject)
    assert [a.addr_spec for a in msg["To"].addresses] == ["ann@example.com"]
    assert [a.addr_spec for a in msg["From"].addresses] == ["digest@gazette.example"]
    for header, text in (("To", name), ("From", from_name), ("List-Id", list_name)):
        if header_safe(text):
            assert _display(data, header) == header_safe(text)


@pytest.mark.heavy  # 200 examples of up to 3,000 characters: seconds, as the one above
@hypothesis.settings(max_examples=200, deadline=None)
@given(value=st.one_of(_TEXT, st.text(min_size=900, max_size=3000)))
def test_encode_header_is_one_header_of_short_lines(value: str) -> None:
    """encode_header makes one Subject of lines of at most 78 octets that decodes to the
    cleaned input, however long or hostile the input."""
    data = encode_header("Subject", value)
    assert data.endswith(b"\r\n") and all(len(line) <= 78 for line in data.split(b"\r\n"))
    msg = _parse(data + b"\r\n")
    assert list(msg.keys()) == ["Subject"]
    assert str(msg["Subject"]) == header_safe(value)


@pytest.mark.heavy  # 200 examples of up to 2,000 characters
@hypothesis.settings(max_examples=200, deadline=None)
@given(value=st.one_of(_TEXT, st.text(max_size=2000)))
def test_address_header_never_writes_a_line_break_or_a_long_line(value: str) -> None:
    """address_header with any value, even one format_address did not make, writes one
    ASCII header of lines within 998 octets whose decoding holds no line break."""
    data = address_header("To", value)
    lines = data.split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) <= 998 for line in lines)
    assert all(line[:1] == b" " for line in lines[1:-1])
    decoded = str(make_header(decode_header(_raw(data, "To"))))
    assert "\r" not in decoded and "\n" not in decoded


@pytest.mark.heavy  # 300 examples
@hypothesis.settings(max_examples=300, deadline=None)
@given(name=_TEXT)
def test_format_address_keeps_one_address(name: str) -> None:
    """format_address with any name gives one printable ASCII address whose words fit a
    folded line, and whose display name decodes to the cleaned name."""
    value = format_address(name, "ann@example.com")
    assert value.isascii() and value.isprintable()
    assert all(len(word) <= 75 for word in value.split(" ")[:-1])
    data = address_header("To", value)
    assert [a.addr_spec for a in _parse(data)["To"].addresses] == ["ann@example.com"]
    if header_safe(name):
        assert _display(data, "To") == header_safe(name)
