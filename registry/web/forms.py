"""Reading what a form or a query string sent: text, a checkbox, a date and time."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import request

from ..errors import InvalidArgument


def text(field: str) -> str:
    return request.form.get(field, "").strip()


def checked(field: str) -> bool:
    return request.form.get(field) in ("on", "true", "1")


def instant(raw: str, field: str) -> datetime:
    """A ``datetime-local`` value, read as UTC (the console's pickers say so), or ISO 8601 with an offset."""
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidArgument(f"{field} must be a date and time such as 2026-11-03T14:00 (UTC).",
                              {"field": field}) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
