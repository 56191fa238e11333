"""Digest: a newsletter digest mailer for news publishers."""

#: The release, read by the packaging (pyproject's dynamic version) and `digest --version`
#: (which would otherwise scan every installed distribution's metadata at start-up).
__version__ = "0.1.0"

__all__ = ["__version__"]
