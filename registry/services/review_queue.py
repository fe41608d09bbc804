"""What a reader sees of transition requests: the inbox (what they may approve now), their own requests, and a
version's requests, each with the approvals it needs and what this reader may do about it.

The answers come from the same rules the writes enforce (``reviews.review_level``, ``reviews.required_review``,
``lifecycle.approval_refusal``), evaluated without acting, so the console offers exactly the actions the
server would accept. The server still checks everything again when one is taken.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import names, pagination
from ..auth import Actor
from ..db.loading import find_model, find_version
from ..db.records import RequestRecord, request_record
from ..db.unit_of_work import read_only, session
from ..lifecycle import Permission, RequestStatus, approval_refusal, approvals_needed
from ..orm import ModelVersion, TransitionRequest
from .access import authorize, levels, readable
from .policies import PolicyBook
from .reviews import required_review, review_level

# Pending requests an inbox looks at, at most: an inbox longer than this is a queue nobody reads.
INBOX_SCAN_LIMIT = 5000
_INBOX_CHUNK = 200


@dataclass(frozen=True)
class ReviewState:
    """One request as one reader sees it."""

    request: RequestRecord
    required_approvals: int  # under the policies in force now
    may_approve: bool
    may_reject: bool
    may_cancel: bool
    why_not: str | None  # why this reader may not approve a pending request, in the server's words


class _Judge:
    """Evaluates requests for one reader: the levels and policies of all their models are read up front, in
    one query each, so a page of a thousand requests costs a handful of queries."""

    def __init__(self, actor: Actor, requests: list[TransitionRequest]):
        self.actor = actor
        model_ids = {r.model_id for r in requests}
        self._levels = levels(actor, model_ids)
        self._book = PolicyBook(model_ids)

    def state(self, request: TransitionRequest, creator: str | None) -> ReviewState:
        actor = self.actor
        held = self._levels[request.model_id]
        review = required_review(request.model_id, request, request.archive_existing_versions, self._book)
        pending = request.status == RequestStatus.PENDING.value
        needed = review_level(request)
        own = actor.name == request.requested_by
        why_not = None
        if pending:
            why_not = approval_refusal(
                review, reviewer=actor.name, requester=request.requested_by,
                version_creator=creator or "",
                already_approved=any(a.approver == actor.name for a in request.approvals))
            if why_not is None and held < needed:
                why_not = f"Reviewing this request needs {needed.name} on the model."
        return ReviewState(
            request=request_record(request),
            required_approvals=approvals_needed(review),
            may_approve=pending and why_not is None,
            may_reject=pending and held >= needed and not own,
            may_cancel=pending and (own or held >= Permission.MANAGE),
            why_not=why_not,
        )


def _creators(requests: list[TransitionRequest]) -> dict[int, str]:
    """version id -> who created it (all a review rule needs of the version)."""
    ids = {r.version_id for r in requests}
    if not ids:
        return {}
    return dict(session().execute(select(ModelVersion.id, ModelVersion.created_by).where(ModelVersion.id.in_(ids))).all())


def _loaded(stmt):
    return session().scalars(stmt.options(selectinload(TransitionRequest.approvals),
                                          selectinload(TransitionRequest.model))).all()


@read_only
def inbox(actor: Actor, max_results: int | None = None) -> list[ReviewState]:
    """Everything pending that ``actor`` may approve right now, oldest first. Read a chunk at a time, so a
    long queue costs what the page shows, not what the queue holds."""
    limit = pagination.page_size(max_results)
    result: list[ReviewState] = []
    after, scanned = 0, 0
    while len(result) < limit and scanned < INBOX_SCAN_LIMIT:
        rows = _loaded(
            select(TransitionRequest)
            .where(TransitionRequest.status == RequestStatus.PENDING.value,
                   TransitionRequest.requested_by != actor.name,
                   TransitionRequest.id > after,
                   readable(actor, TransitionRequest.model_id))
            .order_by(TransitionRequest.id).limit(_INBOX_CHUNK))
        if not rows:
            break
        judge, creators = _Judge(actor, rows), _creators(rows)
        for request in rows:
            state = judge.state(request, creators.get(request.version_id))
            if state.may_approve:
                result.append(state)
                if len(result) == limit:
                    break
        after, scanned = rows[-1].id, scanned + len(rows)
    return result


@read_only
def my_requests(actor: Actor, max_results: int | None = None,
                page_token: str | None = None) -> pagination.Page[ReviewState]:
    """The actor's own requests, newest first, on models they can still read."""
    limit = pagination.page_size(max_results)
    fp = pagination.fingerprint({"kind": "my-requests", "actor": actor.name})
    stmt = select(TransitionRequest).where(TransitionRequest.requested_by == actor.name,
                                           readable(actor, TransitionRequest.model_id))
    after = pagination.decode_id(page_token, fp)
    if after is not None:
        stmt = stmt.where(TransitionRequest.id < after)
    rows = _loaded(stmt.order_by(TransitionRequest.id.desc()).limit(limit + 1))
    token = pagination.next_id_token(rows, limit, fp)
    judge, creators = _Judge(actor, rows[:limit]), _creators(rows[:limit])
    return pagination.Page([judge.state(r, creators.get(r.version_id)) for r in rows[:limit]], token)


@read_only
def version_requests(actor: Actor, model_name: str, version: int | str, max_results: int | None = None) -> list[ReviewState]:
    """A version's requests (stage and alias), newest first."""
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading")
    mv = find_version(model, names.version_number(version))
    rows = _loaded(select(TransitionRequest).where(TransitionRequest.version_id == mv.id)
                   .order_by(TransitionRequest.id.desc()).limit(pagination.page_size(max_results)))
    judge = _Judge(actor, rows)
    return [judge.state(r, mv.created_by) for r in rows]
