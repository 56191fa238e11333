"""DKIM signing: real messages verify, tampering is caught, bad keys are reported at startup."""

from __future__ import annotations

import base64
import math
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest

from digest.config import Settings
from digest.errors import ConfigError
from digest.mail.dkim import SIGNED_HEADERS, DkimSigner, make_signer
from digest.mail.mime import MessageTemplate, Recipient, format_address
from digest.render.renderer import PersonalTemplate, Placeholders, RenderedDigest

DOMAIN = "gazette.example"
SELECTOR = "mail2026"
UNSUBSCRIBE = "https://n.example/unsubscribe/tok123"

# --- An RSA key made here with the standard library (the project does not depend on
# ``cryptography``), written as PKCS#1 PEM and its public half as SubjectPublicKeyInfo DER.

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


def _dns(key: RsaKey) -> Callable[..., bytes | None]:
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(key.public_der)

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return txt


def _verifies(message: bytes, key: RsaKey) -> bool:
    return bool(dkim.verify(message, dnsfunc=_dns(key)))


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
