"""A version's page: its details, how it differs from what Production serves, its requests and reviews, its
comments and history, and the actions the signed-in user may take (only those)."""
from __future__ import annotations

from dataclasses import dataclass

from flask import g, render_template

from ..lifecycle import ALIAS_PERMISSION, ALL_STAGES, Permission
from ..services import audit_log, comments, permissions, policies, review_queue, stages, versions
from ..services.audit_log import AuditQuery
from . import bp
from .session import signed_in

HISTORY_SHOWN = 100


@dataclass(frozen=True)
class DiffRow:
    field: str
    this: str
    production: str

    @property
    def changed(self) -> bool:
        return self.this != self.production


def diff(this, production) -> list[DiffRow]:
    """This version against the one Production serves: fields, then every tag either of them has."""
    rows = [DiffRow("Source", this.source, production.source),
            DiffRow("Run ID", this.run_id or "", production.run_id or ""),
            DiffRow("Description", this.description, production.description),
            DiffRow("Created by", this.created_by, production.created_by)]
    for key in sorted(set(this.tags) | set(production.tags)):
        rows.append(DiffRow(f"tag {key}", this.tags.get(key, ""), production.tags.get(key, "")))
    return rows


@bp.get("/models/<name>/versions/<int:number>")
@signed_in
def version_page(name: str, number: int):
    actor = g.actor
    version = versions.get_version(actor, name, number)
    production = next(iter(stages.latest_versions(actor, name, ["Production"]).versions), None)
    level = permissions.my_level(actor, name)
    protected = [p.alias for p in policies.get_model_policies(actor, name)
                 if p.alias is not None and p.required_approvals > 0]
    history = audit_log.search_events(actor, AuditQuery(model_name=name, version=number), HISTORY_SHOWN)
    return render_template(
        "version.html", version=version, production=production,
        diff=diff(version, production) if production is not None and production.version != number else None,
        requests=review_queue.version_requests(actor, name, number),
        direct_targets=stages.direct_targets(actor, name, number),
        request_targets=[s.value for s in ALL_STAGES if s.value != version.stage],
        may_comment=level >= Permission.EDIT, may_set_alias=level >= ALIAS_PERMISSION,
        protected_aliases=protected, comments=comments.list_comments(actor, name, number), history=history,
    )
