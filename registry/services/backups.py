"""Backups: everything the registry knows, as rows (``export_rows``), and those rows brought back
(``restore_model``, ``restore_chain``, ``restore_registry_wide``). The file format around the rows is
``migrate/exchange.py``'s; this module knows the tables.

**What a backup holds.** Users, models with their tags, versions with their tags, aliases, approval
policies, permission grants, transition requests with their approvals, comments, and every audit event with
its hash. Not secrets: API tokens (only their hashes are stored, but a backup is not where a credential
should travel) and webhooks (they hold signing secrets and job tokens) are left out; re-create them.

**Restoring.** A model's rows are written back as they were, ids included, and its audit events verbatim,
so its chain still verifies and its history reads as it did: the model becomes what it was, not a copy made
today. That needs its ids free here (an empty registry, or one that never held them). Where they are taken,
the model is imported through ``services/imports.py`` instead, as a new model whose history starts with its
import (its requests, comments and old trail stay in the backup), and the outcome says so. A model of that
name already here with the same chain head is left alone ("unchanged"); with another history it is skipped.
"""
from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import DateTime, Table, delete, func, insert, select, text

from .. import audit
from ..auth import Actor
from ..orm import (
    ApprovalPolicy,
    AuditEvent,
    Comment,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    PermissionGrant,
    RegisteredModel,
    RegisteredModelTag,
    TransitionApproval,
    TransitionRequest,
    User,
)
from ..cache.hub import GRANTS
from ..db.unit_of_work import announce, read_only, session, use_case
from .access import require_admin
from .import_snapshots import ModelSnapshot, VersionSnapshot
from .imports import FAILED, IMPORTED, SKIPPED, UNCHANGED, ImportOutcome, import_model

# Each kind of row: its table, and the columns left out. ``generation`` is a cache cursor, not data: a
# restored model announces itself, which moves it.
KINDS: dict[str, tuple[Table, frozenset[str]]] = {
    "user": (User.__table__, frozenset()),
    "model": (RegisteredModel.__table__, frozenset({"generation"})),
    "version": (ModelVersion.__table__, frozenset()),
    "alias": (ModelAlias.__table__, frozenset()),
    "policy": (ApprovalPolicy.__table__, frozenset()),
    "permission": (PermissionGrant.__table__, frozenset()),
    "request": (TransitionRequest.__table__, frozenset()),
    "comment": (Comment.__table__, frozenset()),
    "audit_event": (AuditEvent.__table__, frozenset()),
}
_ORDER = {"audit_event": (AuditEvent.chain_id, AuditEvent.seq), "alias": (ModelAlias.model_id, ModelAlias.alias)}
# Who the registry-wide default grant of a fresh install comes from (migration 0002).
MIGRATION_GRANTOR = "migration"
# Tables whose rows a restore writes with their ids, so their sequences must move past them.
_SEQUENCED = ("users", "registered_models", "model_versions", "approval_policies", "permission_grants",
              "transition_requests", "transition_approvals", "comments", "audit_events")


def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _row(kind: str, mapping) -> dict[str, Any]:
    table, left_out = KINDS[kind]
    return {c.name: _value(mapping[c.name]) for c in table.columns if c.name not in left_out}


def parse_row(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row as read from a file, with its timestamps as datetimes again (and nothing but the kind's columns)."""
    table, left_out = KINDS[kind]
    parsed = {}
    for c in table.columns:
        if c.name in left_out or c.name not in row:
            continue
        value = row[c.name]
        parsed[c.name] = datetime.fromisoformat(value) if isinstance(c.type, DateTime) and value else value
    return parsed


def _tags(table: Table, owner: str, owners: set[int] | None) -> dict[int, dict[str, str]]:
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    stmt = select(table.c[owner], table.c.key, table.c.value).order_by(table.c[owner], table.c.key)
    for owner_id, key, value in session().execute(stmt):
        if owners is None or owner_id in owners:
            tags[owner_id][key] = value
    return tags


@read_only
def export_rows(actor: Actor, patterns: tuple[str, ...], write: Callable[[str, dict[str, Any]], None]) -> dict[str, int]:
    """Hand ``write(kind, row)`` every row of a backup, kind by kind, from one snapshot of the database
    (REPEATABLE READ: a backup taken while others write is still one consistent state). ``patterns``: only
    the models matching these globs, and nothing registry-wide. Returns the count of each kind."""
    require_admin(actor, "Exporting the registry")
    s = session()
    s.rollback()  # whatever the session read before: the snapshot starts with this transaction
    s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    chosen: set[int] | None = None
    if patterns:
        chosen = {model_id for model_id, name in s.execute(select(RegisteredModel.id, RegisteredModel.name))
                  if any(fnmatch.fnmatchcase(name, p) for p in patterns)}
    model_tags = _tags(RegisteredModelTag.__table__, "model_id", chosen)
    version_tags = _tags(ModelVersionTag.__table__, "version_id", None)
    approvals: dict[int, list[dict]] = defaultdict(list)
    for row in s.execute(select(TransitionApproval.__table__).order_by(TransitionApproval.id)).mappings():
        approvals[row["request_id"]].append({k: _value(v) for k, v in row.items()})
    counts: dict[str, int] = {}
    for kind, (table, _) in KINDS.items():
        if chosen is not None and kind == "user":
            continue
        owner = table.c.chain_id if kind == "audit_event" else table.c.id if kind == "model" else table.c.get("model_id")
        stmt = select(table).order_by(*(_ORDER.get(kind) or (table.c.id,)))
        if chosen is not None and owner is not None:
            stmt = stmt.where(owner.in_(chosen))
        n = 0
        for mapping in s.execute(stmt.execution_options(yield_per=5000)).mappings():
            row = _row(kind, mapping)
            if kind == "model":
                row["tags"] = model_tags.get(row["id"], {})
            elif kind == "version":
                row["tags"] = version_tags.get(row["id"], {})
            elif kind == "request":
                row["approvals"] = approvals.get(row["id"], [])
            write(kind, row)
            n += 1
        counts[kind] = n
    return counts


@dataclass
class ModelBundle:
    """One model's rows from a backup, and its chain."""

    model: dict[str, Any]
    versions: list[dict] = field(default_factory=list)
    aliases: list[dict] = field(default_factory=list)
    policies: list[dict] = field(default_factory=list)
    permissions: list[dict] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    comments: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def _insert(table: Table, rows: list[dict]) -> None:
    if rows:
        session().execute(insert(table), rows)


def _insert_renumbering(table: Table, rows: list[dict]) -> None:
    """Rows nothing restored refers to by id (users, registry-wide rules, the events of a chain: an event's
    id is not part of its hash): with their ids where those are free here, else with new ones."""
    if not rows:
        return
    taken = session().scalar(select(func.count()).select_from(table).where(table.c.id.in_([r["id"] for r in rows])))
    _insert(table, [{k: v for k, v in r.items() if k != "id"} for r in rows] if taken else rows)


def _ids_free(bundle: ModelBundle) -> bool:
    s = session()
    model_id = bundle.model["id"]
    taken = s.scalar(select(func.count()).select_from(RegisteredModel).where(RegisteredModel.id == model_id))
    taken = taken or s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_id == model_id))
    for table, rows in ((ModelVersion.__table__, bundle.versions), (TransitionRequest.__table__, bundle.requests),
                        (Comment.__table__, bundle.comments), (ApprovalPolicy.__table__, bundle.policies),
                        (PermissionGrant.__table__, bundle.permissions)):
        ids = [r["id"] for r in rows]
        if taken or not ids:
            continue
        taken = s.scalar(select(func.count()).select_from(table).where(table.c.id.in_(ids)))
    approvals = [a["id"] for r in bundle.requests for a in r.get("approvals", [])]
    if approvals and not taken:
        taken = s.scalar(select(func.count()).select_from(TransitionApproval).where(TransitionApproval.id.in_(approvals)))
    return not taken


def snapshot_of(bundle: ModelBundle) -> ModelSnapshot:
    """The model as an import sees it (for a restore whose ids are taken here)."""
    by_id = {v["id"]: v for v in bundle.versions}
    m = bundle.model
    return ModelSnapshot(
        name=m["name"], created_at=m["created_at"], updated_at=m["updated_at"], description=m["description"],
        tags=m.get("tags", {}), created_by=m.get("created_by"),
        aliases={a["alias"]: by_id[a["version_id"]]["version"] for a in bundle.aliases},
        versions=tuple(VersionSnapshot(
            version=v["version"], source=v["source"], created_at=v["created_at"], updated_at=v["updated_at"],
            run_id=v["run_id"], run_link=v["run_link"], description=v["description"], status=v["status"],
            stage=v["stage"], created_by=v["created_by"], tags=v.get("tags", {})) for v in bundle.versions),
    )


@use_case
def restore_model(actor: Actor, bundle: ModelBundle, *, origin: str) -> ImportOutcome:
    """Bring one model back from a backup (see the module doc); one transaction."""
    require_admin(actor, "Restoring a registered model")
    s = session()
    m = bundle.model
    here = s.execute(select(RegisteredModel.id, RegisteredModel.audit_seq, RegisteredModel.audit_hash)
                     .where(RegisteredModel.name == m["name"])).first()
    if here is not None:
        if tuple(here) == (m["id"], m["audit_seq"], m["audit_hash"]):
            return ImportOutcome(m["name"], UNCHANGED, model_id=here.id)
        return ImportOutcome(m["name"], SKIPPED, f"a registered model {m['name']} with another history exists here",
                             model_id=here.id)
    if not _ids_free(bundle):
        outcome = import_model.__wrapped__(actor, snapshot_of(bundle), origin=origin)
        if outcome.status == IMPORTED:
            return ImportOutcome(outcome.name, IMPORTED, "its ids are taken here: imported as a new model with a "
                                 "new history (requests, comments and its old trail stay in the backup)",
                                 outcome.changes, outcome.model_id)
        return outcome
    _insert(RegisteredModel.__table__, [{k: v for k, v in m.items() if k != "tags"}])
    _insert(RegisteredModelTag.__table__, [{"model_id": m["id"], "key": k, "value": v}
                                           for k, v in m.get("tags", {}).items()])
    _insert(ModelVersion.__table__, [{k: v for k, v in row.items() if k != "tags"} for row in bundle.versions])
    _insert(ModelVersionTag.__table__, [{"version_id": row["id"], "key": k, "value": v}
                                        for row in bundle.versions for k, v in row.get("tags", {}).items()])
    _insert(ModelAlias.__table__, bundle.aliases)
    _insert(ApprovalPolicy.__table__, bundle.policies)
    _insert(PermissionGrant.__table__, bundle.permissions)
    _insert(TransitionRequest.__table__, [{k: v for k, v in r.items() if k != "approvals"} for r in bundle.requests])
    _insert(TransitionApproval.__table__, [parse_approval(a) for r in bundle.requests for a in r.get("approvals", [])])
    _insert(Comment.__table__, bundle.comments)
    _insert(AuditEvent.__table__, bundle.events)
    audit.restored(s, m["id"], m["audit_seq"], m["audit_hash"])
    if bundle.permissions:
        announce(s, GRANTS)
    _advance_sequences()
    return ImportOutcome(m["name"], IMPORTED, changes=len(bundle.events), model_id=m["id"])


def parse_approval(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "created_at": datetime.fromisoformat(row["created_at"])
            if isinstance(row.get("created_at"), str) else row.get("created_at")}


@use_case
def restore_chain(actor: Actor, chain_id: int, events: list[dict]) -> ImportOutcome:
    """The trail of a model deleted before the backup (or of the registry itself, chain 0, with nothing
    else): written back if this registry has no events of that chain; "unchanged" if it has exactly these."""
    require_admin(actor, "Restoring an audit chain")
    s = session()
    what = f"trail of deleted model {events[-1]['model_name']} (chain {chain_id})" if events else f"chain {chain_id}"
    head = s.execute(select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.chain_id == chain_id)
                     .order_by(AuditEvent.seq.desc()).limit(1)).first()
    if head is not None:
        if events and tuple(head) == (events[-1]["seq"], events[-1]["hash"]):
            return ImportOutcome(what, UNCHANGED)
        return ImportOutcome(what, SKIPPED, f"chain {chain_id} is another model's here")
    _insert_renumbering(AuditEvent.__table__, events)
    _advance_sequences()
    return ImportOutcome(what, IMPORTED, changes=len(events))


@use_case
def restore_registry_wide(actor: Actor, users: list[dict], policies: list[dict], permissions: list[dict],
                          events: list[dict]) -> ImportOutcome:
    """Users and the registry-wide policies and grants, with the registry's own chain (0): written back only
    into a registry that has none of its own yet (its registry-wide rules are its own otherwise)."""
    require_admin(actor, "Restoring the registry's users and rules")
    s = session()
    what = "registry-wide users, policies and permissions"
    if not (users or policies or permissions or events):
        return ImportOutcome(what, UNCHANGED)
    audit.lock_registry_chain(s)
    head = s.execute(select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.chain_id == audit.REGISTRY_CHAIN)
                     .order_by(AuditEvent.seq.desc()).limit(1)).first()
    if head is not None and events and tuple(head) == (events[-1]["seq"], events[-1]["hash"]):
        return ImportOutcome(what, UNCHANGED)
    # A registry as migrations leave it (no trail of its own, no users, only the migration's default grant)
    # takes the backup's; any other keeps its own.
    wide_grants = PermissionGrant.model_id.is_(None)
    mine = (s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_id == audit.REGISTRY_CHAIN))
            or s.scalar(select(func.count()).select_from(User))
            or s.scalar(select(func.count()).select_from(ApprovalPolicy).where(ApprovalPolicy.model_id.is_(None)))
            or s.scalar(select(func.count()).select_from(PermissionGrant)
                        .where(wide_grants, PermissionGrant.granted_by != MIGRATION_GRANTOR)))
    if mine:
        return ImportOutcome(what, SKIPPED, "this registry has users, registry-wide rules or a trail of its own: "
                                            "re-apply the backup's by hand if wanted")
    s.execute(delete(PermissionGrant).where(wide_grants))
    for table, rows in ((User.__table__, users), (ApprovalPolicy.__table__, policies),
                        (PermissionGrant.__table__, permissions), (AuditEvent.__table__, events)):
        _insert_renumbering(table, rows)
    _advance_sequences()
    announce(s, GRANTS)  # every process drops the permission levels it cached
    return ImportOutcome(what, IMPORTED, changes=len(events))


def _advance_sequences() -> None:
    """Rows written with their ids: each table's id sequence must now hand out ids above them. Model ids
    above every chain too: a restored trail of a deleted model keeps its chain id, which no new model may
    take (its events would join that chain)."""
    s = session()
    for table in _SEQUENCED:
        highest = f"(SELECT max(id) FROM {table})"
        if table == "registered_models":
            highest = f"greatest({highest}, (SELECT max(chain_id) FROM audit_events))"
        s.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), m) FROM (SELECT {highest} AS m) t "
            f"WHERE m IS NOT NULL AND m > (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
            f"FROM {table}_id_seq)"))


__all__ = ["FAILED", "KINDS", "ModelBundle", "export_rows", "parse_row", "restore_chain", "restore_model",
           "restore_registry_wide", "snapshot_of"]
