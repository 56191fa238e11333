"""Signing in to the dashboard as a named user through the test client."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from digest.web import context

PASSWORDS = {"olga": "operator-pass-1", "eddie": "editor-pass-12", "vera": "viewer-pass-123"}
ROLES = {"olga": "operator", "eddie": "editor", "vera": "viewer"}


def add_users(app: Flask) -> None:
    """One user of each role."""
    with app.app_context():
        for name, password in PASSWORDS.items():
            context().core.users.add(name, password, ROLES[name])


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: FlaskClient, name: str) -> str:
    """Sign ``name`` in; returns the session's CSRF token."""
    page = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"user": name, "password": PASSWORDS[name], "csrf_token": csrf(page.get_data(True))},
    )
    assert response.status_code == 303, response.get_data(True)[:300]
    return csrf(client.get("/dashboard/").get_data(True))


__all__ = ["PASSWORDS", "ROLES", "add_users", "csrf", "sign_in"]
