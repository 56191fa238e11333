"""The dashboard's frame: every operator page (overview, review, management) is rendered
with the site's name, the session's CSRF token, the flashed messages and the signed-in user,
which the shared base template needs for its header and navigation."""

from __future__ import annotations

from typing import Any

from flask import get_flashed_messages, render_template

from digest.web import context
from digest.web.auth import csrf_token, current_user

__all__ = ["dashboard_page"]


def dashboard_page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    """``templates/web/dashboard/TEMPLATE`` in the frame, with ``values``; and the status."""
    return (
        render_template(
            f"web/dashboard/{template}",
            site_name=context().settings.site_name,
            csrf_token=csrf_token(),
            messages=get_flashed_messages(with_categories=True),
            me=current_user(),
            **values,
        ),
        status,
    )
