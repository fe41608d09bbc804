"""Signing in and out."""
from __future__ import annotations

from flask import g, redirect, render_template, request, session, url_for

from ..errors import Unauthenticated
from . import bp
from .session import act_as, auth_enabled, safe_next, sign_in, sign_out


@bp.get("/signin")
def signin():
    if g.actor is not None and auth_enabled():
        return redirect(safe_next(request.args.get("next")))
    ended = session.pop("ended", None) or g.session_ended
    return render_template("signin.html", next=request.args.get("next", ""), error=ended, user_name="")


@bp.post("/signin")
def signin_submit():
    form = request.form
    target = safe_next(form.get("next"))
    if not auth_enabled():
        act_as(form.get("user_name", "").strip())
        return redirect(target)
    try:
        sign_in(form.get("token", "").strip(), form.get("user_name", "").strip() or None)
    except Unauthenticated as exc:
        page = render_template("signin.html", next=form.get("next", ""), error=exc.message,
                               user_name=form.get("user_name", ""))
        return page, 401
    return redirect(target)


@bp.post("/signout")
def signout():
    sign_out()
    return redirect(url_for("web.signin"))
