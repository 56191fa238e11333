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

Each variant runs in turn within a round, and the best of the rounds is
shown, so a busy spell on a shared machine hits every variant alike. The
send pipeline with signing on (the issue's target: DKIM-on throughput at
least 0.5 of DKIM-off) is ``bench/send.py --dkim`` next to ``bench/send.py``.

Run: ``python bench/dkim.py [--messages N] [--rounds R]``.
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
from digest.render.placeholders import PersonalTemplate, Placeholders
from digest.render.renderer import RenderedDigest

# Run as a script, this file's folder comes first on sys.path, and this file (dkim.py) would
# shadow dkimpy's ``dkim`` package: take the folder off the path before importing it.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
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
    # A fixed nonce: the sample is read from disk, not rendered, so there is no render to draw one.
    placeholders = Placeholders("0" * 16)
    parts = {}
    for kind in ("html", "txt"):
        text = (RENDERED / f"digest.{kind}").read_text(encoding="utf-8")
        for name in ("unsubscribe", "preferences"):
            prefix = f"https://news.example/{name}/"
            start = text.find(prefix)
            end = start + len(prefix)
            while end < len(text) and (text[end].isalnum() or text[end] in "-_"):
                end += 1
            text = text.replace(text[start:end], placeholders.token(name))
        parts[kind] = text
    html = parts["html"]
    body_start, body_end = html.index("<body"), html.rindex("</body>")
    inner = html[html.index(">", body_start) + 1 : body_end]
    html = html[:body_end] + inner * (STORY_COPIES - 1) + html[body_end:]
    rendered = RenderedDigest(
        html=PersonalTemplate.split(html, placeholders),
        text=PersonalTemplate.split(parts["txt"], placeholders),
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


DATE = "Tue, 24 Nov 2026 06:00:00 +0000"


def build_seconds(
    template: MessageTemplate, people: Sequence[Recipient], signer: Signer | None
) -> tuple[float, float]:
    """Wall-clock and CPU seconds per message to build (and sign) each recipient's message.

    CPU time leaves out the time this process waited for a core, so on a shared
    machine it is the steadier figure of what the work itself costs.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    if signer is None:
        for person in people:
            template.build(person, DATE)
    else:
        for person in people:
            signer(template.build(person, DATE))
    return (time.perf_counter() - wall) / len(people), (time.process_time() - cpu) / len(people)


def best_of(
    rounds: int,
    variants: dict[str, tuple[Signer | None, int]],
    run: Callable[[Signer | None, int], tuple[float, float]],
) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds per message of each variant over ``rounds`` rounds, the
    variants taking turns within each round so that a busy spell hits them all alike."""
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for name, (signer, count) in variants.items():
            wall, cpu = run(signer, count)
            old_wall, old_cpu = best.get(name, (wall, cpu))
            best[name] = (min(wall, old_wall), min(cpu, old_cpu))
    return best


def show(label: str, wall: float, cpu: float) -> None:
    print(f"{label:<24} {1 / wall:7.0f} msg/s   {wall * 1000:7.3f} ms/msg   "
          f"{cpu * 1000:7.3f} ms CPU/msg", flush=True)  # fmt: skip


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=1000, metavar="N", help="per round")
    parser.add_argument("--rounds", type=int, default=5, metavar="R")
    parser.add_argument(
        "--pipeline-rate",
        type=float,
        default=1770.0,
        metavar="MSG/S",
        help="DKIM-off pipeline rate to project onto (bench/send.py; README: 1770)",
    )
    args = parser.parse_args(argv)

    template = message_template()
    people = recipients(args.messages)
    rsa_pem, ed_pem = keys()
    new_rsa = DkimSigner(DOMAIN, "mail2026", rsa_pem)
    both = DkimSigner(DOMAIN, "mail2026", rsa_pem, ed25519_selector="ed2026", ed25519_key=ed_pem)
    unsigned = template.build(people[0], DATE)
    print(load())
    added = [len(signer(unsigned)) - len(unsigned) for signer in (new_rsa, both)]
    print(f"message                {len(unsigned)} bytes unsigned; signatures add {added[0]} bytes "
          f"(rsa), {added[1]} (rsa + ed25519)")  # fmt: skip
    print(f"rounds                 best of {args.rounds}, {args.messages} messages each "
          "(dkimpy: a tenth), the variants in turn")  # fmt: skip

    n = args.messages
    build = best_of(
        args.rounds,
        {
            "unsigned build": (None, n),
            "dkimpy (old)": (dkimpy_signer(rsa_pem), max(20, n // 10)),
            "rsa-sha256": (new_rsa, n),
            "rsa + ed25519": (both, n),
        },
        lambda signer, count: build_seconds(template, people[:count], signer),
    )
    base_wall, base_cpu = build.pop("unsigned build")
    show("unsigned build", base_wall, base_cpu)
    for name, (wall, cpu) in build.items():
        show(name, wall, cpu)
    pipeline = 1 / args.pipeline_rate
    print(f"signing alone, and a DKIM-off pipeline of {args.pipeline_rate:.0f} msg/s "
          "with it added (projection):")  # fmt: skip
    for name, (_wall, cpu) in build.items():
        cost = cpu - base_cpu
        print(f"  {name:<22} {cost * 1000:7.3f} ms CPU/msg   -> {1 / (pipeline + cost):6.0f} "
              f"msg/s, {pipeline / (pipeline + cost):4.2f} of DKIM-off")  # fmt: skip

    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
