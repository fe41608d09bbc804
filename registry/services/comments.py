"""Comments on model versions: create (EDIT), edit own, delete own (admins any)."""
from __future__ import annotations

from sqlalchemy import select

from .. import names
from ..audit import Action, record
from ..auth import Actor
from ..errors import NotFound, PermissionDenied
from ..lifecycle import Permission
from ..orm import Comment, RegisteredModel
from ..db.loading import find_model, find_version, lock_model
from .access import authorize, lock_parent
from ..db.records import CommentRecord, comment_record
from ..db.unit_of_work import now, read_only, session, use_case

MAX_COMMENT = 65535


def _text(comment: object) -> str:
    return names.bounded_text(comment, "comment", MAX_COMMENT, required=True)


@use_case
def create_comment(actor: Actor, model_name: str, version: int | str, comment: str) -> CommentRecord:
    body = _text(comment)
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.EDIT, "Commenting")
    mv = find_version(model, names.version_number(version))
    when = now()
    row = Comment(model_id=model.id, version_id=mv.id, author=actor.name, body=body, created_at=when, updated_at=when)
    session().add(row)
    session().flush()
    record(session(), actor, Action.COMMENT_CREATED, model_id=model.id, model_name=model.name, version=mv.version,
           run_id=mv.run_id, details={"comment_id": row.id, "comment": body}, now=when)
    return comment_record(row)


def _missing(comment_id: int) -> NotFound:
    return NotFound(f"Comment {comment_id} not found.", {"comment_id": comment_id})


def _lock_comment(comment_id: int) -> tuple[RegisteredModel, Comment]:
    model = lock_parent(select(Comment.model_id).where(Comment.id == comment_id), _missing(comment_id))
    row = session().scalars(select(Comment).where(Comment.id == comment_id)
                            .execution_options(populate_existing=True)).one_or_none()
    if row is None:
        raise _missing(comment_id)
    return model, row


def _authorize_read(actor: Actor, model: RegisteredModel, comment_id: int) -> None:
    authorize(actor, model, Permission.READ, "Reading", missing=_missing(comment_id))


def _own(actor: Actor, row: Comment, doing: str) -> None:
    if row.author != actor.name and not actor.is_admin:
        raise PermissionDenied(f"{doing}: only the author ({row.author}) or an admin may do this.",
                               {"comment_id": row.id})


@use_case
def update_comment(actor: Actor, comment_id: int, comment: str) -> CommentRecord:
    body = _text(comment)
    model, row = _lock_comment(comment_id)
    _authorize_read(actor, model, comment_id)
    if row.author != actor.name:
        raise PermissionDenied("Only the author may edit a comment.", {"comment_id": row.id})
    when = now()
    record(session(), actor, Action.COMMENT_UPDATED, model_id=model.id, model_name=model.name,
           version=row.version.version, run_id=row.version.run_id,
           details={"comment_id": row.id, "from": row.body, "to": body}, now=when)
    row.body, row.updated_at = body, when
    session().flush()
    return comment_record(row)


@use_case
def delete_comment(actor: Actor, comment_id: int) -> None:
    model, row = _lock_comment(comment_id)
    _authorize_read(actor, model, comment_id)
    _own(actor, row, "Deleting a comment")
    record(session(), actor, Action.COMMENT_DELETED, model_id=model.id, model_name=model.name,
           version=row.version.version, run_id=row.version.run_id,
           details={"comment_id": row.id, "comment": row.body}, now=now())
    session().delete(row)
    session().flush()


@read_only
def list_comments(actor: Actor, model_name: str, version: int | str) -> list[CommentRecord]:
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading")
    mv = find_version(model, names.version_number(version))
    rows = session().scalars(select(Comment).where(Comment.version_id == mv.id).order_by(Comment.id))
    return [comment_record(r) for r in rows]
