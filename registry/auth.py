"""Who is acting. Services take an explicit Actor, never the Flask request.

Until identities and tokens land, the HTTP layer builds the Actor from the ``X-Registry-Actor`` header
(default ``anonymous``); the services and the audit trail already speak only in terms of ``Actor``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidArgument

ANONYMOUS_NAME = "anonymous"
_ACTOR_NAME = re.compile(r"^[\w.@+\-]{1,128}$")


@dataclass(frozen=True)
class Actor:
    name: str
    is_admin: bool = False

    @classmethod
    def named(cls, name: str | None) -> "Actor":
        if name is None or name == "":
            return ANONYMOUS
        if not _ACTOR_NAME.match(name):
            raise InvalidArgument(
                "Actor names are 1-128 characters of letters, digits and '_', '.', '@', '+', '-'.",
                {"field": "actor"},
            )
        return cls(name=name)


ANONYMOUS = Actor(ANONYMOUS_NAME)
SYSTEM = Actor("system", is_admin=True)
