"""Pure lifecycle rules: stages, which transitions are allowed, what archiving does, who may apply them.

No I/O and no Flask: every rule here is tested exhaustively without a database.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Iterable

from .errors import InvalidArgument, InvalidTransition, NotFound, PermissionDenied


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


class StageBoard:
    """What each stage serves, kept up to date move by move: its highest version number (MLflow's rule, which
    ``db/history.stage_answers`` reads from the database). For writers that place many versions at once and
    record, with each move, what every stage serves once it is made, without a query per move."""

    def __init__(self, placed: Iterable[tuple[int, Stage]]):
        self._members: dict[Stage, list[int]] = {stage: [] for stage in Stage}
        for number, stage in sorted(placed):
            self._members[stage].append(number)

    def move(self, number: int, current: Stage, target: Stage) -> None:
        members = self._members[current]
        at = bisect_left(members, number)
        if at == len(members) or members[at] != number:
            raise ValueError(f"version {number} is not in {current.value}")
        del members[at]
        insort(self._members[target], number)

    def answers(self) -> dict[str, int | None]:
        return {stage.value: (members[-1] if members else None) for stage, members in self._members.items()}


def parse_stage(raw: object) -> Stage:
    """Stage names are case-insensitive on input and canonical on output ("production" -> Production), and
    otherwise exact: MLflow refuses " staging ", so a padded stage is refused here too, in MLflow's words."""
    if isinstance(raw, Stage):
        return raw
    if isinstance(raw, str):
        stage = _BY_LOWER.get(raw.lower())
        if stage is not None:
            return stage
    shown = raw if isinstance(raw, str) else repr(raw)
    raise InvalidArgument(
        f"Invalid Model Version stage: {shown}. Value must be one of None, Staging, Production, Archived.",
        {"field": "stage", "allowed": [s.value for s in Stage]},
    )


class Permission(IntEnum):
    """The Databricks permission ladder; each level includes all below it. ``DENY`` is not a rung but a
    veto: a DENY grant that reaches a principal (to them or to ``*``, on the model or registry-wide) leaves
    them nothing on the model whatever else they are granted (admins excepted; ``services/access.py``). It
    is below every rung, so ``held >= needed`` is false for it everywhere."""

    DENY = -1
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
#
# The rule (DESIGN §4, "Policy covers every path to what is served"): any change that alters what a serving
# lookup for a policy-protected stage or alias returns needs the same review as a promotion into it.
# * A stage's policy governs every change of what that stage holds: a version entering it and a version
#   leaving it. A transition is governed by the stage it leaves, the stage it enters and, when
#   ``archive_existing_versions`` sends the target's other versions to Archived, by Archived too; it needs
#   the strictest of them (``combine``). archive_existing_versions archives only the *target* stage's
#   versions, so a promotion into an unprotected stage can never touch Production.
# * An alias policy ("protected alias", W&B's term) governs setting, moving and deleting that alias.
# * Deleting a version (or a model) changes what every stage it is in and every alias pointing at it serve:
#   it is governed by all of those policies, and refused while any requires approvals; the reviewed way is to
#   move it out first (a transition request, an alias request), then delete it.
# * Renaming a model changes what its name serves: governed like deleting it (the name is what serving
#   looks up, and a renamed-away name is free for anyone to fill).
# * Creating a version is not governed: it enters None, which no policy worth the name protects, and a new
#   version has to land somewhere. (A policy on None therefore governs leaving None, not arriving in it.)
# A change that needs approvals is refused unless an admin forces it; the audit event says so. Reviews of
# requests use the same combined policy: N distinct approvals, never the requester's, and not the version
# creator's when any governing policy says so.

ALIAS_PERMISSION = Permission.MANAGE_PRODUCTION  # aliases route serving traffic as Production does


@dataclass(frozen=True)
class ApprovalPolicy:
    """Approvals a change of what one stage holds, or of where one alias points, needs (exactly one of
    ``stage`` and ``alias`` is set). ``required_approvals == 0``: holders of the permission may change it
    directly. Requesters can never approve their own request."""

    stage: Stage | None
    required_approvals: int = 0
    creator_may_not_approve: bool = False
    scope: str = "default"  # "model", "registry" or "default": where the policy came from, for messages
    alias: str | None = None

    @property
    def subject(self) -> str:
        return f"alias {self.alias}" if self.alias is not None else self.stage.value

    @property
    def binding(self) -> bool:
        """Whether the policy asks for anything beyond the default."""
        return self.required_approvals > 0 or self.creator_may_not_approve

    def describe(self) -> str:
        where = {"model": "this model's", "registry": "the registry-wide", "default": "the default"}[self.scope]
        extra = "; the version's creator may not approve" if self.creator_may_not_approve else ""
        return f"{where} approval policy for {self.subject} requires {self.required_approvals} approval(s){extra}"

    def as_details(self) -> dict:
        key = {"alias": self.alias} if self.alias is not None else {"stage": self.stage.value}
        return {**key, "required_approvals": self.required_approvals,
                "creator_may_not_approve": self.creator_may_not_approve, "scope": self.scope}


@dataclass(frozen=True)
class RequiredReview:
    """The review one change needs: the strictest of the policies that govern it (see ``combine``)."""

    policies: tuple[ApprovalPolicy, ...]

    @property
    def required_approvals(self) -> int:
        return max((p.required_approvals for p in self.policies), default=0)

    @property
    def creator_may_not_approve(self) -> bool:
        return any(p.creator_may_not_approve for p in self.policies)

    @property
    def binding_policies(self) -> tuple[ApprovalPolicy, ...]:
        return tuple(p for p in self.policies if p.binding)

    @property
    def strictest(self) -> ApprovalPolicy | None:
        """The governing policy with the most required approvals (the first of equals)."""
        return max(self.policies, key=lambda p: p.required_approvals, default=None)

    def describe(self) -> str:
        """Every policy that asks for something (lax ones would only be noise); the strictest if none does."""
        shown = self.binding_policies or tuple(p for p in (self.strictest,) if p is not None)
        return " and ".join(p.describe() for p in shown) or "no approval policy applies"


def combine(policies) -> RequiredReview:
    """The review a change governed by all of ``policies`` needs: the most required approvals of any; the
    version's creator is barred from approving if any of them bars them."""
    return RequiredReview(tuple(policies))


def stages_changed(current: Stage, target: Stage, archive_existing_versions: bool) -> tuple[Stage, ...]:
    """Every stage whose contents a transition changes, each once: the one the version leaves, the one it
    enters and, with archive_existing_versions into an active stage, Archived (where the others go)."""
    changed = [current, target]
    if stage_to_archive(target, archive_existing_versions) is not None:
        changed.append(Stage.ARCHIVED)
    return tuple(dict.fromkeys(changed))


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


def refusal_details(review: RequiredReview) -> dict:
    """The machine-readable part of an ApprovalRequired: the count needed, where the strictest policy comes
    from, and every policy that asks for something."""
    strictest = review.strictest
    return {"required_approvals": review.required_approvals,
            "policy": strictest.scope if strictest is not None else "default",
            "policies": [p.as_details() for p in review.binding_policies]}


def direct_transition_refusal(review: RequiredReview, current: Stage, target: Stage) -> str | None:
    """Why a direct transition from ``current`` to ``target`` is refused, or None if it is allowed."""
    if review.required_approvals > 0:
        return (
            f"A direct transition from {current.value} to {target.value} is not allowed: {review.describe()}. "
            f"Create a transition request instead."
        )
    return None


class AliasAction(str, Enum):
    SET = "set"
    DELETE = "delete"

    def __str__(self) -> str:
        return self.value


def direct_alias_refusal(review: RequiredReview, alias: str, action: AliasAction) -> str | None:
    """Why setting/moving (or deleting) ``alias`` directly is refused, or None if it is allowed."""
    if review.required_approvals > 0:
        doing = "Setting or moving" if action is AliasAction.SET else "Deleting"
        return (f"{doing} alias {alias} directly is not allowed: {review.describe()}. "
                f"File an alias request instead; it applies once approved.")
    return None


def deletion_refusal(review: RequiredReview, what: str) -> str | None:
    """Why deleting ``what`` (something that serves protected stages or aliases) is refused, or None."""
    if review.required_approvals > 0:
        return (f"Deleting {what} would change what serving returns: {review.describe()}. Move it out of "
                f"those stages and aliases through a reviewed request first.")
    return None


def rename_refusal(review: RequiredReview, name: str) -> str | None:
    """Why renaming model ``name`` (serving looks models up by name) is refused, or None."""
    if review.required_approvals > 0:
        return (f"Renaming registered model {name} would change what serving returns under its name: "
                f"{review.describe()}. Move its versions out of those stages and aliases through reviewed "
                f"requests first, or ask an admin to force the rename.")
    return None


def check_force(force: bool, is_admin: bool, doing: str) -> None:
    """Only admins may force a change past an approval policy."""
    if force and not is_admin:
        raise PermissionDenied(f"Only admins may force {doing} past an approval policy.", {"field": "force"})


def forced_details(review: RequiredReview) -> dict:
    """What the audit event of a forced change records."""
    return {"forced": True, "bypassed_policy": review.describe()}


def approval_refusal(
    policy: ApprovalPolicy | RequiredReview, *, reviewer: str, requester: str, version_creator: str,
    already_approved: bool,
) -> str | None:
    """Why ``reviewer`` may not approve this request (permission aside), or None if they may."""
    if reviewer == requester:
        return "You cannot approve your own transition request."
    if policy.creator_may_not_approve and reviewer == version_creator:
        return f"The creator of the version may not approve it: {policy.describe()}."
    if already_approved:
        return "You have already approved this request; approvals must come from distinct reviewers."
    return None


def approvals_needed(policy: ApprovalPolicy | RequiredReview) -> int:
    """A request is applied at this many distinct approvals (at least one: a request is always reviewed)."""
    return max(1, policy.required_approvals)


def check_alias_request(action: AliasAction, alias: str, *, current_version: int | None,
                        requested_version: int | None) -> None:
    """An alias request must ask for a change: not to point the alias where it points, nor to delete an
    alias that is not set."""
    if action is AliasAction.SET and current_version == requested_version:
        raise InvalidTransition(f"Alias {alias} already points at version {requested_version}; there is "
                                f"nothing to request.", {"alias": alias})
    if action is AliasAction.DELETE and current_version is None:
        raise NotFound(f"Registered model alias {alias} not found.", {"alias": alias})


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
