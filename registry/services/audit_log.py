"""Reading and verifying the audit trail."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from .. import names, pagination
from ..audit import ACTIONS, ChainBreak, verify_chain
from ..errors import InvalidArgument
from ..orm import AuditEvent, RegisteredModel
from ..auth import Actor
from .access import readable
from ..db.records import audit_record
from ..db.unit_of_work import read_only, session


@dataclass(frozen=True)
class AuditQuery:
    model_name: str | None = None
    version: int | None = None
    run_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    request_id: int | None = None


@read_only
def search_events(actor: Actor, query: AuditQuery, max_results: int | None = None, page_token: str | None = None):
    """Oldest first. ``model_name`` matches events recorded under that name and, if a model has that name
    now, all events of that model under earlier names."""
    limit = pagination.page_size(max_results)
    names.filter_text(query.run_id, "run_id")
    names.filter_text(query.actor, "actor")
    if query.version is not None and query.model_name is None:
        raise InvalidArgument("Filtering by version needs a model too.", {"field": "version"})
    if query.action is not None and query.action not in ACTIONS:
        raise InvalidArgument(f"Unknown action {query.action!r}; one of {sorted(ACTIONS)}.", {"field": "action"})
    if query.since and query.until and query.since > query.until:
        raise InvalidArgument("since must not be after until.", {"field": "since"})
    fp = pagination.fingerprint({"kind": "audit", **query.__dict__})
    stmt = select(AuditEvent).where(readable(actor, AuditEvent.model_id))
    if query.model_name is not None:
        name = names.model_name(query.model_name, "model")
        current_id = select(RegisteredModel.id).where(RegisteredModel.name == name).scalar_subquery()
        stmt = stmt.where(or_(AuditEvent.model_name == name, AuditEvent.model_id == current_id))
    if query.version is not None:
        stmt = stmt.where(AuditEvent.version == query.version)
    if query.run_id is not None:
        stmt = stmt.where(AuditEvent.run_id == query.run_id)
    if query.actor is not None:
        stmt = stmt.where(AuditEvent.actor == query.actor)
    if query.action is not None:
        stmt = stmt.where(AuditEvent.action == query.action)
    if query.request_id is not None:
        stmt = stmt.where(AuditEvent.request_id == query.request_id)
    if query.since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < query.until)
    after = pagination.decode_id(page_token, fp)
    if after is not None:
        stmt = stmt.where(AuditEvent.id > after)
    rows = session().scalars(stmt.order_by(AuditEvent.id).limit(limit + 1)).all()
    items = [audit_record(e) for e in rows[:limit]]
    token = pagination.next_id_token(rows, limit, fp)
    return pagination.Page(items, token)


@read_only
def verify() -> tuple[int, ChainBreak | None]:
    return verify_chain(session())
