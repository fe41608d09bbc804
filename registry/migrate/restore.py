"""``registry import registry --from FILE``: an export brought back, after it verified offline.

The file is read whole and grouped by model; each model is restored in its own transaction
(``services.backups.restore_model``), so a killed restore resumes like an import (restored models are
"unchanged" the second time). Registry-wide rows and the trails of models deleted before the export follow.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..auth import Actor
from ..errors import RegistryError
from ..services import backups
from ..services.imports import FAILED, ImportOutcome
from .exchange import ExportFileError, read_lines, verify_file
from .run import Reporter

REGISTRY_CHAIN = 0


def _load(path: str | Path):
    models: dict[int, backups.ModelBundle] = {}
    users: list[dict] = []
    wide = {"policy": [], "permission": []}
    by_model: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    chains: dict[int, list[dict]] = defaultdict(list)
    for _, obj in read_lines(path):
        kind = obj.get("kind")
        if kind in ("header", "footer"):
            continue
        row = backups.parse_row(kind, obj)
        if kind in ("model", "version"):
            row["tags"] = obj.get("tags", {})
        if kind == "request":
            row["approvals"] = [backups.parse_approval(a) for a in obj.get("approvals", [])]
        if kind == "model":
            models[row["id"]] = backups.ModelBundle(row)
        elif kind == "user":
            users.append(row)
        elif kind == "audit_event":
            chains[row["chain_id"]].append(row)
        elif kind in wide and row.get("model_id") is None:
            wide[kind].append(row)
        else:
            by_model[kind][row["model_id"]].append(row)
    for model_id, bundle in models.items():
        bundle.versions = by_model["version"].pop(model_id, [])
        bundle.aliases = by_model["alias"].pop(model_id, [])
        bundle.policies = by_model["policy"].pop(model_id, [])
        bundle.permissions = by_model["permission"].pop(model_id, [])
        bundle.requests = by_model["request"].pop(model_id, [])
        bundle.comments = by_model["comment"].pop(model_id, [])
        bundle.events = sorted(chains.pop(model_id, []), key=lambda e: e["seq"])
    return users, wide, models, chains


def restore_file(actor: Actor, path: str | Path, reporter: Reporter) -> list[ImportOutcome]:
    checked = verify_file(path)
    if not checked.ok:
        raise ExportFileError("the export does not verify, nothing was restored: " + "; ".join(checked.problems))
    users, wide, models, chains = _load(path)
    outcomes = [backups.restore_registry_wide(actor, users, wide["policy"], wide["permission"],
                                              sorted(chains.pop(REGISTRY_CHAIN, []), key=lambda e: e["seq"]))]
    origin = f"registry export {Path(path).name}"
    with reporter.phase("restoring models", len(models)):
        for model_id in sorted(models):
            try:
                outcomes.append(backups.restore_model(actor, models[model_id], origin=origin))
            except RegistryError as error:
                outcomes.append(ImportOutcome(models[model_id].model["name"], FAILED, error.message))
            reporter.advance()
    for chain_id in sorted(chains):  # models deleted before the export: their trail alone
        outcomes.append(backups.restore_chain(actor, chain_id, sorted(chains[chain_id], key=lambda e: e["seq"])))
    return outcomes
