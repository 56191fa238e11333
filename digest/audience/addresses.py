"""What an email address is, once: the form it is stored and compared in, the mailbox behind
it, and what is kept of it when its owner asks to be forgotten.

Every path that meets an address (the sign-up form, an import, the operator, a bounce report,
a relay's webhook, ``forget``) turns it into the stored form here, so one person cannot be two
rows, and an address written differently (``Frank@Bücher.de`` against its punycode form) is
still found.
"""

from __future__ import annotations

import hashlib
import re

import email_validator
from email_validator import EmailNotValidError, validate_email

from digest.errors import InputError
from digest.ingest.text import one_line

__all__ = [
    "EMAIL_MAX_LENGTH",
    "HASH_MARK",
    "PLACEHOLDER_DOMAIN",
    "address_domain",
    "address_hash",
    "bare_address",
    "clean_name",
    "comparable_address",
    "is_placeholder",
    "lookup_form",
    "mailbox_key",
    "normalise_email",
    "placeholder_address",
]

#: The longest address email-validator accepts, in characters of an ASCII address.
EMAIL_MAX_LENGTH = 254
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A plain ASCII address: dot-atom local part, LDH labels, an alphabetic top-level domain.
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
# Bidi embeddings, overrides, isolates and marks: invisible, and able to make a name read
# backwards or pull text next to it out of order.
_BIDI_CONTROL = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# The address type before a DSN field's address: "rfc822", "utf-8".
_ADDRESS_TYPE = re.compile(r"[A-Za-z0-9-]{1,20}")

#: Fixed, so the same address always gives the same hash on every installation's data.
HASH_PREFIX = "digest.forgotten:"
#: How a hashed entry is told apart from an address in ``suppressions.email``.
HASH_MARK = "sha256:"
#: The domain of the placeholder addresses forgotten subscribers keep (RFC 2606: never mailable).
PLACEHOLDER_DOMAIN = "forgotten.invalid"


def _plain_address(address: str) -> str | None:
    """The normal form of an address so plain that email-validator would only lower-case its
    domain, or None to let email-validator decide (which costs ~18 µs an address)."""
    match = _PLAIN_ADDRESS.fullmatch(address)
    if match is None or len(address) > EMAIL_MAX_LENGTH:
        return None
    domain = match.group(1).lower()
    # "--" is where IDNA (xn--) and the R-LDH rules start: leave those to the library.
    if len(domain) > 253 or "--" in domain:
        return None
    for reserved in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if domain == reserved or domain.endswith("." + reserved):
            return None
    return address.lower()


def _validated_email(address: str) -> str:
    try:
        result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email address {address!r}: {exc}") from exc
    return str(result.ascii_email or result.normalized).lower()


def normalise_email(raw: str) -> str:
    """The address in the form it is stored and compared in, or InputError saying why not.

    Written in any way ``bare_address`` reads (``"Name" <a@b>`` too). Only ASCII addresses
    are accepted (internationalised domains are turned into their ASCII
    form), so every address can go into a header as it is; the whole address is lower-cased,
    as every mailbox provider Digest's publishers meet treats the local part.
    """
    address = bare_address(raw)
    return _plain_address(address) or _validated_email(address)


def bare_address(raw: str) -> str:
    """The address alone, as written, from the ways mail and reports quote one: ``a@b``,
    ``<a@b>``, ``mailto:a@b``, ``rfc822; a@b`` (a DSN's field), ``"Name" <a@b>`` or
    ``Name <a@b>``. Not normalised: ``lookup_form`` does that."""
    text = raw.strip()
    if len(text) > 8 * EMAIL_MAX_LENGTH:
        return text  # no address is this long: left whole for the caller to refuse
    # A display name, quoted or not: the address is what the last angle brackets hold.
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1]
    else:
        # "rfc822; a@b": the address type of a DSN field comes before the semicolon.
        kind, semicolon, rest = text.partition(";")
        if semicolon and _ADDRESS_TYPE.fullmatch(kind.strip()):
            text = rest
    text = text.strip().strip("<>").strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    return text


def address_domain(address: str) -> str:
    """The domain of an address in its stored form (the ASCII one), lower-cased; "" when the
    text is no address."""
    normal = lookup_form(address)
    return normal.rpartition("@")[2] if normal else ""


def lookup_form(raw: str) -> str | None:
    """An address from outside (a bounce report, a webhook, an operator's ``forget``) in the
    stored form, to look it up; None when it cannot be anyone's stored address.

    Written in any way ``bare_address`` reads (angle brackets, ``mailto:``, a display name):
    reports quote addresses every way.
    """
    address = bare_address(raw)
    if not address or len(address) > 4 * EMAIL_MAX_LENGTH:
        return None
    try:
        return normalise_email(address)
    except InputError:
        return None


def comparable_address(raw: str) -> str:
    """An address to compare with one of ours (the bounce and unsubscribe addresses): its
    stored form, or for text email-validator refuses (a ``localhost`` domain) the bare address
    lower-cased, so the comparison still means something."""
    return lookup_form(raw) or bare_address(raw).lower()


def mailbox_key(address: str) -> str:
    """The mailbox an address delivers to, for limits that count per person: the stored form
    without a ``+tag`` (``victim+1@`` and ``victim+2@`` are one inbox at every big provider),
    so a limit per address cannot be multiplied by tagging it."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return f"{local.partition('+')[0] or local}@{domain}"


def clean_name(name: str) -> str:
    """A subscriber's name as stored: one line, no control or bidi-override characters (a name
    goes onto operator pages and, where a template puts it, into a greeting), at most 200
    characters."""
    return one_line(_BIDI_CONTROL.sub("", name), 200)


def address_hash(email: str) -> str:
    """What the suppression list keeps of a forgotten address: a hash of its stored form (an
    address that cannot be normalised is hashed as written, lower-cased)."""
    normal = comparable_address(email)
    digest = hashlib.sha256((HASH_PREFIX + normal).encode("utf-8")).hexdigest()
    return HASH_MARK + digest


def placeholder_address(subscriber_id: int) -> str:
    """The address a forgotten subscriber's row keeps: unique, and never mailable."""
    return f"forgotten-{subscriber_id}@{PLACEHOLDER_DOMAIN}"


def is_placeholder(email: str) -> bool:
    """Whether a subscriber row is what remains of a forgotten person."""
    return email.endswith("@" + PLACEHOLDER_DOMAIN)
