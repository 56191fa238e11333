"""Fixtures shared by the web tests: settings with an operator password, the app on the test
database, and its HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from digest.config import Settings
from digest.service.dispatch import BackgroundDispatcher
from digest.store.db import Database
from digest.web import context, create_app

OPERATOR_PASSWORD = "correct horse battery staple"


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    """The test settings (outbox in tmp_path, no broker) with the dashboard login on."""
    return settings.replace(operator_password=OPERATOR_PASSWORD)


@pytest.fixture
def app(web_settings: Settings, db: Database) -> Iterator[Flask]:
    """A fresh app on the upgraded test database (``db`` runs Database.upgrade())."""
    flask_app = create_app(web_settings)
    yield flask_app
    wait_for_sends(flask_app)
    with flask_app.app_context():
        context().close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def wait_for_sends(flask_app: Flask, timeout: float = 60.0) -> None:
    """Join the background sends the app started, so a test sees their outcome (and the
    database is not dropped under a running thread)."""
    with flask_app.app_context():
        dispatcher = context().core.dispatcher
    if isinstance(dispatcher, BackgroundDispatcher):
        assert dispatcher.wait(timeout), "a background send did not finish in time"
