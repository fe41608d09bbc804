"""Who is acting, and the pure parts of authentication: token format, hashing, header parsing.

Services take an explicit Actor, never the Flask request. Looking a token up in the database is a use case
(``services/identities.py``); this module has no I/O.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass, field

from .errors import InvalidArgument, Unauthenticated

ANONYMOUS_NAME = "anonymous"
TOKEN_PREFIX = "reg_"
_NAME = re.compile(r"^[\w.@+\-]{1,128}\Z")


@dataclass(frozen=True)
class Actor:
    name: str
    is_admin: bool = False
    # The API token the actor authenticated with (None: the command line, SYSTEM, REGISTRY_AUTH=disabled).
    # It says how the actor got here, not who they are, so it takes no part in equality or hashing.
    token_id: int | None = field(default=None, compare=False)

    @classmethod
    def named(cls, name: str | None, *, is_admin: bool = False) -> "Actor":
        if name is None or name == "":
            return cls(ANONYMOUS_NAME, is_admin)
        return cls(validate_user_name(name, field="actor"), is_admin)


SYSTEM = Actor("system", is_admin=True)


def validate_user_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name == "*":
        raise InvalidArgument(
            "User names are 1-128 characters of letters, digits and '_', '.', '@', '+', '-'.", {"field": field}
        )
    return name


def new_token() -> str:
    """A fresh API token: 256 random bits, URL-safe, recognisable by its prefix in logs and secret scanners."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_display_prefix(token: str) -> str:
    return token[: len(TOKEN_PREFIX) + 6]


def token_from_authorization(header: str | None) -> str:
    """Extract the token from ``Bearer <token>`` or HTTP Basic with the token as password.

    The MLflow client sends MLFLOW_TRACKING_TOKEN as Bearer and MLFLOW_TRACKING_USERNAME/PASSWORD as Basic;
    with Basic the user name is informational, the token alone identifies the principal.
    """
    if not header:
        raise Unauthenticated("Authentication required: send 'Authorization: Bearer <token>'.")
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("Malformed Basic credentials.") from None
        _, sep, password = decoded.partition(":")
        if sep and password:
            return password
    raise Unauthenticated("Unsupported Authorization header: use 'Bearer <token>' or Basic with the token as password.")
