"""Signatures of the three dialects. MLflow 3 and the native API both sign ``"<id>.<timestamp>.<body>"`` with
HMAC-SHA256 and send ``v1,<base64>`` (the Standard Webhooks scheme, which MLflow follows with its own header
names and the secret used as it is); Databricks signs the body alone and sends the hex digest."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def databricks(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def v1(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def standard_key(secret: str) -> bytes:
    """A Standard Webhooks secret (``whsec_<base64>``) is the base64 of the key."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def new_standard_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
