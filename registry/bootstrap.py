"""Start-up identity bootstrap: REGISTRY_ADMIN_TOKEN, and the first admin token of a fresh install."""
from __future__ import annotations

import logging
import sys

from flask import Flask
from sqlalchemy.exc import OperationalError, ProgrammingError

log = logging.getLogger("registry.bootstrap")


def run(app: Flask) -> None:
    """Idempotent; safe to run from several processes at once (the services serialise it)."""
    from .services import identities

    settings = app.config["REGISTRY_SETTINGS"]
    with app.app_context():
        try:
            if settings.admin_token:
                if identities.ensure_admin_token(settings.admin_token):
                    log.info("REGISTRY_ADMIN_TOKEN registered for user %s", identities.BOOTSTRAP_ADMIN)
            if not settings.auth_enabled:
                return
            token = identities.bootstrap_admin_if_empty()
        except ProgrammingError:
            log.warning("database schema is missing or old; run `registry db upgrade` (identity bootstrap skipped)")
            return
        except OperationalError as exc:
            # Keep serving: /readyz reports the database as unreachable until it is back.
            log.warning("database unreachable at start-up (%s); identity bootstrap skipped", exc.__class__.__name__)
            return
    if token:
        # Shown once, here: only its hash is stored.
        print(
            "\n" + "=" * 78
            + f"\nFresh registry: created admin user '{identities.BOOTSTRAP_ADMIN}'. Its API token (shown once):\n\n"
            + f"    {token}\n\nUse it as 'Authorization: Bearer <token>'; create more with `registry tokens create`.\n"
            + "=" * 78 + "\n",
            file=sys.stderr, flush=True,
        )
