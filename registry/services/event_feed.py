"""The pull feed (``GET /api/v1/events``): events in a durable order, for consumers that cannot receive HTTP.

Each caller sees exactly the events the audit trail shows them (``audit_log.visible_events``); the cursor is a
feed position (``events/feed.py``), so a consumer that stores it resumes where it stopped, after a restart too.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import literal_column, select

from .. import pagination
from ..auth import Actor
from ..db.unit_of_work import read_only, session, use_case
from ..errors import InvalidArgument
from ..events.feed import NEW_VERSION, PREVIOUS_VERSION, FeedEvent, assign_positions
from ..orm import AuditEvent, Event
from .audit_log import visible_events


@dataclass(frozen=True)
class FeedPage:
    events: list[FeedEvent]
    cursor: str  # the position of the last event returned (or the one given): pass it as ``after``


def parse_cursor(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidArgument("after must be a cursor returned by this feed (a non-negative integer).",
                              {"field": "after"})
    return int(raw)


@use_case
def sequence() -> None:
    """Give positions to the events committed since the last call (anyone's)."""
    assign_positions(session())


@read_only
def read(actor: Actor, after: int, max_results: int | None = None) -> FeedPage:
    limit = pagination.page_size(max_results)
    rows = session().execute(
        select(Event.id.label("event_id"), Event.position, AuditEvent,
               literal_column(PREVIOUS_VERSION).label("previous_version"),
               literal_column(NEW_VERSION).label("new_version"))
        .join(AuditEvent, AuditEvent.id == Event.audit_event_id)
        .where(Event.position > after, visible_events(actor))
        .order_by(Event.position).limit(limit)
    ).all()
    events = [FeedEvent(r.event_id, a.id, r.position, a.seq, a.occurred_at, a.actor, a.action, a.model_name, a.version,
                        a.run_id, a.from_stage, a.to_stage, r.previous_version, r.new_version, a.request_id,
                        a.details) for r in rows for a in (r.AuditEvent,)]
    return FeedPage(events, str(events[-1].position if events else after))
