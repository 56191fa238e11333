"""Settings that work but would embarrass a publisher: the quick start's defaults reaching real
inboxes, a misspelled ``DIGEST_*`` variable silently ignored, a weak or placeholder secret.

One function the faces share: ``digest doctor``, ``digest send --dry-run`` and the dashboard
all show the same lines. It lives in the service layer, not in ``digest.ops``, because the
web face may not import ``ops`` (faces never import each other)."""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from digest.config import Settings, weak_secret_reasons

_DEFAULTS = Settings()
#: Environment variables Digest reads that are not fields of Settings.
_OTHER_NAMES = frozenset({"DIGEST_CONFIG"})
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def setting_names() -> list[str]:
    """Every ``DIGEST_*`` name Digest reads."""
    fields = [f"DIGEST_{f.name.upper()}" for f in dataclasses.fields(Settings)]
    return sorted({*fields, *_OTHER_NAMES})


def unknown_env_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per ``DIGEST_*`` variable that is no setting (a typo Digest would ignore), with
    the closest real name when there is one."""
    env = os.environ if environ is None else environ
    known = setting_names()
    lines = []
    for name in sorted(env):
        if not name.startswith("DIGEST_") or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f": did you mean {close[0]}?" if close else ": no such setting"
        lines.append(f"{name} is set but Digest reads no such variable{hint}")
    return lines


def identity_warnings(
    settings: Settings, environ: Mapping[str, str] | None = None, *, secrets: bool = True
) -> list[str]:
    """What a subscriber (or an attacker) would notice first; empty when nothing stands out.

    Values that are secret are never included, only why they are unfit; ``secrets=False``
    leaves them out (``doctor`` checks them on a line of its own).
    """
    lines = []
    if settings.site_name == _DEFAULTS.site_name:
        lines.append(
            f'site name is the default "{settings.site_name}": set DIGEST_SITE_NAME '
            "(or run `digest setup`)"
        )
    domain = settings.from_address.rpartition("@")[2].lower()
    if settings.from_address == _DEFAULTS.from_address or domain in _LOCAL_HOSTS:
        lines.append(
            f"From address is {settings.from_address}: receivers refuse or junk it; "
            "set DIGEST_FROM_ADDRESS to an address of your domain"
        )
    if settings.postal_address == _DEFAULTS.postal_address:
        lines.append(
            "postal address is not configured: every digest's footer says so (and the law "
            "of many countries wants one); set DIGEST_POSTAL_ADDRESS"
        )
    if settings.smtp_url and (urlsplit(settings.base_url).hostname or "") in _LOCAL_HOSTS:
        lines.append(
            f"base URL is {settings.base_url} while mail goes out by SMTP: the unsubscribe and "
            "preference links in every email lead nowhere; set DIGEST_BASE_URL"
        )
    lines += unknown_env_warnings(environ)
    if secrets:
        lines += weak_secret_reasons(settings)
    return lines


__all__ = ["identity_warnings", "setting_names", "unknown_env_warnings"]
