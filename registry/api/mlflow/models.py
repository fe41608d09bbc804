"""MLflow dialect: ``registered-models/*`` (models, their tags and aliases)."""
from __future__ import annotations

from ...errors import ApprovalRequired, InvalidArgument, NotFound
from ...schemas.mlflow import model_version_json, registered_model_json
from ...services import aliases, stages
from ...services import models as svc
from ..authn import current_actor
from . import bp, ok
from .search import model_conditions, model_order
from .wire import MLFLOW_PREFIXES, page_size, params
from ..replay import AnswerKey, Direct, WarmRead, about, answered, replayable
from ..rate_limits import search

MAX_MODELS_PAGE = 1000  # MLflow's limit for search-registered-models
DEFAULT_MODELS_PAGE = 100


def _summary_json(summary: svc.ModelSummary) -> dict:
    return registered_model_json(summary.model, summary.latest_versions, summary.aliases)


def _model_response(record) -> dict:
    """MLflow returns the full model (latest versions, aliases) after a write; read it back."""
    try:
        return {"registered_model": _summary_json(svc.get_model_summary(current_actor(), record.name))}
    except NotFound:  # renamed or deleted in between: the write's own result is still the truth
        return {"registered_model": registered_model_json(record, [], {})}


@bp.post("/registered-models/create")
def create_model():
    p = params()
    record = svc.create_model(current_actor(), p.required("name"), p.string("description"), p.tags())
    return ok({"registered_model": registered_model_json(record, [], {})})


@bp.get("/registered-models/get")
@replayable(lambda req: params(req).required("name"))
def get_model(name: str):
    summary = svc.get_model_summary(current_actor(), name)
    about(summary.model.id)
    return ok({"registered_model": _summary_json(summary)})


@bp.post("/registered-models/rename")
def rename_model():
    p = params()
    name, new_name = p.required("name"), p.required("new_name")
    return ok(_model_response(svc.update_model(current_actor(), name, new_name=new_name)))


@bp.patch("/registered-models/update")
def update_model():
    p = params()
    name = p.required("name")
    # As MLflow: the description sent replaces the old one, and an absent description clears it.
    record = svc.update_model(current_actor(), name, description=p.string("description") or "")
    return ok(_model_response(record))


@bp.delete("/registered-models/delete")
def delete_model():
    svc.delete_model(current_actor(), params().required("name"))
    return ok()


def _search(filter_text: str | None, order_by: list[str], max_results: int | None, page_token: str | None):
    query = svc.ModelQuery(conditions=model_conditions(filter_text), sort=model_order(order_by))
    page = svc.search_model_summaries(
        current_actor(), query, page_size(max_results, DEFAULT_MODELS_PAGE, MAX_MODELS_PAGE), page_token or None
    )
    body: dict = {}
    if page.items:
        body["registered_models"] = [_summary_json(s) for s in page.items]
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return ok(body)


@bp.get("/registered-models/search")
@search
def search_models():
    p = params()
    return _search(p.string("filter"), p.strings("order_by"), p.integer("max_results"), p.string("page_token"))


@bp.get("/registered-models/list")
@search
def list_models():
    """Databricks' ``list_models`` (removed from OSS MLflow): a search without filter or ordering."""
    p = params()
    return _search(None, [], p.integer("max_results"), p.string("page_token"))


def _latest_versions_args(req) -> tuple[str, tuple[str, ...]]:
    p = params(req)
    return p.required("name"), tuple(p.strings("stages"))


def _latest_versions(read: tuple[str, tuple[str, ...]], actor) -> Direct:
    name, wanted = read
    latest = stages.latest_versions(actor, name, wanted)
    return ok({"model_versions": [model_version_json(v) for v in latest.versions]} if latest.versions else {}), \
        latest.model_id


def _warm_latest_versions(key: AnswerKey) -> WarmRead | None:
    """What ``models:/<name>/<stage>`` asks (the client sends a POST) for a warm stage answer."""
    kind, name, stage = key
    if kind != "stage":
        return None
    return "POST", f"{MLFLOW_PREFIXES[0]}/mlflow/registered-models/get-latest-versions", None, \
        {"name": name, "stages": [stage]}


@bp.route("/registered-models/get-latest-versions", methods=["POST", "GET"])
@replayable(_latest_versions_args, direct=_latest_versions, warm=_warm_latest_versions)
def get_latest_versions(read: tuple[str, tuple[str, ...]]):
    return answered(_latest_versions(read, current_actor()))


@bp.post("/registered-models/set-tag")
def set_model_tag():
    p = params()
    svc.set_model_tag(current_actor(), p.required("name"), p.required("key"), p.string("value"))
    return ok()


@bp.delete("/registered-models/delete-tag")
def delete_model_tag():
    p = params()
    svc.delete_model_tag(current_actor(), p.required("name"), p.required("key"))
    return ok()


def _needs_a_request(error: ApprovalRequired, where: str) -> ApprovalRequired:
    """A protected alias changes through an approved alias request, which MLflow's API cannot file: say where."""
    return ApprovalRequired(f"{error.message} MLflow's API has no requests: file one with the registry's "
                            f"native API, POST {where}.", error.details)


@bp.post("/registered-models/alias")
def set_alias():
    p = params()
    name, alias, version = p.required("name"), p.required("alias"), p.required("version")
    try:
        aliases.set_alias(current_actor(), name, alias, version)
    except ApprovalRequired as error:
        raise _needs_a_request(error, f"/api/v1/models/{name}/versions/{version}/alias-requests") from None
    return ok()


@bp.delete("/registered-models/alias")
def delete_alias():
    p = params()
    name, alias = p.required("name"), p.required("alias")
    try:
        aliases.delete_alias(current_actor(), name, alias)
    except ApprovalRequired as error:
        raise _needs_a_request(error, f"/api/v1/models/{name}/aliases/{alias}/deletion-requests") from None
    return ok()


def _alias_args(req) -> tuple[str, str]:
    p = params(req)
    return p.required("name"), p.required("alias")


def _version_by_alias(read: tuple[str, str], actor) -> Direct:
    try:
        record = aliases.get_version_by_alias(actor, *read)
    except NotFound as error:
        # MLflow answers an unknown alias (of an existing model) with 400 INVALID_PARAMETER_VALUE.
        if "alias" in error.details:
            raise InvalidArgument(error.message, error.details) from None
        raise
    return ok({"model_version": model_version_json(record)}), record.model_id


def _warm_version_by_alias(key: AnswerKey) -> WarmRead | None:
    """What ``models:/<name>@<alias>`` asks for a warm alias answer."""
    kind, name, alias = key
    if kind != "alias":
        return None
    return "GET", f"{MLFLOW_PREFIXES[0]}/mlflow/registered-models/alias", {"name": name, "alias": alias}, None


@bp.get("/registered-models/alias")
@replayable(_alias_args, direct=_version_by_alias, warm=_warm_version_by_alias)
def get_version_by_alias(read: tuple[str, str]):
    return answered(_version_by_alias(read, current_actor()))
