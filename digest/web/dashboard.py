"""The operator's dashboard under ``/dashboard/``: today's editions with live progress, a
preview of each list's next digest, buttons to send, pause, resume and cancel, source health
and subscriber counts.

Server-rendered with no scripts (the app's CSP allows none): progress refreshes itself with
``<meta http-equiv="refresh">`` while something is sending. Login is a named user (``digest
users add``) or the built-in operator password (DIGEST_OPERATOR_PASSWORD), in a signed,
HttpOnly, SameSite=Lax session cookie; every POST carries the session's CSRF token. Each page
needs a role (``require_role``): viewers read, editors also send, operators do everything.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from digest.errors import DigestError, NotFoundError
from digest.service.identity import identity_warnings
from digest.web import context
from digest.web.auth import (
    csrf_ok,
    current_user,
    forget_login,
    remember_login,
    require_role,
)
from digest.web.frame import dashboard_page

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

#: Methods that never change anything here (scanners and browsers send them unasked).
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

#: Seconds between reloads of the overview while an edition is sending.
REFRESH_SECONDS = 5
#: The overview's own policy: the app's default forbids frames, and the previews are iframes of
#: this site. Still no scripts, and forms may only post here.
DASHBOARD_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)
#: A preview is email HTML from feeds: sandboxed even when opened outside its iframe.
PREVIEW_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'self'"
)


def _password() -> str | None:
    return context().settings.operator_password


def _signed_in() -> bool:
    return current_user() is not None


@bp.before_request
def guard() -> BaseResponse | None:
    """Every page but the login needs a session; every request that may change something
    (anything but GET, HEAD and OPTIONS) needs the session's CSRF token."""
    if request.method not in SAFE_METHODS and not csrf_ok(request.form.get("csrf_token")):
        # 400, not a redirect to the login: a forged form must not look like it half-worked.
        abort(400, "The form's security token is missing or out of date. Reload and retry.")
    if request.endpoint in ("dashboard.login", "dashboard.logout"):
        return None
    if not _signed_in():
        return redirect(url_for("dashboard.login"), 303)
    return None


@bp.after_request
def headers(response: Response) -> Response:
    # The app's after_request uses setdefault, so these stand.
    response.headers.setdefault("Content-Security-Policy", DASHBOARD_CSP)
    response.headers["Cache-Control"] = "no-store"  # operator pages never sit in a cache
    return response


def _render(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    return dashboard_page(template, status, **values)


# -- login -----------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> tuple[str, int] | tuple[str, int, dict[str, str]] | BaseResponse:
    ctx = context()
    if not ctx.core.access.logins_possible():
        return _render("login.html", 503, disabled=True)
    if request.method != "POST":
        if _signed_in():
            return redirect(url_for("dashboard.overview"), 303)
        return _render("login.html")
    login = ctx.core.access.log_in(
        request.form.get("password", ""),
        request.remote_addr,
        user_name=request.form.get("user", "")[:200],
    )
    if login.locked_for:
        return _locked_out(login.locked_for)
    if login.session_id is None or login.user is None:
        return _render("login.html", 401, error="That user name or password is not right.")
    builtin_password = (_password() or "") if login.user.builtin else ""
    remember_login(login.session_id, builtin_password, ctx.settings.secret)
    return redirect(url_for("dashboard.overview"), 303)


def _locked_out(retry_after: int) -> tuple[str, int, dict[str, str]]:
    minutes = max(1, (retry_after + 59) // 60)
    page, status = _render(
        "login.html",
        429,
        error=f"Too many sign-in attempts. Sign-in is locked for about {minutes} minute"
        f"{'s' if minutes != 1 else ''}; no password is checked until then.",
    )
    return page, status, {"Retry-After": str(retry_after)}


@bp.post("/logout")
def logout() -> BaseResponse:
    forget_login(context().core.access)
    return redirect(url_for("dashboard.login"), 303)


# -- the overview ----------------------------------------------------------------------------


@bp.get("/")
@require_role("viewer")
def overview() -> tuple[str, int]:
    core = context().core
    today = core.lists_today()
    recent = core.overview(limit=20)
    sending = any(row.sending for row in recent) or any(
        item.edition and item.edition.sending for item in today
    )
    return _render(
        "overview.html",
        warnings=identity_warnings(context().settings),
        today=today,
        recent=recent,
        sources=core.catalog.sources(),
        refresh=REFRESH_SECONDS if sending else None,
    )


@bp.get("/preview/<slug>")
@require_role("viewer")
def preview(slug: str) -> tuple[str, int, dict[str, str]]:
    """The list's next digest (today's: as built, or as building it now would be) for the
    overview's sandboxed iframe."""
    ctx = context()
    try:
        draft, _ = ctx.core.draft(slug, None)
        html = ctx.core.preview_html(draft)
        status = 200
    except DigestError as exc:
        html = _render("preview-empty.html", message=str(exc))[0]
        status = 404 if isinstance(exc, NotFoundError) else 200
    return html, status, {"Content-Security-Policy": PREVIEW_CSP}


@bp.get("/editions/<int:edition_id>/stats")
@require_role("viewer")
def edition_stats(edition_id: int) -> tuple[str, int]:
    """An edition's figures and charts (inline SVG drawn on the server, no script)."""
    from digest.web.charts import edition_charts

    ctx = context()
    try:
        stats = ctx.core.edition_stats(edition_id)
    except NotFoundError:
        abort(404)
    return _render(
        "stats.html", stats=stats, charts=edition_charts(stats), tracking=ctx.settings.track_clicks
    )


# -- actions ---------------------------------------------------------------------------------


def _done() -> BaseResponse:
    return redirect(url_for("dashboard.overview"), 303)


@bp.get("/lists/<slug>/send")
@require_role("editor")
def confirm_send(slug: str) -> tuple[str, int] | BaseResponse:
    """The step before a send: the list and how many people it goes to, and the button."""
    ctx = context()
    try:
        mailing_list = ctx.core.catalog.get_list(slug)
        recipients = ctx.core.catalog.eligible_count(slug)
    except NotFoundError:
        abort(404)
    return _render("confirm-send.html", mailing_list=mailing_list, recipients=recipients)


@bp.post("/lists/<slug>/send")
@require_role("editor")
def send(slug: str) -> BaseResponse:
    ctx = context()
    try:
        start = ctx.core.start(slug)
    except DigestError as exc:
        flash(f"Not sent: {exc}", "error")
        return _done()
    if start.empty:
        flash(f"No articles for {slug} on {start.day}: nothing to send.", "error")
    elif start.sending:
        flash(f"Edition {start.edition_id} of {slug} ({start.day}) is being sent.", "ok")
    else:
        flash(f"Edition {start.edition_id} of {slug} is {start.status}: nothing to send.", "ok")
    return _done()


@bp.post("/editions/<int:edition_id>/<action>")
@require_role("editor")
def edition_action(edition_id: int, action: str) -> BaseResponse:
    ctx = context()
    core = ctx.core
    if action not in ("pause", "resume", "cancel", "retry-failed"):
        abort(404)
    try:
        if action == "pause":
            core.pause(edition_id)
            message = f"Edition {edition_id} paused."
        elif action == "resume":
            core.resume(edition_id)
            message = f"Edition {edition_id} resumed."
        elif action == "cancel":
            skipped = core.cancel(edition_id)
            message = (
                f"Edition {edition_id} cancelled; {_plural(skipped, 'unsent recipient')} skipped."
            )
        else:
            count, _ = core.retry_failed(edition_id)
            message = f"Edition {edition_id}: {_plural(count, 'failed recipient')} queued again."
    except DigestError as exc:
        flash(f"Edition {edition_id}: {exc}", "error")
        return _done()
    flash(message, "ok")
    return _done()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# The editors' review pages, under /dashboard/review/ with this blueprint's checks.
from digest.web.review import bp as review_bp  # noqa: E402

bp.register_blueprint(review_bp)
