"""The native REST API, ``/api/v1`` (contract: ``openapi.yaml``): one blueprint per resource family.
Views parse (``http.py`` and the marshmallow schemas), call one use case, render (``schemas/native``)."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from . import access, audit, events, history, models, reviews, serving, versions, watch, webhooks

    for module in (models, versions, serving, watch, history, audit, reviews, access, events, webhooks):
        app.register_blueprint(module.bp)
