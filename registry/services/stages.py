"""Stage transitions and stage lookups ("latest per stage", "current Production")."""
from __future__ import annotations

from sqlalchemy import func, select, tuple_

from .. import names
from ..audit import Action, record
from ..auth import Actor
from ..errors import NotFound
from ..lifecycle import ALL_STAGES, Stage, check_transition, parse_stage, stage_to_archive
from ..orm import ModelVersion, RegisteredModel
from .loading import find_model, find_version, lock_model, touch
from .records import VersionRecord, version_record
from .unit_of_work import now, read_only, session, use_case


@use_case
def transition_stage(
    actor: Actor, model_name: str, version: int | str, stage: str, *, archive_existing_versions: bool = False
) -> VersionRecord:
    """Move a version to ``stage``; with ``archive_existing_versions`` archive the target stage's others.

    Runs under the model row lock, so concurrent promotions are applied one after the other and, when each
    asks to archive the others, exactly one version ends up in the target stage.
    """
    target = parse_stage(stage)
    number = names.version_number(version)
    model = lock_model(names.model_name(model_name))
    mv = find_version(model, number)
    current = Stage(mv.stage)
    check_transition(current, target, archive_existing_versions)
    s = session()
    when = now()
    archived: list[int] = []
    archive_stage = stage_to_archive(target, archive_existing_versions)
    if archive_stage is not None:
        others = s.scalars(
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id, ModelVersion.stage == archive_stage.value,
                   ModelVersion.id != mv.id)
            .order_by(ModelVersion.version)
        ).all()
        for other in others:
            record(s, actor, Action.VERSION_TRANSITIONED, model_id=model.id, model_name=model.name,
                   version=other.version, run_id=other.run_id, from_stage=other.stage,
                   to_stage=Stage.ARCHIVED.value,
                   details={"reason": "archive_existing_versions", "promoted_version": mv.version}, now=when)
            other.stage = Stage.ARCHIVED.value
            touch(other, when)
            archived.append(other.version)
    if current != target or archived:
        record(s, actor, Action.VERSION_TRANSITIONED, model_id=model.id, model_name=model.name,
               version=mv.version, run_id=mv.run_id, from_stage=current.value, to_stage=target.value,
               details={"archive_existing_versions": archive_existing_versions, "archived_versions": archived},
               now=when)
        mv.stage = target.value
        touch(mv, when)
    s.flush()
    return version_record(mv)


def _parse_stages(stages: list[str] | tuple[str, ...] | None) -> list[Stage]:
    if not stages:
        return list(ALL_STAGES)
    return list(dict.fromkeys(parse_stage(s) for s in stages))


@read_only
def latest_versions(model_name: str, stages: list[str] | tuple[str, ...] | None = None) -> list[VersionRecord]:
    """The highest version in each requested stage (all stages when none are given), in stage order."""
    wanted = _parse_stages(stages)
    model = find_model(names.model_name(model_name))
    highest = (
        select(ModelVersion.stage, func.max(ModelVersion.version))
        .where(ModelVersion.model_id == model.id, ModelVersion.stage.in_([s.value for s in wanted]))
        .group_by(ModelVersion.stage)
    )
    rows = session().scalars(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, tuple_(ModelVersion.stage, ModelVersion.version).in_(highest)
        )
    ).all()
    by_stage = {row.stage: row for row in rows}
    return [version_record(by_stage[s.value]) for s in wanted if s.value in by_stage]


@read_only
def current_version(model_name: str, stage: str) -> VersionRecord:
    """The version currently serving ``stage``: the highest version number in it (MLflow's rule)."""
    target = parse_stage(stage)
    name = names.model_name(model_name)
    row = session().scalars(
        select(ModelVersion)
        .join(ModelVersion.model)
        .where(RegisteredModel.name == name, ModelVersion.stage == target.value)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    ).first()
    if row is None:
        find_model(name)
        raise NotFound(f"Registered model {name} has no version in stage {target.value}.",
                       {"model": name, "stage": target.value})
    return version_record(row)
