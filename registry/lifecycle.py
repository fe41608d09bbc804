"""Pure lifecycle rules: stages, which transitions are allowed, what archiving does, who may apply them.

No I/O and no Flask: every rule here is tested exhaustively without a database.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from .errors import InvalidArgument, InvalidTransition


class Stage(str, Enum):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    def __str__(self) -> str:
        return self.value


ALL_STAGES: tuple[Stage, ...] = tuple(Stage)

# Stages that a version is "in service" in; only these may archive their current occupants.
ACTIVE_STAGES = frozenset({Stage.STAGING, Stage.PRODUCTION})

_BY_LOWER = {stage.value.lower(): stage for stage in Stage}


def parse_stage(raw: object) -> Stage:
    """Stage names are case-insensitive on input and canonical on output ("production" -> Production)."""
    if isinstance(raw, Stage):
        return raw
    if isinstance(raw, str):
        stage = _BY_LOWER.get(raw.strip().lower())
        if stage is not None:
            return stage
    raise InvalidArgument(
        f"Invalid stage {raw!r}: must be one of None, Staging, Production, Archived.",
        {"field": "stage", "allowed": [s.value for s in Stage]},
    )


class Permission(IntEnum):
    """The Databricks permission ladder; each level includes all below it."""

    READ = 1
    EDIT = 2
    MANAGE_STAGING = 3
    MANAGE_PRODUCTION = 4
    MANAGE = 5


# Every (from, to) pair is allowed: MLflow allows it and rollbacks need it (Archived -> Production,
# Production -> Staging). What differs per pair is the permission needed to apply it directly.
TRANSITIONS: dict[tuple[Stage, Stage], Permission] = {
    (source, target): (
        Permission.MANAGE_PRODUCTION
        if Stage.PRODUCTION in (source, target)
        else Permission.MANAGE_STAGING
    )
    for source in Stage
    for target in Stage
}


def check_transition(current: Stage, target: Stage, archive_existing_versions: bool) -> Permission:
    """Validate a transition and return the permission needed to apply it directly.

    Raises InvalidTransition when ``archive_existing_versions`` is asked of a stage that has nothing to
    archive meaningfully (MLflow answers 500 here; we answer a clear 4xx).
    """
    if archive_existing_versions and target not in ACTIVE_STAGES:
        raise InvalidTransition(
            f"archive_existing_versions can only be used when transitioning to Staging or Production, "
            f"not to {target.value}.",
            {"stage": target.value},
        )
    return TRANSITIONS[(current, target)]


def stage_to_archive(target: Stage, archive_existing_versions: bool) -> Stage | None:
    """The stage whose other occupants are archived by this transition, if any."""
    if archive_existing_versions and target in ACTIVE_STAGES:
        return target
    return None


# --- Approval policies and reviews ---------------------------------------------------------------------

@dataclass(frozen=True)
class ApprovalPolicy:
    """Approvals a transition into one stage needs. ``required_approvals == 0``: holders of the stage
    permission may transition directly. Requesters can never approve their own request."""

    stage: Stage
    required_approvals: int = 0
    creator_may_not_approve: bool = False
    scope: str = "default"  # "model", "registry" or "default": where the policy came from, for messages

    def describe(self) -> str:
        where = {"model": "this model's", "registry": "the registry-wide", "default": "the default"}[self.scope]
        extra = "; the version's creator may not approve" if self.creator_may_not_approve else ""
        return (
            f"{where} approval policy for {self.stage.value} requires {self.required_approvals} "
            f"approval(s){extra}"
        )


MAX_REQUIRED_APPROVALS = 10


def check_policy_values(required_approvals: object, creator_may_not_approve: object) -> None:
    if isinstance(required_approvals, bool) or not isinstance(required_approvals, int) or not (
        0 <= required_approvals <= MAX_REQUIRED_APPROVALS
    ):
        raise InvalidArgument(
            f"required_approvals must be an integer from 0 to {MAX_REQUIRED_APPROVALS}.",
            {"field": "required_approvals"},
        )
    if not isinstance(creator_may_not_approve, bool):
        raise InvalidArgument("creator_may_not_approve must be a boolean.", {"field": "creator_may_not_approve"})


def direct_transition_refusal(policy: ApprovalPolicy) -> str | None:
    """Why a direct transition into the policy's stage is refused, or None if it is allowed."""
    if policy.required_approvals > 0:
        return (
            f"A direct transition to {policy.stage.value} is not allowed: {policy.describe()}. "
            f"Create a transition request instead."
        )
    return None


def approval_refusal(
    policy: ApprovalPolicy, *, reviewer: str, requester: str, version_creator: str, already_approved: bool
) -> str | None:
    """Why ``reviewer`` may not approve this request (stage permission aside), or None if they may."""
    if reviewer == requester:
        return "You cannot approve your own transition request."
    if policy.creator_may_not_approve and reviewer == version_creator:
        return f"The creator of the version may not approve it: {policy.describe()}."
    if already_approved:
        return "You have already approved this request; approvals must come from distinct reviewers."
    return None


def approvals_needed(policy: ApprovalPolicy) -> int:
    """A request is applied at this many distinct approvals (at least one: a request is always reviewed)."""
    return max(1, policy.required_approvals)


class RequestStatus(str, Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"

    def __str__(self) -> str:
        return self.value


def check_request(current: Stage, target: Stage, archive_existing_versions: bool) -> None:
    """A request must ask for a change: the version is not already in the target stage."""
    check_transition(current, target, archive_existing_versions)
    if current == target:
        raise InvalidTransition(
            f"The version is already in {target.value}; there is nothing to request.", {"stage": target.value}
        )


def is_superseded(request_from_stage: Stage, version_stage: Stage) -> bool:
    """A pending request is moot once its version has left the stage it was requested from."""
    return request_from_stage != version_stage
