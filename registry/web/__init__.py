"""The review console: server-rendered pages at ``/`` for reviewers, model owners and auditors.

Every page reads, and every form acts, through the same service use cases as the APIs (``registry/services``):
the console has no rule of its own, and the server refuses a forged form exactly as the API would refuse
the same call. Plain HTML forms (POST, redirect, GET) carry every flow; there is no JavaScript to build.

* ``session.py``   sign-in with an API token, the session cookie, the actor of each request
* ``rendering.py`` times, stage badges, error pages in the console's style
* ``inbox.py``, ``models.py`` (with ``history_view.py``: what was served when), ``versions.py``, ``audit.py``
  the pages; ``actions.py`` the forms' POSTs; ``forms.py`` reads what a form or query string sent
* ``templates/``, ``static/``  Jinja templates and one stylesheet

Forms are protected against cross-site requests by Flask-WTF's ``CSRFProtect`` (checked for every POST of
this blueprint) on top of the ``SameSite`` cookie.
"""
from __future__ import annotations

from contextlib import ExitStack

from flask import Blueprint, Flask, g, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import NotFound

from ..db.unit_of_work import one_read
from . import rendering, session as console_session

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/console/static")
csrf = CSRFProtect()
rendering.install(bp)


@bp.before_request
def _before():
    if request.method == "POST":
        csrf.protect()
    console_session.load_actor()
    if request.method in ("GET", "HEAD"):
        # A page is one read: its use cases share one transaction and look the model and the reader's level
        # up once (db/unit_of_work.one_read), instead of once per use case.
        g.console_read = ExitStack()
        g.console_read.enter_context(one_read())


@bp.teardown_request
def _end_read(_error):
    reading = g.pop("console_read", None)
    if reading is not None:
        reading.close()


@bp.after_request
def _headers(response):
    # Pages show who may do what: never cached by a shared cache, never framed by another site.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; script-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'")
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def register(app: Flask) -> None:
    from . import actions, audit, inbox, models, signin, versions  # noqa: F401  (routes on ``bp``)

    console_session.configure(app)
    csrf.init_app(app)
    app.register_blueprint(bp)
    # A URL that matches no route belongs to no blueprint: outside the APIs, answer it as a console page.
    app.register_error_handler(NotFound, rendering.not_found_anywhere)
