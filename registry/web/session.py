"""Who is using the console: sign-in with an API token, the session cookie, and the actor of each request.

Signing in makes a **session token**: a child of the token the user signed in with (``identities``: it
expires with it, at most ``REGISTRY_CONSOLE_SESSION_HOURS`` later, and is revoked with it), listed and audited
like any token. The cookie holds that token, signed; every request authenticates it exactly as the API
authenticates a bearer token (``api/authn.py``), through the per-process cache that every worker drops when a
token is revoked, so revoking either token ends the session within moments everywhere. Signing out revokes
the session token. The API never reads the cookie: cookies authenticate the console only, so a forged
cross-site request cannot reach the API with the user's rights.

The cookie is ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the request came over HTTPS, and expires with
the session. It is signed with ``REGISTRY_SECRET_KEY`` (the first key signs, the others still verify), or
else with a key the installation made for itself (``services/instance_secrets.py``).
"""
from __future__ import annotations

import functools
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from ..api.authn import authenticate_token
from ..auth import Actor
from ..errors import PermissionDenied, Unauthenticated
from ..services import identities
from ..services.instance_secrets import shared_secret

COOKIE = "registry_console"
SESSION_TOKEN_DESCRIPTION = "console session"
# Machine-read paths: errors in the API's shape, never a console page or cookie. ``/.well-known/`` is probed
# by clients (databricks-sdk asks for ``databricks-config`` at start-up and expects a JSON 404).
_API_PREFIXES = ("/api/", "/ajax-api/", "/healthz", "/readyz", "/.well-known/")


def is_api_path(path: str) -> bool:
    return path.startswith(_API_PREFIXES)


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, for console pages only, with the signing key loaded on first use."""

    def open_session(self, app: Flask, request):
        if is_api_path(request.path):
            return None  # the API: no cookie is read (and no serializer built on the hot path)
        _ensure_key(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def _ensure_key(app: Flask) -> None:
    if app.secret_key:
        return
    keys = app.config["REGISTRY_SETTINGS"].secret_keys
    if keys:
        app.config["SECRET_KEY_FALLBACKS"] = list(keys[1:])
        app.secret_key = keys[0]
    else:
        app.secret_key = shared_secret("console-cookie-key")


def configure(app: Flask) -> None:
    hours = app.config["REGISTRY_SETTINGS"].console_session_hours
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=hours),
        # Forms stay valid as long as the session; the session's own expiry bounds them.
        WTF_CSRF_TIME_LIMIT=hours * 3600,
        # Checked by the console's blueprint only (web/__init__.py): the API takes no cookies, so needs none.
        WTF_CSRF_CHECK_DEFAULT=False,
    )


def auth_enabled() -> bool:
    return current_app.config["REGISTRY_SETTINGS"].auth_enabled


def load_actor() -> None:
    """Set ``g.actor`` for this console request (None: not signed in), and ``g.session_ended`` with the reason
    when the cookie named a session that is over."""
    g.actor, g.session_ended = None, None
    if not auth_enabled():
        g.actor = Actor.named(session.get("act_as"), is_admin=True)
        return
    token = session.get("token")
    if token is None:
        return
    try:
        g.actor = authenticate_token(token)
    except Unauthenticated as exc:
        session.clear()
        # Kept for the sign-in page the user is about to be sent to.
        g.session_ended = session["ended"] = f"Your session has ended: {exc.message}"


def sign_in(token: str, user_name: str | None) -> Actor:
    """Check the token (and the user name, when given), make the session token and start the session."""
    try:
        actor = authenticate_token(token)
    except (Unauthenticated, PermissionDenied):  # a metrics token signs in nowhere
        actor = None
    if actor is None or (user_name and user_name != actor.name):
        raise Unauthenticated("That user name and token do not match a valid token.")
    hours = current_app.config["REGISTRY_SETTINGS"].console_session_hours
    _, session_token = identities.create_token(actor, actor.name, description=SESSION_TOKEN_DESCRIPTION,
                                               expires_in=timedelta(hours=hours))
    session.clear()  # a fresh session (and CSRF token) for the signed-in user: no fixation
    session.permanent = True
    session["token"] = session_token
    return actor


def act_as(name: str | None) -> Actor:
    """With authentication disabled, the console acts as whoever the user says (as the API's header does)."""
    actor = Actor.named(name or None, is_admin=True)
    session.clear()
    session.permanent = True
    session["act_as"] = actor.name
    return actor


def sign_out() -> None:
    actor = g.get("actor")
    if auth_enabled() and actor is not None and actor.token_id is not None:
        identities.revoke_token(actor, actor.token_id)
    session.clear()


def safe_next(target: str | None) -> str:
    """A place to go after signing in: a path on this site only (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("web.inbox")


def signed_in(view):
    """Pages need a signed-in user: GETs go to the sign-in page and come back; anything else is refused."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        if g.actor is None:
            if request.method == "GET":
                return redirect(url_for("web.signin", next=request.full_path.rstrip("?")))
            raise Unauthenticated(g.session_ended or "Sign in first.")
        return view(*args, **kwargs)

    return guarded
