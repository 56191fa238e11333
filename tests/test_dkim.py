"""DKIM signing: real messages verify, tampering is caught, bad keys are reported at startup."""

from __future__ import annotations

import base64
import math
import random
import re
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from dkim.canonicalization import Relaxed

from digest.config import Settings, load_settings
from digest.errors import ConfigError
from digest.mail.dkim import SIGNED_HEADERS, DkimSigner, _relaxed_body, make_signer
from digest.mail.mime import MessageTemplate, Recipient, encode_header, format_address
from digest.ops.doctor import Check, run_checks
from digest.render.placeholders import PersonalTemplate, Placeholders
from digest.render.renderer import RenderedDigest
from digest.transports.base import Envelope, Outcome
from digest.transports.smtp import SmtpConfig, SmtpTransport
from tests.conftest import SmtpSink

DOMAIN = "gazette.example"
SELECTOR = "mail2026"
UNSUBSCRIBE = "https://n.example/unsubscribe/tok123"

# --- An RSA key made here from its numbers, written as PKCS#1 PEM and its public half as
# SubjectPublicKeyInfo DER: the numbers themselves can then be damaged on purpose.

_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, math.isqrt(p) + 1))]


def _probably_prime(n: int, rounds: int = 40) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, e: int) -> int:
    while True:
        n = secrets.randbits(bits) | (3 << (bits - 2)) | 1  # top two bits: p*q has 2*bits
        if math.gcd(e, n - 1) == 1 and _probably_prime(n):
            return n


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)])
    if n >= 0x80:
        length += n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


def _int(n: int) -> bytes:
    return _der(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))  # +1: room for a sign bit


def _private_pem(fields: Sequence[int]) -> bytes:
    """PKCS#1 RSAPrivateKey: version, n, e, d, p, q, d mod p-1, d mod q-1, q^-1 mod p."""
    der = _der(0x30, b"".join(_int(x) for x in fields))
    b64 = base64.b64encode(der).decode()
    body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n".encode()


@dataclass(frozen=True)
class RsaKey:
    fields: tuple[int, ...]
    pem: bytes
    public_der: bytes  # SubjectPublicKeyInfo, as published in DNS


def _rsa_key(bits: int) -> RsaKey:
    e = 65537
    if bits >= 1024:
        # Primes from OpenSSL: the pure-Python search takes about a second at this size.
        numbers = rsa.generate_private_key(e, bits).private_numbers()
        p, q = numbers.p, numbers.q
    else:  # smaller than OpenSSL will make, and quick in Python
        p, q = _prime(bits // 2, e), _prime(bits // 2, e)
    n, d = p * q, pow(e, -1, (p - 1) * (q - 1))
    fields = (0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))
    rsa_encryption = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    public = _der(0x30, _int(n) + _int(e))
    spki = _der(0x30, rsa_encryption + _der(0x03, b"\x00" + public))
    return RsaKey(fields, _private_pem(fields), spki)


@pytest.fixture(scope="module")
def key() -> RsaKey:
    return _rsa_key(2048)


# --- Helpers


ED_SELECTOR = "ed2026"


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _ed_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _ed_raw(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _dns(
    key: RsaKey, ed: ed25519.Ed25519PrivateKey | None = None, domain: str = DOMAIN
) -> Callable[..., bytes | None]:
    records = {
        f"{SELECTOR}._domainkey.{domain}.": b"v=DKIM1; k=rsa; p=" + base64.b64encode(key.public_der)
    }
    if ed is not None:
        public = ed.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        records[f"{ED_SELECTOR}._domainkey.{domain}."] = (
            b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)
        )

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name.decode())

    return txt


def _algorithms(message: bytes) -> list[str]:
    head = message.split(b"\r\n\r\n", 1)[0]
    return [a.decode() for a in re.findall(rb"(?m)^DKIM-Signature:.*?\ba=([a-z0-9-]+)", head)]


def _verifies(
    message: bytes,
    key: RsaKey,
    ed: ed25519.Ed25519PrivateKey | None = None,
    domain: str = DOMAIN,
) -> bool:
    """Whether the message has a signature and every one of them verifies."""
    count = len(_algorithms(message))
    return count > 0 and all(_verifies_one(message, i, key, ed, domain) for i in range(count))


def _verifies_one(
    message: bytes,
    index: int,
    key: RsaKey,
    ed: ed25519.Ed25519PrivateKey | None = None,
    domain: str = DOMAIN,
) -> bool:
    """Whether the index-th signature from the top verifies (dkimpy raises on some failures)."""
    try:
        return bool(dkim.DKIM(message).verify(idx=index, dnsfunc=_dns(key, ed, domain)))
    except dkim.DKIMException:
        return False


def _settings(key_file: Path | str) -> Settings:
    return Settings(dkim_domain=DOMAIN, dkim_selector=SELECTOR, dkim_key_file=str(key_file))


def _signer(key: RsaKey, tmp_path: Path) -> DkimSigner:
    path = tmp_path / "dkim.pem"
    path.write_bytes(key.pem)
    signer = make_signer(_settings(path))
    assert signer is not None
    return signer


def _signed_message(signer: DkimSigner, subject: str = "Morning briefing") -> bytes:
    marks = Placeholders.fresh()
    unsubscribe = marks.token("unsubscribe")
    rendered = RenderedDigest(
        html=PersonalTemplate.split(
            "<p>" + "News of the day. " * 40 + f'</p><a href="{unsubscribe}">Unsubscribe</a>', marks
        ),
        text=PersonalTemplate.split(f"News of the day.\nUnsubscribe: {unsubscribe}\n", marks),
    )
    template = MessageTemplate(
        from_name="Gazette",
        from_address=f"digest@{DOMAIN}",
        subject=subject,
        list_id=format_address("Daily", f"daily.{DOMAIN}"),
        rendered=rendered,
        unsubscribe_mailto=f"unsubscribe@{DOMAIN}",
        signer=signer,
    )
    recipient = Recipient("ann@example.com", "Ann Example", {"unsubscribe": UNSUBSCRIBE}, "m1@x")
    return template.build(recipient)


def _tags(message: bytes) -> dict[str, str]:
    msg = message_from_bytes(message, policy=policy.compat32)
    value = re.sub(r"\s+", "", str(msg["DKIM-Signature"]))
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


def _replace_in_header(message: bytes, old: bytes, new: bytes) -> bytes:
    head, body = message.split(b"\r\n\r\n", 1)
    assert head.count(old) == 1
    return head.replace(old, new) + b"\r\n\r\n" + body


# --- Tests


def test_signed_message_verifies(key: RsaKey, tmp_path: Path) -> None:
    """A digest built with the signer from make_signer verifies against the published key."""
    message = _signed_message(_signer(key, tmp_path))
    assert message.startswith(b"DKIM-Signature: ")
    assert _verifies(message, key)


def test_signature_tags_cover_the_list_headers(key: RsaKey, tmp_path: Path) -> None:
    """The signature is rsa-sha256, relaxed/relaxed, and h= covers From, Subject, List-*."""
    tags = _tags(_signed_message(_signer(key, tmp_path)))
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == (
        "rsa-sha256",
        "relaxed/relaxed",
        DOMAIN,
        SELECTOR,
    )
    signed = tags["h"].lower().split(":")
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= set(signed)
    assert {h.decode() for h in SIGNED_HEADERS} <= set(signed)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Subject: Morning briefing", b"Subject: Morning briefinG"),
        (f"<{UNSUBSCRIBE}>".encode(), f"<{UNSUBSCRIBE[:-1]}4>".encode()),
    ],
    ids=["subject", "list-unsubscribe-url"],
)
def test_changed_header_byte_fails_verification(
    key: RsaKey, tmp_path: Path, old: bytes, new: bytes
) -> None:
    """Changing one byte of the Subject or the List-Unsubscribe URL breaks the signature."""
    message = _signed_message(_signer(key, tmp_path))
    assert _verifies(message, key)
    assert not _verifies(_replace_in_header(message, old, new), key)


def test_added_second_header_fails_verification(key: RsaKey, tmp_path: Path) -> None:
    """A second Subject or List-Unsubscribe added after signing breaks the signature."""
    message = _signed_message(_signer(key, tmp_path))
    for extra in (b"Subject: Click here\r\n", b"List-Unsubscribe: <https://evil.example/>\r\n"):
        assert not _verifies(
            _replace_in_header(message, b"\r\nTo: ", b"\r\n" + extra + b"To: "), key
        )


def test_signed_message_parses_and_has_only_crlf(key: RsaKey, tmp_path: Path) -> None:
    """The signed message has no bare LF and parses cleanly with the email package."""
    message = _signed_message(_signer(key, tmp_path), subject="Nouvelles — Renée’s pick " * 3)
    assert message.count(b"\n") == message.count(b"\r\n")
    msg = message_from_bytes(message, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects and all(not part.defects for part in msg.walk())
    assert str(msg["Subject"]) == ("Nouvelles — Renée’s pick " * 3).strip()
    assert msg["DKIM-Signature"] is not None and msg["List-Unsubscribe-Post"] is not None
    plain = msg.get_body(("plain",))
    assert plain is not None and UNSUBSCRIBE in plain.get_content()
    assert _verifies(message, key)


def test_key_file_with_crlf_line_ends_is_accepted(key: RsaKey, tmp_path: Path) -> None:
    """A PEM file saved with CRLF line ends (edited on Windows) signs like an LF one."""
    path = tmp_path / "dkim.pem"
    path.write_bytes(key.pem.replace(b"\n", b"\r\n"))
    signer = make_signer(_settings(path))
    assert signer is not None and signer.key_bits == 2048
    assert _verifies(_signed_message(signer), key)


def test_make_signer_is_none_without_dkim_settings() -> None:
    """Without DKIM settings, no signer: messages go out unsigned."""
    assert make_signer(Settings()) is None


def test_missing_key_file_is_a_config_error(tmp_path: Path) -> None:
    """A key file that does not exist is a one-line ConfigError naming the file."""
    path = tmp_path / "absent.pem"
    with pytest.raises(ConfigError, match=r"absent\.pem") as caught:
        make_signer(_settings(path))
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.parametrize(
    "content",
    [
        b"not a key at all\n",
        b"-----BEGIN RSA PRIVATE KEY-----\nnot base64!\n-----END RSA PRIVATE KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\nMAwwCgYIKoZIzj0DAQc=\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA "
        b"PRIVATE KEY-----\n",
    ],
    ids=["text", "bad-base64", "public-key", "encrypted"],
)
def test_non_key_file_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    """A file that is not an unencrypted PEM RSA private key is a one-line ConfigError."""
    path = tmp_path / "dkim.pem"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"dkim\.pem") as caught:
        make_signer(_settings(path))
    assert "\n" not in str(caught.value)


def test_damaged_key_is_a_config_error(key: RsaKey, tmp_path: Path) -> None:
    """A key that parses but whose numbers do not belong together is refused, not used."""
    fields = list(key.fields)
    fields[8] += 1  # the CRT coefficient dkimpy signs with
    with pytest.raises(ConfigError, match="damaged"):
        DkimSigner(DOMAIN, SELECTOR, _private_pem(fields))


def test_short_key_is_a_config_error() -> None:
    """A key under 1024 bits, which receivers ignore, is refused."""
    with pytest.raises(ConfigError, match="512 bits"):
        DkimSigner(DOMAIN, SELECTOR, _rsa_key(512).pem)


@pytest.mark.parametrize("selector", ["mail\r\nBcc: x", "mail\n", "mail; d=evil.example", ""])
def test_bad_selector_is_a_config_error(key: RsaKey, selector: str) -> None:
    """A selector that is not a DNS name cannot reach the DKIM-Signature header."""
    with pytest.raises(ConfigError, match="selector"):
        DkimSigner(DOMAIN, selector, key.pem)


# --- Ed25519 beside RSA, odd messages, delivery, settings


def _both(key: RsaKey, ed: ed25519.Ed25519PrivateKey) -> DkimSigner:
    return DkimSigner(
        DOMAIN, SELECTOR, key.pem, ed25519_selector=ED_SELECTOR, ed25519_key=_ed_pem(ed)
    )


def _raw(headers: Sequence[bytes], body: bytes) -> bytes:
    return b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


_HEADERS = (
    b"From: Gazette <digest@gazette.example>",
    b"To: ann@example.com",
    b"Subject: Morning briefing",
    b"Date: Thu, 26 Nov 2026 06:00:00 +0000",
    b"Message-ID: <m1@gazette.example>",
)

ODD_MESSAGES = {
    "long-folded-headers": _raw(
        [
            b"From:   Gazette \t <digest@gazette.example>  ",
            b"To: "
            + b", ".join(b"reader%d@example.com" % i for i in range(12)).replace(
                b", reader6", b",\r\n\treader6"
            ),
            encode_header("Subject", "A long subject about the news of the day " * 6).rstrip(),
            b"Date: Thu, 26 Nov 2026 06:00:00 +0000",
            b"Message-ID: <m1@gazette.example>",
            b"List-Unsubscribe: <https://n.example/u/1>,\r\n   \t<mailto:u@n.example>",
        ],
        b"Body\r\n",
    ),
    "non-ascii-encoded-words": _raw(
        [
            *_HEADERS[:2],
            encode_header("Subject", "Nouvelles — Renée’s pick: 東京の天気 " * 4).rstrip(),
            *_HEADERS[3:],
        ],
        b"Caf=C3=A9\r\n",
    ),
    "trailing-blank-lines": _raw(_HEADERS, b"Last line\r\n\r\n\r\n \r\n\t\r\n\r\n"),
    "trailing-whitespace": _raw(
        _HEADERS, b"spaces   \r\ntabs\t\t\r\nmixed \t \r\nin  the\t middle\r\n"
    ),
    "dot-leading-lines": _raw(_HEADERS, b".hidden\r\n..two dots\r\n.\r\nafter the dot\r\n"),
    "empty-body": _raw(_HEADERS, b""),
    "blank-lines-only": _raw(_HEADERS, b"\r\n\r\n\r\n"),
    "no-final-crlf": _raw(_HEADERS, b"first\r\nlast line with a space "),
}


def test_rsa_and_ed25519_signatures_both_verify(
    key: RsaKey, ed_key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    """With the Ed25519 settings, a digest carries an RSA then an Ed25519 signature; both verify."""
    path = tmp_path / "ed25519.pem"
    path.write_bytes(_ed_pem(ed_key))
    rsa_path = tmp_path / "dkim.pem"
    rsa_path.write_bytes(key.pem)
    settings = _settings(rsa_path).replace(
        dkim_ed25519_selector=ED_SELECTOR, dkim_ed25519_key_file=str(path)
    )
    signer = make_signer(settings)
    assert signer is not None and signer.algorithms == ("rsa-sha256", "ed25519-sha256")
    message = _signed_message(signer)
    assert _algorithms(message) == ["rsa-sha256", "ed25519-sha256"]
    assert _verifies(message, key, ed_key)
    ed_only = message[message.index(b"DKIM-Signature: v=1; a=ed25519") :]
    assert _algorithms(ed_only) == ["ed25519-sha256"] and _verifies(ed_only, key, ed_key)


@pytest.mark.parametrize("form", ["seed", "seed+public"])
def test_raw_base64_ed25519_key_is_accepted(
    key: RsaKey, ed_key: ed25519.Ed25519PrivateKey, form: str
) -> None:
    """The raw key in base64 (dkimpy's 32-byte seed, libsodium's 64 bytes) signs like PEM."""
    raw = _ed_raw(ed_key)
    if form == "seed+public":
        raw += ed_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signer = DkimSigner(
        DOMAIN,
        SELECTOR,
        key.pem,
        ed25519_selector=ED_SELECTOR,
        ed25519_key=base64.b64encode(raw) + b"\n",
    )
    assert _verifies(_signed_message(signer), key, ed_key)


@pytest.mark.parametrize("name", list(ODD_MESSAGES))
def test_odd_messages_verify(key: RsaKey, ed_key: ed25519.Ed25519PrivateKey, name: str) -> None:
    """Folded, encoded, whitespace-laden, dot-leading and empty messages verify, both algorithms."""
    message = _both(key, ed_key)(ODD_MESSAGES[name])
    assert _algorithms(message) == ["rsa-sha256", "ed25519-sha256"]
    assert message.count(b"\n") == message.count(b"\r\n")
    assert _verifies(message, key, ed_key)


@pytest.mark.parametrize("name", list(ODD_MESSAGES))
def test_signatures_survive_smtp_delivery(
    key: RsaKey, ed_key: ed25519.Ed25519PrivateKey, smtp_server: SmtpSink, name: str
) -> None:
    """What a real SMTP server receives (dot-stuffed, final CRLF added) still verifies."""
    message = _both(key, ed_key)(ODD_MESSAGES[name])
    with SmtpTransport(SmtpConfig.from_url(smtp_server.url)) as transport:
        result = transport.send(Envelope(f"digest@{DOMAIN}", "ann@example.com"), message)
    assert result.outcome is Outcome.SENT
    (received,) = smtp_server.received
    assert _verifies(received.data, key, ed_key)


def test_relaxed_body_matches_dkimpy_on_random_bodies() -> None:
    """The fast relaxed body canonicalisation gives dkimpy's result on any CRLF body."""
    rng = random.Random(6376)
    pieces = [b" ", b"  ", b"\t", b" \t ", b"\r\n", b"\r\n\r\n", b"a", b"=20", b".", b"word"]
    for _ in range(3000):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30)))
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"").replace(b"\n", b"\r\n")
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"  # the signer's input always ends so (see _wire_form)
        assert _relaxed_body(body) == Relaxed.canonicalize_body(body), body


def test_relaxed_canonicalisation_tolerates_relaying(
    key: RsaKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    """Refolding headers, changing header-name case and padding line ends with spaces (what
    relays may do) keep both signatures valid: the signed form really is relaxed/relaxed."""
    message = _both(key, ed_key)(ODD_MESSAGES["trailing-whitespace"])
    head, body = message.split(b"\r\n\r\n", 1)
    head = head.replace(b"Subject: Morning briefing", b"SUBJECT:\tMorning \r\n  briefing  ")
    body = body.replace(b"\r\n", b"  \r\n").replace(b"in  the", b"in \t the") + b"\r\n\r\n"
    assert _verifies(head + b"\r\n\r\n" + body, key, ed_key)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"Last line", b"Last linE"),
        lambda m: m[:-2] + b"One more line\r\n",
        lambda m: m.replace(b"\r\nTo: ", b"\r\nFrom: Evil <evil@evil.example>\r\nTo: "),
        lambda m: m.replace(b"Message-ID: <m1@", b"Message-ID: <m2@"),
    ],
    ids=["body-byte", "body-line-added", "added-from", "message-id"],
)
def test_tampering_fails_both_signatures(
    key: RsaKey, ed_key: ed25519.Ed25519PrivateKey, tamper: Callable[[bytes], bytes]
) -> None:
    """A changed body, an added From or a changed header breaks the RSA and the Ed25519 one."""
    message = _both(key, ed_key)(ODD_MESSAGES["trailing-blank-lines"])
    changed = tamper(message)
    assert changed != message
    assert _algorithms(changed) == ["rsa-sha256", "ed25519-sha256"]
    assert not _verifies_one(changed, 0, key, ed_key)
    assert not _verifies_one(changed, 1, key, ed_key)


def test_signature_header_lines_stay_short(key: RsaKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    """Every line of the DKIM-Signature headers fits 78 columns, even with a 190-octet domain."""
    domain = ".".join(["d" * 62, "e" * 62, "f" * 62, "example"])
    signer = DkimSigner(
        domain, SELECTOR, key.pem, ed25519_selector=ED_SELECTOR, ed25519_key=_ed_pem(ed_key)
    )
    message = signer(
        ODD_MESSAGES["long-folded-headers"].replace(b"gazette.example", domain.encode())
    )
    head = message[: message.index(b"\r\nFrom:")]
    lines = head.split(b"\r\n")
    assert max(len(line) for line in lines if not line.startswith(b" d=")) <= 78
    assert max(len(line) for line in lines) < 998
    assert _verifies(message, key, ed_key, domain)


def test_one_signer_serves_several_threads(key: RsaKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    """One signer shared by threads signing different messages at once gets every one right."""
    signer = _both(key, ed_key)
    messages = [ODD_MESSAGES["trailing-whitespace"].replace(b"m1@", b"m%d@" % i) for i in range(64)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        signed = list(pool.map(signer, messages))
    assert all(_verifies(m, key, ed_key) for m in signed)
    assert len({_tags(m)["b"] for m in signed}) == len(messages)


def test_encrypted_pkcs8_rsa_key_is_a_config_error(key: RsaKey) -> None:
    """A real encrypted PKCS#8 key is refused as encrypted, not as an unreadable file."""
    private = ec.generate_private_key(ec.SECP256R1())  # any key: the check is on the envelope
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw"))
    with pytest.raises(ConfigError, match="encrypted"):
        DkimSigner(DOMAIN, SELECTOR, pem)


def test_ec_key_is_not_an_rsa_key() -> None:
    """A PEM private key of another kind is refused as not RSA."""
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    with pytest.raises(ConfigError, match="not a PEM RSA private key"):
        DkimSigner(DOMAIN, SELECTOR, pem)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("encrypted", "encrypted"),
        ("rsa", "not an Ed25519 private key"),
        (b"not base64 at all!", "not an Ed25519 private key"),
        (base64.b64encode(b"x" * 31), "31 bytes"),
        ("wrong-public-half", "damaged"),
    ],
    ids=["encrypted", "rsa-pem", "bad-base64", "short", "wrong-public-half"],
)
def test_bad_ed25519_key_is_a_config_error(
    key: RsaKey, ed_key: ed25519.Ed25519PrivateKey, content: bytes | str, message: str
) -> None:
    """An Ed25519 key file that is encrypted, RSA, not base64, short or inconsistent is refused."""
    data = {
        "encrypted": ed_key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw")
        ),
        "rsa": key.pem,
        "wrong-public-half": base64.b64encode(_ed_raw(ed_key) + b"\x00" * 32),
    }.get(content, content)
    assert isinstance(data, bytes)
    with pytest.raises(ConfigError, match=message) as caught:
        DkimSigner(DOMAIN, SELECTOR, key.pem, ed25519_selector=ED_SELECTOR, ed25519_key=data)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "env",
    [
        {"DIGEST_DKIM_ED25519_SELECTOR": ED_SELECTOR},
        {"DIGEST_DKIM_ED25519_KEY_FILE": "/etc/ed.key"},
        {
            "DIGEST_DKIM_ED25519_SELECTOR": ED_SELECTOR,
            "DIGEST_DKIM_ED25519_KEY_FILE": "/etc/ed.key",
        },
    ],
    ids=["selector-only", "key-only", "without-rsa"],
)
def test_incomplete_ed25519_settings_are_a_config_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Ed25519 needs its selector and key, and the RSA settings beside them."""
    with pytest.raises(ConfigError, match=r"(?i)ed25519"):
        empty = tmp_path / "digest.toml"
        empty.write_text("")
        load_settings(empty, env, ensure_secret=False)
    with pytest.raises(ConfigError, match=r"(?i)ed25519"):
        make_signer(
            Settings(
                dkim_ed25519_selector=env.get("DIGEST_DKIM_ED25519_SELECTOR"),
                dkim_ed25519_key_file=env.get("DIGEST_DKIM_ED25519_KEY_FILE"),
            )
        )


def test_missing_ed25519_key_file_is_a_config_error(key: RsaKey, tmp_path: Path) -> None:
    """An Ed25519 key file that does not exist is a ConfigError naming it, before any mail."""
    rsa_path = tmp_path / "dkim.pem"
    rsa_path.write_bytes(key.pem)
    settings = _settings(rsa_path).replace(
        dkim_ed25519_selector=ED_SELECTOR, dkim_ed25519_key_file=str(tmp_path / "ed-absent.key")
    )
    with pytest.raises(ConfigError, match=r"ed-absent\.key"):
        make_signer(settings)


def _doctor_dkim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> Check:
    monkeypatch.chdir(tmp_path)
    for name in ("DIGEST_BROKER_URL", "DIGEST_SMTP_URL", "DIGEST_CONFIG", "DIGEST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "doctor-secret")
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'digest.db'}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (check,) = [c for c in run_checks() if c.name == "dkim"]
    return check


def test_doctor_names_both_dkim_records(
    key: RsaKey, ed_key: ed25519.Ed25519PrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digest doctor` shows the DNS names and algorithms of both signatures when they work."""
    (tmp_path / "rsa.pem").write_bytes(key.pem)
    (tmp_path / "ed.key").write_bytes(base64.b64encode(_ed_raw(ed_key)))
    check = _doctor_dkim(
        monkeypatch,
        tmp_path,
        {
            "DIGEST_DKIM_DOMAIN": DOMAIN,
            "DIGEST_DKIM_SELECTOR": SELECTOR,
            "DIGEST_DKIM_KEY_FILE": str(tmp_path / "rsa.pem"),
            "DIGEST_DKIM_ED25519_SELECTOR": ED_SELECTOR,
            "DIGEST_DKIM_ED25519_KEY_FILE": str(tmp_path / "ed.key"),
        },
    )
    assert check.status == "ok"
    assert f"{SELECTOR}._domainkey.{DOMAIN}" in check.detail
    assert f"{ED_SELECTOR}._domainkey.{DOMAIN}" in check.detail
    assert "ed25519-sha256" in check.detail


def test_doctor_fails_on_a_bad_ed25519_key(
    key: RsaKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digest doctor` fails the DKIM line, naming the file, when the Ed25519 key is unusable."""
    (tmp_path / "rsa.pem").write_bytes(key.pem)
    (tmp_path / "ed.key").write_bytes(key.pem)
    check = _doctor_dkim(
        monkeypatch,
        tmp_path,
        {
            "DIGEST_DKIM_DOMAIN": DOMAIN,
            "DIGEST_DKIM_SELECTOR": SELECTOR,
            "DIGEST_DKIM_KEY_FILE": str(tmp_path / "rsa.pem"),
            "DIGEST_DKIM_ED25519_SELECTOR": ED_SELECTOR,
            "DIGEST_DKIM_ED25519_KEY_FILE": str(tmp_path / "ed.key"),
        },
    )
    assert check.status == "fail" and "ed.key" in check.detail and "Ed25519" in check.detail
