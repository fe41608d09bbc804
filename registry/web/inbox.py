"""The home page: what waits for the signed-in user's review, and their own requests."""
from __future__ import annotations

from flask import g, render_template, request

from ..services import review_queue
from . import bp
from .session import signed_in


@bp.get("/")
@signed_in
def inbox():
    waiting = review_queue.inbox(g.actor, 100)
    mine = review_queue.my_requests(g.actor, 25, request.args.get("mine_page") or None)
    return render_template("inbox.html", waiting=waiting, mine=mine)
