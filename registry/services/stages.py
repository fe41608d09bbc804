"""Stage transitions and stage lookups ("latest per stage", "current Production")."""
from __future__ import annotations

from dataclasses import dataclass

from .. import names
from ..auth import Actor
from ..errors import ApprovalRequired
from ..lifecycle import (
    ALL_STAGES,
    Permission,
    Stage,
    check_force,
    check_transition,
    direct_transition_refusal,
    forced_details,
    parse_stage,
    refusal_details,
)
from ..db.loading import find_model, find_version, lock_model
from .access import authorize, level
from . import serving
from .policies import PolicyBook
from .transitions import apply_transition
from ..db.records import VersionRecord, version_record
from ..db.queueing import one_writer_per_model
from ..db.unit_of_work import now, read_only, session, use_case


def _direct(model_id: int, current: Stage, target: Stage, archive_existing_versions: bool,
            book: PolicyBook | None = None):
    """What a direct transition needs: the stage permission, the review the policies ask for, and the policy's
    refusal of a direct move (None: allowed without review). ``book``: the model's policies, already read."""
    needed = check_transition(current, target, archive_existing_versions)
    review = (book or PolicyBook([model_id])).transition_review(model_id, current, target, archive_existing_versions)
    return needed, review, direct_transition_refusal(review, current, target)


@one_writer_per_model
@use_case
def transition_stage(
    actor: Actor,
    model_name: str,
    version: int | str,
    stage: str,
    *,
    archive_existing_versions: bool = False,
    comment: str | None = None,
    force: bool = False,
) -> VersionRecord:
    """Move a version to ``stage`` directly; with ``archive_existing_versions`` archive the target stage's others.

    Needs the stage permission for this (from, to) pair, and the policies of every stage the move changes
    (the one left, the one entered, Archived when archiving: ``lifecycle.stages_changed``) must allow direct
    transitions; an admin may ``force`` past them, which the audit event records. Runs under the model row
    lock, so concurrent promotions apply one after the other and, when each asks to archive the others,
    exactly one version ends up in the target stage.
    """
    target = parse_stage(stage)
    number = names.version_number(version)
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading")
    mv = find_version(model, number)
    current = Stage(mv.stage)
    needed, review, refusal = _direct(model.id, current, target, archive_existing_versions)
    authorize(actor, model, needed, f"Transitioning a version to {target.value}")
    check_force(force, actor.is_admin, "a transition")
    if refusal and not force:
        raise ApprovalRequired(refusal, {"model": model.name, "stage": target.value, "from_stage": current.value,
                                         **refusal_details(review)})
    details = {"comment": comment} if comment else {}
    if refusal and force:
        details.update(forced_details(review))
    apply_transition(actor, model, mv, target, archive_existing_versions=archive_existing_versions, when=now(),
                     session=session(), details=details)
    return version_record(mv)


def _parse_stages(stages: list[str] | tuple[str, ...] | None) -> list[Stage]:
    if not stages:
        return list(ALL_STAGES)
    return list(dict.fromkeys(parse_stage(s) for s in stages))


@dataclass(frozen=True, slots=True)
class LatestVersions:
    """The current version of each asked stage of one model, in stage order."""

    model_id: int
    versions: tuple[VersionRecord, ...]


def latest_versions(actor: Actor, model_name: str, stages: list[str] | tuple[str, ...] | None = None) -> LatestVersions:
    """The highest version in each requested stage (all stages when none are given), in stage order: the
    serving read with whole versions (one statement)."""
    wanted = _parse_stages(stages)
    model_id, records = serving.latest_records(actor, model_name, [s.value for s in wanted])
    return LatestVersions(model_id, tuple(records))


@read_only
def direct_targets(actor: Actor, model_name: str, version: int | str) -> tuple[Stage, ...]:
    """The stages ``actor`` may move the version to right now without a review (``transition_stage`` without
    archiving, evaluated without acting): what the console offers as "transition now"."""
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading")
    current = Stage(find_version(model, names.version_number(version)).stage)
    held, book = level(actor, model.id), PolicyBook([model.id])
    allowed = []
    for target in ALL_STAGES:
        if target is current:
            continue
        needed, _, refusal = _direct(model.id, current, target, False, book)
        if held >= needed and refusal is None:
            allowed.append(target)
    return tuple(allowed)
