"""Who is acting, and the pure parts of authentication: token format, hashing, header parsing.

Services take an explicit Actor, never the Flask request. Looking a token up in the database is a use case
(``services/identities.py``); this module has no I/O.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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


def credentials_from_authorization(header: str | None) -> tuple[str | None, str]:
    """``(user, secret)`` from ``Bearer <token>`` (user None) or HTTP Basic ``user:secret``.

    The MLflow client sends MLFLOW_TRACKING_TOKEN as Bearer and MLFLOW_TRACKING_USERNAME/PASSWORD as Basic.
    With Basic the secret is a token (the user name is then informational: the token alone identifies the
    principal) or that user's password (``api/authn.py`` tries them in that order).
    """
    if not header:
        raise Unauthenticated("Authentication required: send 'Authorization: Bearer <token>'.")
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return None, credentials
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("Malformed Basic credentials.") from None
        user, sep, password = decoded.partition(":")
        if sep and password:
            return user or None, password
    raise Unauthenticated("Unsupported Authorization header: use 'Bearer <token>', or Basic with a token or "
                          "your password.")


def token_from_authorization(header: str | None) -> str:
    """The secret of an ``Authorization`` header (a token, or with Basic possibly a password)."""
    return credentials_from_authorization(header)[1]


# Keys the per-process memory of successful password sign-ins: an HMAC under a key that never leaves the
# process, so the remembered keys are no offline dictionary for the passwords behind them.
_SIGN_IN_KEY = secrets.token_bytes(32)


def password_digest(user: str, password: str) -> str:
    return hmac.new(_SIGN_IN_KEY, f"{user}\0{password}".encode("utf-8"), hashlib.sha256).hexdigest()
