"""A model's history as the model page shows it: the stage/alias timeline and the "as of" answer."""
from __future__ import annotations


def for_model(actor, name: str, as_of_raw: str | None):
    return None
