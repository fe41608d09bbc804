"""Shared lookups for use cases: find or lock a model and its versions, raising NotFound in one wording."""
from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select

from .. import audit
from ..errors import NotFound
from ..orm import ModelVersion, RegisteredModel
from .unit_of_work import session


class ModelRef(NamedTuple):
    """A model's identity without loading the row (for permission checks on a hot write path)."""

    id: int
    name: str


def model_not_found(name: str) -> NotFound:
    return NotFound(f"Registered Model with name={name} not found", {"model": name})


def version_not_found(name: str, version: int) -> NotFound:
    return NotFound(f"Model Version (name={name}, version={version}) not found", {"model": name, "version": version})


def find_model(name: str) -> RegisteredModel:
    model = session().scalars(select(RegisteredModel).where(RegisteredModel.name == name)).one_or_none()
    if model is None:
        raise model_not_found(name)
    return model


def lock_model(name: str) -> RegisteredModel:
    """Lock the model row for the rest of the transaction.

    Every model-scoped write takes this lock first, which serialises version numbering, stage changes and
    the model's audit chain, and (one lock, always taken first) rules out deadlocks between them.
    """
    model = session().scalars(
        select(RegisteredModel)
        .where(RegisteredModel.name == name)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if model is None:
        raise model_not_found(name)
    # The row was read under its lock, so its audit head is current: the chain needs no query of its own.
    audit.known_head(session(), model.id, model.audit_seq, model.audit_hash)
    return model


def find_version(model: RegisteredModel, version: int) -> ModelVersion:
    found = session().scalars(
        select(ModelVersion)
        .where(ModelVersion.model_id == model.id, ModelVersion.version == version)
        .execution_options(populate_existing=True)
    ).one_or_none()
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
    row.updated_at = when
    row.revision = row.revision + 1
