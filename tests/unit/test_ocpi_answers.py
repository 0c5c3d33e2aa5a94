"""What the OCPI edge asks the domain is injected (ocpi.answers), and an app that was not
given the answerer refuses to start serving /ocpi, instead of failing at the first CPO's
real-time authorisation request."""

from __future__ import annotations

import pytest
from flask import Flask

from ocpi import answers
from ocpi.endpoints import bp


def test_without_the_answerer_the_blueprint_does_not_register():
    app = Flask("no_answers")
    with pytest.raises(RuntimeError, match="authorize_token"):
        app.register_blueprint(bp)


def test_with_the_answerer_it_registers_and_is_the_one_asked():
    asked = []

    def authorize(token_uid, location, party_pk=None, country_code=None, party_id=None):
        asked.append(token_uid)
        return {"allowed": "NOT_ALLOWED"}

    app = Flask("answers")
    answers.init_app(app, authorize_token=authorize)
    app.register_blueprint(bp)
    assert "ocpi.authorize" in app.view_functions
    with app.app_context():
        assert answers.current().authorize_token("TOK", None) == {"allowed": "NOT_ALLOWED"}
    assert asked == ["TOK"]


def test_the_app_factory_gives_the_answerer(app):
    from charging.tokens import on_token_authorization

    assert answers.of(app).authorize_token is on_token_authorization
