"""Secrets the installation makes for itself when the operator gives none, shared by every process and host
through the database (the console signs its cookies with one)."""
from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from ..db.unit_of_work import now, session, use_case
from ..orm import InstanceSecret


@use_case
def shared_secret(name: str) -> str:
    """The secret called ``name``, made on first use (256 random bits). Processes asking at once all get the
    same one: the first insert wins, the others' inserts do nothing and they read the winner's."""
    s = session()
    s.execute(insert(InstanceSecret).values(name=name, value=secrets.token_urlsafe(32), created_at=now())
              .on_conflict_do_nothing(index_elements=["name"]))
    return s.scalar(select(InstanceSecret.value).where(InstanceSecret.name == name))
