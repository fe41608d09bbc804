"""How the console shows things: times, stage badges, the page frame's context, and error pages.

Errors are the API's (``api/errors.py`` maps each to its status once); the console shows them as a page in
its own style with the same status code, so a refused form answers 403 here as the API does.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import g, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from markupsafe import Markup
from .. import errors
from ..api.errors import status_for
from ..db import availability
from ..extensions import OUTAGE_KEY
from .session import auth_enabled

log = logging.getLogger("registry.web")

STAGE_CLASSES = {"None": "stage-none", "Staging": "stage-staging", "Production": "stage-production",
                 "Archived": "stage-archived"}


def ago(when: datetime, now: datetime | None = None) -> str:
    """'just now', '5 min ago', '3 h ago', '2 days ago', then the date."""
    seconds = ((now or datetime.now(timezone.utc)) - when).total_seconds()
    if seconds < 0:
        return "in the future"
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{round(seconds / 60) or 1} min ago"
    if seconds < 86400:
        return f"{round(seconds / 3600)} h ago"
    if seconds < 30 * 86400:
        days = round(seconds / 86400)
        return f"{days} day{'s' if days != 1 else ''} ago"
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d")


def absolute(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def time_tag(when: datetime | None) -> Markup:
    """A relative time, with the absolute one in the markup (machine-readable and on hover)."""
    if when is None:
        return Markup("—")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        when.astimezone(timezone.utc).isoformat(), absolute(when), ago(when))


def stage_badge(stage: str | None) -> Markup:
    if stage is None:
        return Markup("")
    return Markup('<span class="badge {}">{}</span>').format(STAGE_CLASSES.get(stage, "stage-none"), stage)


def change_text(request) -> str:
    """What a request asks for, in words: 'Staging → Production', 'alias champion → v3', 'remove alias champion'."""
    if request.alias is not None:
        if request.alias_action == "delete":
            return f"remove alias {request.alias}"
        return f"alias {request.alias} → v{request.version}"
    return f"{request.from_stage} → {request.to_stage}"


def render_error(status: int, title: str, message: str):
    return render_template("error.html", status=status, title=title, message=message), status


_TITLES = {400: "That did not work", 401: "Please sign in", 403: "Not allowed", 404: "Not found",
           409: "Conflict", 412: "Changed meanwhile", 422: "Not a valid change", 503: "Busy"}


def _registry_error(error: errors.RegistryError):
    status = status_for(error)
    return render_error(status, _TITLES.get(status, "Error"), error.message)


def _csrf_error(error: CSRFError):
    return render_error(400, "Form expired or forged",
                        "This form was not sent by this console, or it has expired. Go back, reload the page and "
                        "try again.")


def _http_error(error):
    status = error.code or 500
    return render_error(status, _TITLES.get(status, error.name), error.description or error.name)


def not_found_anywhere(error):
    """An unknown URL: the API's error shape under the API prefixes, a console page elsewhere."""
    from ..api.errors import http_error
    from .session import is_api_path

    if is_api_path(request.path):
        return http_error(error)
    return _http_error(error)


_UNAVAILABLE = {
    "unavailable": ("Database unavailable", "The registry cannot reach its database right now; nothing was done."),
    "locked": ("Busy", "Someone else's change to this model is taking long; nothing was changed. Try again."),
    "busy": ("Busy", "The database did not answer in time; try again, or narrow the search."),
}


def _database_failure(kind: str, error: Exception):
    """The database's state (``db/availability.py``): a 503 page with Retry-After, one log line per outage."""
    if kind == "unavailable":
        from flask import current_app

        current_app.extensions[OUTAGE_KEY].failed(error)
    title, message = _UNAVAILABLE[kind]
    page, status = render_error(503, title, message)
    return page, status, {"Retry-After": str(availability.RETRY_AFTER[kind])}


def _unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return _http_error(error)
    kind = availability.classify(error)
    if kind is not None:
        return _database_failure(kind, error)
    log.exception("unhandled error in the console")
    return render_error(500, "Something went wrong", "The server could not show this page; it has been logged.")


def install(blueprint) -> None:
    """Set up the blueprint once, at import (a blueprint may be registered on several apps)."""
    blueprint.register_error_handler(errors.RegistryError, _registry_error)
    blueprint.register_error_handler(CSRFError, _csrf_error)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(errors.Unavailable, _unexpected)
    blueprint.register_error_handler(Exception, _unexpected)
    blueprint.add_app_template_global(page_url, "page_url")
    for name, fn in {"when": time_tag, "absolute": absolute, "stage": stage_badge, "change": change_text}.items():
        blueprint.add_app_template_filter(fn, name)

    @blueprint.context_processor
    def frame():
        return {"actor": g.get("actor"), "auth_disabled": not auth_enabled(), "path": request.path}


def page_url(param: str, token: str) -> str:
    """This page's URL with one query parameter (a page token) replaced."""
    args = request.args.to_dict()
    args[param] = token
    return url_for(request.endpoint, **(request.view_args or {}), **args)
