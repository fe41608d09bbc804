"""Domain errors. Services raise these; each HTTP dialect maps them to its own status and body once."""
from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidArgument(RegistryError):
    code = "INVALID_ARGUMENT"


class NotFound(RegistryError):
    code = "NOT_FOUND"


class AlreadyExists(RegistryError):
    code = "ALREADY_EXISTS"


class InvalidTransition(RegistryError):
    code = "INVALID_TRANSITION"


class PreconditionFailed(RegistryError):
    """An ``If-Match`` revision no longer matches: someone else changed the resource first."""

    code = "PRECONDITION_FAILED"


class Conflict(RegistryError):
    code = "CONFLICT"


class IdempotencyKeyReused(Conflict):
    """An ``Idempotency-Key`` already used by this caller for a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"


class PermissionDenied(RegistryError):
    code = "PERMISSION_DENIED"


class ApprovalRequired(PermissionDenied):
    code = "APPROVAL_REQUIRED"


class Unauthenticated(RegistryError):
    code = "UNAUTHENTICATED"


class Unavailable(RegistryError):
    """Not now, maybe later: the database is unreachable, or a lock this write needs is held too long
    (``db/availability.py``). Nothing was written; the client may send the request again after
    ``retry_after`` seconds."""

    code = "UNAVAILABLE"

    def __init__(self, message: str, kind: str = "unavailable", retry_after: int = 5,
                 details: dict[str, Any] | None = None):
        super().__init__(message, details)
        self.kind = kind
        self.retry_after = retry_after
