"""Helpers shared by the service tests: make users, read the audit trail, walk paginated searches to the end."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import func, select, text

from registry.auth import Actor
from registry.extensions import db
from registry.services import identities
from registry.services.audit_log import AuditQuery, search_events
from registry.services.permissions import set_model_permissions, set_registry_permissions
from registry.db.records import AuditRecord


# Reads the trail on the tests' behalf. An admin, so every model's events are visible whoever wrote them;
# a keyword argument would clash with the ``actor`` filter of AuditQuery.
AUDITOR = Actor("auditor", is_admin=True)

# Sets things up for tests whose subjects are ordinary users; an admin, so no permission rule gets in its way.
ROOT = Actor("root", is_admin=True)


def person(name: str, level: str | None = None, *, model: str | None = None) -> Actor:
    """A non-admin user holding ``level`` registry-wide, or on ``model`` only (everyone READs by default)."""
    identities.create_user(ROOT, name)
    if level is not None:
        if model is None:
            set_registry_permissions(ROOT, [(name, level)], merge=True)
        else:
            set_model_permissions(ROOT, model, [(name, level)], merge=True)
    return Actor(name)


def events(**filters) -> list[AuditRecord]:
    """Every audit event matching ``filters`` (AuditQuery fields), oldest first, across all pages."""
    return walk(lambda size, token: search_events(AUDITOR, AuditQuery(**filters), size, token), page_size=1000)


def last_event_id() -> int:
    """A marker: events recorded after this call have a greater id (ids come from one sequence)."""
    found = db.session.execute(text("SELECT coalesce(max(id), 0) FROM audit_events")).scalar_one()
    # Close the session's read transaction the way read-only services do.
    db.session.rollback()
    return found


def count_rows(table) -> int:
    found = db.session.scalar(select(func.count()).select_from(table))
    db.session.rollback()  # end the read, as read-only services do
    return found


def events_after(marker: int) -> list[AuditRecord]:
    return [e for e in events() if e.id > marker]


def summary(event: AuditRecord) -> tuple:
    """The audited facts that every event carries, in one comparable tuple."""
    return (event.actor, event.action, event.model_name, event.version, event.run_id,
            event.from_stage, event.to_stage)


def walk(search: Callable, page_size: int) -> list:
    """Follow next_page_token until it runs out; ``search(max_results, page_token)`` returns a Page."""
    items: list = []
    token = None
    while True:
        page = search(page_size, token)
        assert len(page.items) <= page_size
        items.extend(page.items)
        token = page.next_page_token
        if token is None:
            return items
        # A token is only handed out when more rows follow.
        assert len(page.items) == page_size
