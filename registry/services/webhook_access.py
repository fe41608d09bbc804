"""Who may manage which webhook, for every dialect: a model-scoped webhook needs MANAGE on its model (to
create, change, delete, test or see it, or its delivery log); a registry-wide one (no model) is for admins
only. A webhook the actor may not see is "not found", and each dialect's API sees its own webhooks only.
"""
from __future__ import annotations

from sqlalchemy import Select, select

from .. import names
from ..auth import Actor
from ..db.loading import find_model, lock_model
from ..db.unit_of_work import session
from ..errors import NotFound
from ..lifecycle import Permission
from ..orm import RegistryWebhook
from .access import authorize, level, lock_parent, require_admin


def _webhook_id(raw: object) -> int:
    text = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    if not text.isdigit() or len(text) > 18:
        raise _not_found(raw)
    return int(text)


def _not_found(raw: object) -> NotFound:
    return NotFound(f"Registry webhook {raw} not found.", {"webhook_id": str(raw)})


def managed_webhook(actor: Actor, raw_id: object, doing: str, *, lock: bool = False,
                    dialect: str | None = None) -> RegistryWebhook:
    """The webhook, if the actor may manage it; a webhook on a model the actor cannot read is "not found".
    Each dialect's API sees its own webhooks only (``dialect``; None: any, for the delivery log).

    With ``lock``, the model row is locked first (the lock every model write takes first), then the webhook.
    """
    webhook_id = _webhook_id(raw_id)
    s = session()
    row = s.get(RegistryWebhook, webhook_id)
    if row is None or (dialect is not None and row.dialect != dialect):
        raise _not_found(raw_id)
    if row.model_id is None:
        require_admin(actor, f"{doing} a registry-wide webhook")
    else:
        model = row.model
        if lock:
            model = lock_parent(select(RegistryWebhook.model_id).where(RegistryWebhook.id == webhook_id),
                                _not_found(raw_id))
        authorize(actor, model, Permission.MANAGE, f"{doing} a webhook", missing=_not_found(raw_id))
    if lock:
        row = s.scalars(select(RegistryWebhook).where(RegistryWebhook.id == webhook_id)
                        .with_for_update(of=RegistryWebhook).execution_options(populate_existing=True)).one_or_none()
        if row is None:  # deleted while we waited for the lock
            raise _not_found(raw_id)
    return row


def may_manage(actor: Actor, model_id: int | None, levels: dict[int, int]) -> bool:
    """Whether ``actor`` may see a webhook on ``model_id`` (None: registry-wide); ``levels`` memoises."""
    if model_id is None:
        return actor.is_admin
    return levels.setdefault(model_id, level(actor, model_id)) >= Permission.MANAGE


def owner_for_new_webhook(actor: Actor, model_name: str | None, field: str) -> int | None:
    """The model a new webhook watches (None: registry-wide), if the actor may create one there; the model
    row is locked, as every model write locks it first."""
    if model_name is None:
        require_admin(actor, "Creating a registry-wide webhook")
        return None
    model = lock_model(names.model_name(model_name, field))
    authorize(actor, model, Permission.MANAGE, "Creating a webhook")
    return model.id


def of_model(actor: Actor, stmt: Select, model_name: str | None, field: str) -> Select:
    """``stmt`` narrowed to the webhooks of ``model_name`` (if given), which the actor must MANAGE."""
    if model_name is None:
        return stmt
    model = find_model(names.model_name(model_name, field))
    authorize(actor, model, Permission.MANAGE, "Listing webhooks")
    return stmt.where(RegistryWebhook.model_id == model.id)
