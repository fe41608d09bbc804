"""A new version whose source names another registered version (``models:/<name>/<version|stage|latest>``,
``models:/<name>@<alias>``: what MLflow's ``copy_model_version`` sends): resolved when it is registered, as
MLflow's server does (``_resolve_registered_model_source_lineage`` and ``SqlAlchemyStore.create_model_version``).

* The source recorded is ``models:/<name>/<resolved version>`` (an alias or a stage can move later).
* The storage location is that version's own: where its artifacts are, copied now, so the new version keeps
  loading after the version or model it came from is deleted.
* The run is inherited; one sent with the request must be that version's (``sources.check_lineage``).
* The caller must be able to read the version named (else it is not found, as everywhere), and a prompt is
  not a model.

Not a use case: ``versions._create_versions`` calls it inside its transaction, per create."""
from __future__ import annotations

from dataclasses import dataclass

from .. import names, sources
from ..auth import Actor
from ..db.loading import find_model, find_version, highest_per_stage
from ..errors import InvalidArgument, NotFound
from ..lifecycle import Permission, parse_stage
from ..orm import ModelVersion
from .access import authorize
from .aliases import alias_target


@dataclass(frozen=True, slots=True)
class Resolved:
    source: str
    storage_location: str
    run_id: str | None


def _referenced(model, reference: sources.VersionReference) -> ModelVersion:
    if reference.version is not None:
        return find_version(model, reference.version)
    if reference.alias is not None:
        return alias_target(model, names.alias_name(reference.alias, for_write=False))
    if reference.stage is None:
        return alias_target(model, "latest")
    stage = parse_stage(reference.stage)
    found = highest_per_stage([model.id], [stage.value])
    if not found:
        raise NotFound(f"No versions of model with name '{model.name}' and stage '{stage.value}' found",
                       {"model": model.name, "stage": stage.value})
    return found[0]


def resolve(actor: Actor, source: str, reference: sources.VersionReference, *, run_id: str | None,
            model_id: str | None) -> Resolved:
    """``run_id``: as sent (None: not sent, so the referenced version's is inherited)."""
    model = find_model(names.model_name(reference.name))
    authorize(actor, model, Permission.READ, "Registering a copy of a version")
    prompt = model.tags.get(sources.PROMPT_TAG)
    if prompt is not None and prompt.value.lower() == "true":
        raise InvalidArgument(f"Invalid model version source: '{source}'. Prompt versions cannot be used as "
                              f"model version sources.", {"field": "source"})
    referenced = _referenced(model, reference)
    sources.check_lineage(source, run_id=run_id, model_id=model_id, referenced_run_id=referenced.run_id)
    return Resolved(
        source=f"models:/{model.name}/{referenced.version}",
        storage_location=referenced.storage_location or referenced.source,
        run_id=referenced.run_id if run_id is None else (run_id or None),
    )
