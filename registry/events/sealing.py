"""Webhook secrets (HMAC secrets, Authorization values, job access tokens) encrypted at rest.

Keys come from ``REGISTRY_SECRET_KEY`` (comma-separated: the first encrypts, all decrypt, so a key can be
rotated: add the new one first, restart, and values sealed with the old one still open). Without it the
installation's own key, kept in the database (``instance_secrets``), is used: that protects backups and
dumps of the webhook table alone, not the database as a whole. Each key is stretched into a Fernet key
(AES-128-CBC + HMAC-SHA256, from ``cryptography``). Values stored before encryption existed carry no
``sealed:v1:`` prefix and are read as they are; the next change of the webhook seals them.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import text

from ..extensions import db, settings

PREFIX = "sealed:v1:"
_INSTANCE_KEY = "webhook-secrets-key"
_lock = threading.Lock()
_instance_keys: dict[str, str] = {}


def _fernet(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"registry-webhook-secrets:" + key.encode()).digest()))


def _instance_key() -> str:
    """The installation's own key, made once for every process (on its own connection: the caller's
    transaction must not be committed by it)."""
    url = str(db.engine.url)
    with _lock:
        if url not in _instance_keys:
            with db.engine.begin() as conn:
                conn.execute(text("INSERT INTO instance_secrets (name, value, created_at) VALUES (:n, :v, now()) "
                                  "ON CONFLICT (name) DO NOTHING"),
                             {"n": _INSTANCE_KEY, "v": secrets.token_urlsafe(32)})
                _instance_keys[url] = conn.execute(text("SELECT value FROM instance_secrets WHERE name = :n"),
                                                   {"n": _INSTANCE_KEY}).scalar_one()
        return _instance_keys[url]


def _keys() -> MultiFernet:
    keys = settings().secret_keys or (_instance_key(),)
    return MultiFernet([_fernet(k) for k in keys])


def seal(value: str | None) -> str | None:
    if value is None:
        return None
    return PREFIX + _keys().encrypt(value.encode()).decode()


def unseal(stored: str | None) -> str | None:
    if stored is None or not stored.startswith(PREFIX):
        return stored
    try:
        return _keys().decrypt(stored[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise RuntimeError("A webhook secret cannot be decrypted with any key in REGISTRY_SECRET_KEY "
                           "(was the key that sealed it removed?)") from None
