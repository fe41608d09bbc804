"""Reading and verifying the audit trail, and who may see which event (``visible_events``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from .. import names, pagination
from ..audit import ACTIONS, REGISTRY_CHAIN, Action, ChainBreak, verify_chain
from ..errors import InvalidArgument
from ..lifecycle import Permission
from ..orm import AuditEvent, RegisteredModel
from ..auth import Actor
from .access import holding, may_read_registry_grants, require_admin
from ..db.loading import find_model
from ..db.records import audit_record
from ..db.unit_of_work import read_only, session


# --- Who sees which event: exactly those who may read what it describes. Every read of events filters with
# ``visible_events``. A new kind of event about a model needs READ on it unless listed below; a new kind of
# registry-wide event is for admins only until listed, so it starts hidden.

# On a model, these need MANAGE, as reading the model's grants and webhooks does; every other event READ.
_MANAGED_ON_MODEL = (Action.PERMISSIONS_CHANGED, Action.WEBHOOK_CREATED, Action.WEBHOOK_UPDATED,
                     Action.WEBHOOK_DELETED, Action.WEBHOOK_REDELIVERED)
# Registry-wide: policies are readable by every authenticated user; a user sees the events about their own
# tokens (which their token listing shows anyway). Users, other tokens and registry webhooks: admins only.
_PUBLIC_ON_REGISTRY = (Action.POLICY_CHANGED,)
_OWN_TOKEN_EVENTS = (Action.TOKEN_CREATED, Action.TOKEN_REVOKED)


def _values(actions) -> list[str]:
    return [a.value for a in actions]


def visible_events(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause on ``AuditEvent`` keeping the events ``actor`` may see."""
    if actor.is_admin:
        return true()
    managed = AuditEvent.action.in_(_values(_MANAGED_ON_MODEL))
    on_model = and_(AuditEvent.chain_id != REGISTRY_CHAIN, or_(
        and_(managed, holding(actor, Permission.MANAGE, AuditEvent.model_id)),
        and_(~managed, holding(actor, Permission.READ, AuditEvent.model_id)),
    ))
    on_registry = and_(AuditEvent.chain_id == REGISTRY_CHAIN, or_(
        AuditEvent.action.in_(_values(_PUBLIC_ON_REGISTRY)),
        (AuditEvent.action == Action.PERMISSIONS_CHANGED.value) if may_read_registry_grants(actor) else false(),
        and_(AuditEvent.action.in_(_values(_OWN_TOKEN_EVENTS)), AuditEvent.details["user"].astext == actor.name),
    ))
    return or_(on_model, on_registry)


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
    stmt = select(AuditEvent).where(visible_events(actor))
    if query.model_name is not None:
        name = names.model_name(query.model_name, "model")
        current_id = session().scalar(select(RegisteredModel.id).where(RegisteredModel.name == name))
        if current_id is None:
            stmt = stmt.where(AuditEvent.model_name == name)
        else:
            # The model's own events by id (an index range, its version too when asked), plus any recorded
            # under this name by other models (renamed away or deleted): two index scans, not a filter over
            # every event of a big model.
            stmt = stmt.where(or_(AuditEvent.model_id == current_id,
                                  and_(AuditEvent.model_name == name, AuditEvent.model_id != current_id)))
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


@read_only
def verify_model(actor: Actor, model_name: str) -> tuple[int, ChainBreak | None]:
    """Verify one model's chain (admins: it reads every event of the model, whoever may see them)."""
    require_admin(actor, "Verifying an audit chain")
    model = find_model(names.model_name(model_name))
    return verify_chain(session(), model.id)
