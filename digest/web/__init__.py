"""The web app: subscriber pages (subscribe, confirm, unsubscribe, preferences, archive),
the operator API and the dashboard. ``create_app(settings)`` makes a fresh app, so tests
get one on their own database.

Flask rather than FastAPI: the pages are server-rendered forms, the database
layer is synchronous SQLAlchemy, and Flask's test client and Jinja2 are the
ones the email side already uses. Like every face, it asks the core
(``digest.service``) for everything and holds no table or session of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, current_app
from werkzeug.middleware.proxy_fix import ProxyFix

from digest.config import Settings, load_settings
from digest.service.core import Digest

__all__ = ["WebContext", "context", "create_app"]


@dataclass
class WebContext:
    #: The core every page, API call and dashboard button goes through.
    core: Digest

    @property
    def settings(self) -> Settings:
        return self.core.settings

    def close(self) -> None:
        self.core.close()


def context() -> WebContext:
    """The running app's core."""
    found: WebContext = current_app.extensions["digest"]
    return found


def create_app(settings: Settings | None = None, *, core: Digest | None = None) -> Flask:
    """A new app over ``core`` (default: one made from ``settings``). Without a broker, sends
    started here run in a thread of this process, so a request never waits for a send."""
    if core is None:
        core = Digest(settings or load_settings(), background=True)
    elif not core.settings.uses_broker:
        core = Digest(core.settings, db=core.db, background=True)
    settings = core.settings
    app = Flask(
        __name__,
        template_folder=settings.templates_dir,
        static_folder=None,
    )
    app.config.update(
        SECRET_KEY=settings.secret,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        MAX_CONTENT_LENGTH=5 * 1024 * 1024,
    )
    app.extensions["digest"] = WebContext(core)
    if settings.trusted_proxies:
        # Only as many hops as the operator says: each believed X-Forwarded-For entry is one
        # a client could otherwise write itself to dodge the login and sign-up limits.
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from digest.web import clicks, metrics, public

    app.register_blueprint(public.bp)
    app.register_blueprint(clicks.bp)
    from digest.web import api, dashboard, manage

    app.register_blueprint(api.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(metrics.bp)
    from digest.web import webhooks

    app.register_blueprint(webhooks.bp)

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Pages hold no scripts of ours; the archive shows email HTML, whose
        # images may come from the publisher's https servers.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
            "form-action 'self'; frame-ancestors 'self'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return app
