"""Finding 2 of "Trust the served answer": a serving answer read across a listener (re)connect must not be
kept, since a change committed while nobody listened is never announced. Driven by hand, not by timing: the
hub is told it is healthy, and the read itself plays the listener reconnecting and the unheard change."""
from __future__ import annotations

from sqlalchemy import text

from registry.extensions import CACHES_KEY, db
from registry.services import serving, stages, versions


def test_an_answer_read_across_a_listener_reconnect_is_not_kept(app, ctx, alice, monkeypatch):
    from registry.services import models

    models.create_model(alice, "churn")
    for n in (1, 2):
        versions.create_version(alice, "churn", f"s3://b/{n}")
    stages.transition_stage(alice, "churn", 1, "Production")
    hub = app.extensions[CACHES_KEY].hub
    hub.set_healthy(True)  # as if listening (no listener thread: this test plays it)
    real_read = serving._read

    def read_while_the_listener_reconnects(*args):
        answer = real_read(*args)  # version 1 is in Production
        hub.set_healthy(False)
        # Another process promotes version 2 while nobody listens: no notification reaches this one.
        db.session.execute(text("UPDATE model_versions SET stage = CASE version WHEN 2 THEN 'Production' "
                                "ELSE 'Archived' END WHERE version IN (1, 2)"))
        hub.set_healthy(True)
        return answer

    monkeypatch.setattr(serving, "_read", read_while_the_listener_reconnects)
    assert serving.resolve(alice, "churn", stage="Production").version.version == 1
    monkeypatch.setattr(serving, "_read", real_read)
    assert serving.resolve(alice, "churn", stage="Production").version.version == 2
