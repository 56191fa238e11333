"""The DKIM benchmark: what signing each recipient's message costs, old and new, in one run.

Every line builds the same per-recipient messages (a real rendered digest,
``tests/data/render/daily-en``, with each recipient's own unsubscribe and
preferences links, so every body and every signature differs) and prints
messages per second:

* **unsigned build**: ``MessageTemplate.build`` alone, the DKIM-off cost;
* **dkimpy (old)**: the build, then ``dkim.sign`` as the previous signer called
  it (rsa-sha256, relaxed/relaxed, the same oversigned headers);
* **rsa-sha256**: the build, then ``DkimSigner`` with a 2048-bit RSA key;
* **rsa + ed25519**: the same with the Ed25519 second signature.

Then, unless ``--no-smtp``, the send leg: the same messages delivered with
``SmtpTransport`` over one connection to the counting sink of ``bench/send.py``
(its own process), unsigned and signed, and the ratio signed / unsigned. That
is the DKIM-on / DKIM-off send throughput without the database; the issue's
target is at least 0.5.

Run: ``python bench/dkim.py [--messages N] [--no-smtp]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from digest.mail.dkim import SIGNED_HEADERS, DkimSigner
from digest.mail.mime import MessageTemplate, Recipient, format_address
from digest.render.renderer import PLACEHOLDER_PREFIX, PersonalTemplate, RenderedDigest
from digest.transports.base import Envelope, Outcome
from digest.transports.smtp import SmtpConfig, SmtpTransport

# Run as a script, this file's folder comes first on sys.path, and this file (dkim.py) would
# shadow dkimpy's ``dkim`` package: the folder goes last (bench/send.py is still found there,
# also by the sink's spawned process, which runs this module again).
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH] + [str(_BENCH)]
dkimpy = importlib.import_module("dkim")  # by name: mypy would also take this file for it

ROOT = Path(__file__).resolve().parent.parent
RENDERED = ROOT / "tests" / "data" / "render" / "daily-en"
DOMAIN = "gazette.example"
#: The rendered sample is one edition of 12 stories (~24 KB of HTML); a full day's digest
#: is about twice that, so the HTML part repeats the stories once to reach ~50 KB.
STORY_COPIES = 2
Signer = Callable[[bytes], bytes]


def message_template() -> MessageTemplate:
    """The sample digest with its personal links turned back into placeholders."""
    parts = {}
    for kind in ("html", "txt"):
        text = (RENDERED / f"digest.{kind}").read_text(encoding="utf-8")
        for name in ("unsubscribe", "preferences"):
            prefix = f"https://news.example/{name}/"
            start = text.find(prefix)
            end = start + len(prefix)
            while end < len(text) and (text[end].isalnum() or text[end] in "-_"):
                end += 1
            text = text.replace(text[start:end], f"{PLACEHOLDER_PREFIX}{name}0")
        parts[kind] = text
    html = parts["html"]
    body_start, body_end = html.index("<body"), html.rindex("</body>")
    inner = html[html.index(">", body_start) + 1 : body_end]
    html = html[:body_end] + inner * (STORY_COPIES - 1) + html[body_end:]
    rendered = RenderedDigest(
        html=PersonalTemplate.split(html), text=PersonalTemplate.split(parts["txt"])
    )
    return MessageTemplate(
        from_name="The Test Gazette",
        from_address=f"digest@{DOMAIN}",
        subject="The Test Gazette — Tuesday, 24 November 2026: council approves a plan",
        list_id=format_address("Daily", f"daily.{DOMAIN}"),
        rendered=rendered,
        unsubscribe_mailto=f"unsubscribe@{DOMAIN}",
    )


def recipients(count: int) -> list[Recipient]:
    def link(kind: str) -> str:
        return f"https://news.example/{kind}/{secrets.token_urlsafe(45)}"

    return [
        Recipient(
            f"reader{i}@example.com",
            f"Reader {i}",
            {"unsubscribe": link("unsubscribe"), "preferences": link("preferences")},
            f"digest.e1.d{i}@{DOMAIN}",
        )
        for i in range(count)
    ]


def keys() -> tuple[bytes, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = private.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    return rsa_pem, ed_pem


def dkimpy_signer(rsa_pem: bytes) -> Signer:
    """The previous signer's call, for comparison."""
    include = SIGNED_HEADERS + SIGNED_HEADERS

    def sign(message: bytes) -> bytes:
        header = dkimpy.sign(
            message,
            b"mail2026",
            DOMAIN.encode(),
            rsa_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
            linesep=b"\r\n",
        )
        return bytes(header) + message

    return sign


def build_rate(
    template: MessageTemplate, people: Sequence[Recipient], signer: Signer | None
) -> tuple[float, list[bytes]]:
    """Messages per second for build (+ sign), and the messages."""
    date = "Tue, 24 Nov 2026 06:00:00 +0000"
    started = time.perf_counter()
    if signer is None:
        messages = [template.build(r, date) for r in people]
    else:
        messages = [signer(template.build(r, date)) for r in people]
    return len(people) / (time.perf_counter() - started), messages


def send_rate(
    url: str,
    template: MessageTemplate,
    people: Sequence[Recipient],
    signer: Signer | None,
) -> float:
    """Messages per second for build (+ sign) + SMTP over one connection."""
    date = "Tue, 24 Nov 2026 06:00:00 +0000"
    with SmtpTransport(SmtpConfig.from_url(url)) as transport:
        transport.connect()
        started = time.perf_counter()
        for person in people:
            message = template.build(person, date)
            if signer is not None:
                message = signer(message)
            result = transport.send(Envelope(f"digest@{DOMAIN}", person.email), message)
            if result.outcome is not Outcome.SENT:
                raise SystemExit(f"the sink refused a message: {result}")
        return len(people) / (time.perf_counter() - started)


def show(label: str, rate: float, base: float | None = None) -> None:
    extra = f"   {1000 / rate:6.3f} ms/msg"
    if base is not None:
        extra += f"   {rate / base:5.2f}x unsigned"
    print(f"{label:<24} {rate:8.0f} msg/s{extra}", flush=True)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=3000, metavar="N")
    parser.add_argument("--no-smtp", action="store_true", help="skip the SMTP send leg")
    args = parser.parse_args(argv)

    template = message_template()
    people = recipients(args.messages)
    rsa_pem, ed_pem = keys()
    new_rsa = DkimSigner(DOMAIN, "mail2026", rsa_pem)
    both = DkimSigner(DOMAIN, "mail2026", rsa_pem, ed25519_selector="ed2026", ed25519_key=ed_pem)
    old = dkimpy_signer(rsa_pem)

    print(load())
    build_rate(template, people[:200], new_rsa)  # warm-up: caches, allocator
    base, unsigned = build_rate(template, people, None)
    print(f"message size             {len(unsigned[0])} bytes, {args.messages} recipients")
    show("unsigned build", base)
    # dkimpy is ~10x slower: a tenth of the messages gives the same precision in the same time.
    old_rate, _ = build_rate(template, people[: max(50, args.messages // 10)], old)
    show("dkimpy (old)", old_rate, base)
    rsa_rate, signed = build_rate(template, people, new_rsa)
    show("rsa-sha256", rsa_rate, base)
    both_rate, _ = build_rate(template, people, both)
    show("rsa + ed25519", both_rate, base)
    print(f"signing cost             rsa {1000 / rsa_rate - 1000 / base:.3f} ms/msg, "
          f"rsa + ed25519 {1000 / both_rate - 1000 / base:.3f} ms/msg")  # fmt: skip
    print(f"signed size              +{len(signed[0]) - len(unsigned[0])} bytes (rsa)")

    if not args.no_smtp:
        from send import Sink  # the counting sink of bench/send.py, in a process of its own

        sink = Sink()
        try:
            send_rate(sink.url, template, people[:200], None)  # warm-up
            off = send_rate(sink.url, template, people, None)
            show("send, unsigned", off)
            on = send_rate(sink.url, template, people, new_rsa)
            show("send, rsa-sha256", on, off)
            on_both = send_rate(sink.url, template, people, both)
            show("send, rsa + ed25519", on_both, off)
        finally:
            sink.stop()
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
