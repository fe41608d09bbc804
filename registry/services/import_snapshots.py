"""What an import reads from its source: a registered model, its versions and its open transition requests as
the source has them, and the check that they are what this registry would accept from a client. Pure: the
import itself is ``imports.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from .. import names, sources
from ..auth import validate_user_name
from ..errors import InvalidArgument, RegistryError
from ..extensions import settings
from ..lifecycle import parse_stage

STATUSES = frozenset({"READY", "PENDING_REGISTRATION", "FAILED_REGISTRATION"})


@dataclass(frozen=True, slots=True)
class VersionSnapshot:
    """A model version as the source has it."""

    version: int
    source: str
    created_at: datetime
    updated_at: datetime
    run_id: str | None = None
    run_link: str | None = None
    description: str = ""
    status: str = "READY"
    stage: str = "None"
    created_by: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    # An MLflow 3 logged model's id: checked against a ``models:/<id>`` source, as create_version does.
    logged_model_id: str | None = None


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """An open transition request as a Databricks workspace lists it."""

    version: int
    to_stage: str
    requested_by: str
    created_at: datetime
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """A registered model as the source has it, with all its (surviving) versions and its aliases."""

    name: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    versions: tuple[VersionSnapshot, ...] = ()
    aliases: dict[str, int] = field(default_factory=dict)
    created_by: str | None = None
    requests: tuple[RequestSnapshot, ...] = ()  # open ones (Databricks); MLflow OSS has none


def millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def from_millis(value: object) -> datetime:
    """An epoch-milliseconds timestamp (as MLflow sends it, a string or a number) as an aware datetime."""
    return datetime.fromtimestamp(int(value or 0) / 1000, tz=timezone.utc)


def checked_snapshot(snapshot: ModelSnapshot) -> ModelSnapshot:
    """The snapshot as this registry would accept it from a client; InvalidArgument names what is wrong."""
    name = names.model_name(snapshot.name)
    allow_local = settings().allow_local_sources
    versions = []
    seen: set[int] = set()
    for v in sorted(snapshot.versions, key=lambda v: v.version):
        where = f"version {v.version}: "
        try:
            number = names.version_number(v.version)
            if number < 1 or number in seen:
                raise InvalidArgument(f"version number {v.version} is not a new positive number")
            seen.add(number)
            tags = names.tags(v.tags)
            source = names.bounded_text(v.source, "source", names.MAX_SOURCE, required=True)
            run_id = names.bounded_text(v.run_id, "run_id", names.MAX_RUN_ID) or None
            sources.check_source(source, run_id=run_id, model_id=v.logged_model_id, tags=tags,
                                 allow_local=allow_local)
            if v.status not in STATUSES:
                raise InvalidArgument(f"unknown status {v.status!r}")
            versions.append(VersionSnapshot(
                version=number, source=source, created_at=v.created_at, updated_at=v.updated_at, run_id=run_id,
                run_link=names.bounded_text(v.run_link, "run_link", names.MAX_RUN_LINK) or None,
                description=names.bounded_text(v.description, "description", names.MAX_DESCRIPTION) or "",
                status=v.status, stage=parse_stage(v.stage).value, created_by=v.created_by or "", tags=tags,
            ))
        except RegistryError as error:
            raise InvalidArgument(where + error.message) from None
    numbers = {v.version for v in versions}
    aliases = {}
    for alias, number in sorted(snapshot.aliases.items()):
        alias = names.alias_name(alias, for_write=True)
        if number not in numbers:
            raise InvalidArgument(f"alias {alias} points at version {number}, which the source does not have")
        aliases[alias] = number
    requests = []
    for r in snapshot.requests:
        if r.version not in numbers:
            raise InvalidArgument(f"a transition request names version {r.version}, which the source does not have")
        requests.append(RequestSnapshot(
            version=r.version, to_stage=parse_stage(r.to_stage).value,
            requested_by=validate_user_name(r.requested_by, "requested_by"), created_at=r.created_at,
            comment=names.bounded_text(r.comment, "comment", names.MAX_DESCRIPTION) or ""))
    return ModelSnapshot(
        name=name, created_at=snapshot.created_at, updated_at=snapshot.updated_at,
        description=names.bounded_text(snapshot.description, "description", names.MAX_DESCRIPTION) or "",
        tags=names.tags(snapshot.tags), versions=tuple(versions), aliases=aliases, created_by=snapshot.created_by,
        requests=tuple(requests),
    )
