"""Shared lookups for use cases: find or lock a model and its versions, raising NotFound in one wording."""
from __future__ import annotations

from sqlalchemy import BigInteger, Text, func, select, true
from sqlalchemy.dialects.postgresql import array as sa_array

from .. import audit
from ..errors import NotFound
from ..orm import ModelVersion, RegisteredModel
from .unit_of_work import read_once, session


def model_not_found(name: str) -> NotFound:
    return NotFound(f"Registered Model with name={name} not found", {"model": name})


def version_not_found(name: str, version: int) -> NotFound:
    return NotFound(f"Model Version (name={name}, version={version}) not found", {"model": name, "version": version})


def stage_empty(name: str, stage: str) -> NotFound:
    return NotFound(f"Registered model {name} has no version in stage {stage}.", {"model": name, "stage": stage})


def alias_not_found(name: str, alias: str) -> NotFound:
    """``latest`` (reserved) names the highest version; any other alias names itself."""
    if alias.lower() == "latest":
        return NotFound(f"Latest version not found for model {name}.", {"model": name})
    return NotFound(f"Registered model alias {alias} not found.", {"model": name, "alias": alias})


def find_model(name: str) -> RegisteredModel:
    model = read_once(("model", name), lambda: session().scalars(
        select(RegisteredModel).where(RegisteredModel.name == name)).one_or_none())
    if model is None:
        raise model_not_found(name)
    return model


def lock_model(name: str) -> RegisteredModel:
    """Lock the model row for the rest of the transaction.

    Every model-scoped write takes this lock first, which serialises version numbering, stage changes and
    the model's audit chain, and (one lock, always taken first) rules out deadlocks between them.
    """
    model = _locked(RegisteredModel.name == name)
    if model is None:
        raise model_not_found(name)
    return model


def lock_model_by_id(model_id: int) -> RegisteredModel | None:
    """``lock_model`` for a model addressed by id (the parent of a request, a comment, a webhook); None if gone."""
    return _locked(RegisteredModel.id == model_id)


def _locked(where) -> RegisteredModel | None:
    model = session().scalars(
        select(RegisteredModel).where(where).with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if model is not None:
        # The row was read under its lock, so its audit head is current: the chain needs no query of its own.
        audit.known_head(session(), model.id, model.audit_seq, model.audit_hash)
    return model


def find_version(model: RegisteredModel, version: int) -> ModelVersion:
    found = read_once(("version", model.id, version), lambda: session().scalars(
        select(ModelVersion)
        .where(ModelVersion.model_id == model.id, ModelVersion.version == version)
        .execution_options(populate_existing=True)
    ).one_or_none())
    if found is None:
        raise version_not_found(model.name, version)
    return found


def find_version_by_name(name: str, version: int) -> ModelVersion:
    found = session().scalars(
        select(ModelVersion)
        .join(ModelVersion.model)
        .where(RegisteredModel.name == name, ModelVersion.version == version)
    ).one_or_none()
    if found is None:
        # Distinguish "no such model" from "no such version" as MLflow does.
        find_model(name)
        raise version_not_found(name, version)
    return found


def touch(row: RegisteredModel | ModelVersion, when) -> None:
    """An update as MLflow counts one: ``updated_at`` (its ``last_updated_timestamp``) moves, and the revision.

    MLflow moves a model's timestamp when a version is created, transitioned or deleted, and when the model's
    description changes or it is renamed; a version's when it is transitioned (or archived by another's
    transition), its description changes or its model is renamed. Nothing else moves them: see ``revise``."""
    row.updated_at = when
    revise(row)


def revise(row: RegisteredModel | ModelVersion) -> None:
    """The representation changed (a tag, an alias) but MLflow counts no update: only the revision (the
    native API's ETag) moves, so timestamps mean in our API what they mean in MLflow's."""
    row.revision = row.revision + 1


def highest_per_stage(model_ids: list[int], stages: list[str]) -> list[ModelVersion]:
    """The current version of each (model, stage): the highest version number in it (MLflow's rule). One
    query for any number of models; the serving path has its own single-row statement (services/serving.py)."""
    if not model_ids or not stages:
        return []
    # One probe of the (model_id, stage, version) index per pair, newest first, LIMIT 1: a GROUP BY would
    # aggregate every version of the model (100,000 index entries for a big one) and mislead the planner.
    pairs = select(func.unnest(sa_array(list(model_ids), type_=BigInteger)).label("model_id")).subquery("m")
    wanted = select(func.unnest(sa_array(list(stages), type_=Text)).label("stage")).subquery("s")
    top = (select(ModelVersion.id).where(ModelVersion.model_id == pairs.c.model_id,
                                         ModelVersion.stage == wanted.c.stage)
           .order_by(ModelVersion.version.desc()).limit(1).lateral("top"))
    ids = select(top.c.id).select_from(pairs).join(wanted, true()).join(top, true())
    return list(session().scalars(select(ModelVersion).where(ModelVersion.id.in_(ids))))
