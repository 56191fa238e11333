"""Tracked links: ``/c/TOKEN`` counts a click and redirects to the article, ``/o/TOKEN`` counts
an open and answers a blank pixel.

Only a GET counts; a HEAD gets the same answer and records nothing. A forged or altered token
gets a 400 page and records nothing. Neither route changes a subscription, whoever fetches it.
"""

from __future__ import annotations

import base64
import logging

from flask import Blueprint, Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from digest.errors import DigestError, InputError
from digest.web import context
from digest.web.public import _message

bp = Blueprint("clicks", __name__)
log = logging.getLogger(__name__)

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _invalid() -> tuple[str, int]:
    return _message("Link not valid", "This link is not valid. Nothing was recorded.", 400)


@bp.get("/c/<token>")
def click(token: str) -> BaseResponse | tuple[str, int]:
    """Redirect (302) to the article the token names; a GET is counted, a HEAD is not."""
    try:
        # Flask answers HEAD with the GET view: only a real GET is a reader (or scanner).
        url = context().core.tracking.follow(token, count=request.method == "GET")
    except InputError:
        return _invalid()
    except DigestError:
        return _message("Not found", "This article is no longer here.", 404)
    response = redirect(url, 302)
    # Each fetch must reach us to be counted, and the article's address is nobody else's.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/o/<token>")
def opened(token: str) -> BaseResponse | tuple[str, int]:
    """A transparent 1x1 GIF; a GET is counted as an open (unreliable: see the docs)."""
    try:
        context().core.tracking.opened(token, count=request.method == "GET")
    except InputError:
        return _invalid()
    return Response(_PIXEL, 200, {"Content-Type": "image/gif", "Cache-Control": "no-store"})
