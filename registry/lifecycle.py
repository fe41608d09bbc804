"""Pure lifecycle rules: stages, which transitions are allowed, what archiving does, who may apply them.

No I/O and no Flask: every rule here is tested exhaustively without a database.
"""
from __future__ import annotations

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
