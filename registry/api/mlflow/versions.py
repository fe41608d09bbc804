"""MLflow dialect: ``model-versions/*`` (versions, their tags, stages, search, download URI)."""
from __future__ import annotations

from ...schemas.mlflow import model_version_json
from ...services import stages
from ...services import versions as svc
from ..authn import current_actor
from . import bp, ok
from .search import version_conditions, version_order
from .wire import page_size, params
from ..replay import about, replayable
from ..rate_limits import search

# MLflow accepts up to 200,000 versions a page. Its REST default when max_results is omitted is that
# maximum too; we default to the client's own default (10,000) so a bare curl stays a sane size.
MAX_VERSIONS_PAGE = 200_000
DEFAULT_VERSIONS_PAGE = 10_000


def _version(record):
    return ok({"model_version": model_version_json(record)})


@bp.post("/model-versions/create")
def create_version():
    p = params()
    # model_id (an MLflow 3 logged model) is checked against a models:/<model_id> source and not stored: OSS
    # MLflow never returns it either.
    return _version(svc.create_version(
        current_actor(), p.required("name"), p.required("source"), run_id=p.string("run_id"),
        run_link=p.string("run_link"), description=p.string("description"), tags=p.tags(),
        model_id=p.string("model_id"),
    ))


def _version_args(req) -> tuple[str, str]:
    p = params(req)
    return p.required("name"), p.required("version")


@bp.get("/model-versions/get")
@replayable(_version_args)
def get_version(read: tuple[str, str]):
    record = svc.get_version(current_actor(), *read)
    about(record.model_id)
    return _version(record)


@bp.patch("/model-versions/update")
def update_version():
    p = params()
    return _version(svc.update_version(current_actor(), p.required("name"), p.required("version"),
                                       description=p.string("description")))


@bp.post("/model-versions/transition-stage")
def transition_stage():
    """Obeys approval policies: where one requires approvals, the service refuses with PERMISSION_DENIED
    and says to file a transition request (MLflow itself has no such rule)."""
    p = params()
    return _version(stages.transition_stage(
        current_actor(), p.required("name"), p.required("version"), p.required("stage"),
        archive_existing_versions=p.boolean("archive_existing_versions"),
    ))


@bp.delete("/model-versions/delete")
def delete_version():
    p = params()
    svc.delete_version(current_actor(), p.required("name"), p.required("version"))
    return ok()


@bp.get("/model-versions/search")
@search
def search_versions():
    p = params()
    query = svc.VersionQuery(conditions=version_conditions(p.string("filter")),
                             sort=version_order(p.strings("order_by")))
    page = svc.search_versions(
        current_actor(), query, page_size(p.integer("max_results"), DEFAULT_VERSIONS_PAGE, MAX_VERSIONS_PAGE),
        p.string("page_token") or None, max_page_size=MAX_VERSIONS_PAGE,
    )
    body: dict = {}
    if page.items:
        body["model_versions"] = [model_version_json(v) for v in page.items]
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return ok(body)


@bp.get("/model-versions/get-download-uri")
def get_download_uri():
    """Where the version's artifacts are (this registry stores none, it points at them): its source, or for a
    source naming another version, that version's location when this one was registered (as MLflow)."""
    p = params()
    record = svc.get_version(current_actor(), p.required("name"), p.required("version"))
    return ok({"artifact_uri": record.download_uri})


@bp.post("/model-versions/set-tag")
def set_version_tag():
    p = params()
    svc.set_version_tag(current_actor(), p.required("name"), p.required("version"), p.required("key"),
                        p.string("value"))
    return ok()


@bp.delete("/model-versions/delete-tag")
def delete_version_tag():
    p = params()
    svc.delete_version_tag(current_actor(), p.required("name"), p.required("version"), p.required("key"))
    return ok()
