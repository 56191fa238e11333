"""The bounded reader of inbound mail: what it reads out of headers, parameters, encoded words
and MIME parts, and each limit refusing a message with its reason."""

from __future__ import annotations

import base64

import pytest

from digest.feedback.reader import (
    MAX_PARAMETERS,
    Limits,
    MessageRefused,
    body_text,
    content_type,
    decode_words,
    parameters,
    read_message,
)

pytestmark = pytest.mark.unit

LIMITS = Limits()


def test_headers_are_unfolded_and_read_raw() -> None:
    """Folded fields come back unfolded (only the line breaks removed), names match in any
    case, the first of a repeated field wins, lines that are no field are skipped, and the
    body starts after the first empty line (CRLF or bare LF)."""
    lines = [b"Subject: one", b"  two", b"\tthree", b"no colon", b"X-A: 1", b"x-a: 2", b""]
    for eol in (b"\r\n", b"\n"):
        data = eol.join([*lines, b"body", b""])
        message = read_message(data, LIMITS)
        assert message.headers.get("subject") == "one two three"
        assert message.headers.get_all("X-A") == ["1", "2"]
        assert message.headers.get("Missing") == ""
        assert message.body == b"body" + eol
        assert message.content_type == "text/plain"


def test_multipart_parts_are_split_on_whole_delimiter_lines() -> None:
    """Preamble and epilogue are dropped, transport padding after a delimiter is allowed, a
    line that merely starts with the delimiter (``--Bx``) or holds it mid-line is content, and
    the line break before a delimiter belongs to it."""
    data = (
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\npreamble\r\n'
        b"--B  \r\nContent-Type: text/plain\r\n\r\nfirst\r\n--Bx\r\nstill --B first\r\n"
        b"--B\r\n\r\nsecond\r\n--B--\r\nepilogue\r\n--B\r\n\r\nignored\r\n"
    )
    message = read_message(data, LIMITS)
    assert [p.body for p in message.children] == [
        b"first\r\n--Bx\r\nstill --B first",
        b"second",
    ]
    assert message.children[0].content_type == "text/plain"


def test_an_enclosed_message_is_read_as_a_message() -> None:
    """A message/rfc822 part holds one entity: the enclosed message, its headers read."""
    data = (
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=R\r\n\r\n"
        b"--R\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <m@x>\r\nTo: a@b\r\n\r\nhi\r\n"
        b"--R--\r\n"
    )
    enclosed = read_message(data, LIMITS).children[0]
    assert enclosed.content_type == "message/rfc822"
    assert enclosed.children[0].headers.get("Message-ID") == "<m@x>"
    assert [p.content_type for p in read_message(data, LIMITS).walk()] == [
        "multipart/report",
        "message/rfc822",
        "text/plain",
    ]


def test_parameters_are_read_in_one_forward_pass() -> None:
    """Quoted values keep their ``;`` and unescape ``\\"``, an unclosed quote runs to the end,
    names are case-folded, the first of a name wins, junk items are skipped, and only the
    first MAX_PARAMETERS items are read."""
    assert parameters(' A=1; b="x;\\"y"; junk; =z; a=2; c="open;d=e') == {
        "a": "1",
        "b": 'x;"y',
        "c": "open;d=e",
    }
    many = parameters("; ".join(f"p{i}=v" for i in range(MAX_PARAMETERS * 3)))
    assert len(many) == MAX_PARAMETERS
    assert content_type("Multipart/Report ; report-type=x") == (
        "multipart/report",
        {"report-type": "x"},
    )
    assert content_type("not a type; a=b")[0] == "text/plain"


def test_encoded_words_are_decoded_and_bad_ones_kept() -> None:
    """Q and B words decode (white space between two words dropped), an unknown or non-text
    charset falls back to UTF-8, and a word that does not decode stays as written."""
    word_b = "=?utf-8?b?" + base64.b64encode("/unsubscribe/é".encode()).decode() + "?="
    assert decode_words("=?utf-8?q?https=3A//x?=  " + word_b + " tail") == (
        "https://x/unsubscribe/é tail"
    )
    assert decode_words("=?iso-8859-1?q?caf=E9?=") == "café"
    assert decode_words("=?punycode?q?abc-?=") == "abc-"
    assert decode_words("=?x-unknown?q?ok?=") == "ok"
    assert decode_words("=?utf-8?b?###?=") == "=?utf-8?b?###?="


def test_bodies_are_decoded_from_a_bounded_slice() -> None:
    """Base64 and quoted-printable bodies decode in their charset, and only the first
    ``limit`` encoded bytes are ever read (a cut base64 quantum is dropped, not an error)."""
    b64 = read_message(
        b"Content-Transfer-Encoding: base64\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + base64.encodebytes("héllo wörld".encode()),
        LIMITS,
    )
    assert body_text(b64, 1000) == "héllo wörld"
    assert body_text(b64, 6) == "hé"
    qp = read_message(
        b"Content-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain; "
        b"charset=iso-8859-1\r\n\r\ncaf=E9 =\r\nau lait\r\n",
        LIMITS,
    )
    assert body_text(qp, 1000) == "café au lait\r\n"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"x" * 1001, "message of 1001 bytes, over 1000"),
        (b"Subject: " + b"a" * 60 + b"\r\n\r\n", "header 'Subject' over 50 bytes"),
        (b"Subject: a\r\n " + b"b" * 50 + b"\r\n\r\n", "header 'Subject' over 50 bytes"),
        (b"A: 1\r\n" * 11 + b"\r\n", "more than 10 header fields in one block"),
        (b"junk\r\n" * 11 + b"\r\n", "more than 10 header fields in one block"),
        ((b"Subject: " + b"a" * 45 + b"\r\n") * 4 + b"\r\n", "header block over 200 bytes"),
        (b"Subject: " + b"a" * 45 + b"\r\n" + b" a\r\n" * 60, "header block over 200 bytes"),
        (
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\n" * 4,
            "more than 3 MIME parts",
        ),
        (b"Content-Type: message/rfc822\r\n\r\n" * 3, "MIME nesting deeper than 1 levels"),
    ],
)
def test_each_limit_refuses_the_message_with_its_reason(data: bytes, reason: str) -> None:
    """Over any limit (message size, one header, fields, header block, parts, depth), the
    message is refused with a one-line reason naming that limit."""
    limits = Limits(
        message_bytes=1000,
        header_bytes=50,
        header_block_bytes=200,
        headers=10,
        parts=3,
        depth=1,
    )
    with pytest.raises(MessageRefused) as refused:
        read_message(data, limits)
    assert refused.value.reason == reason
