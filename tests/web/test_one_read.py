"""A console page is one read (db/unit_of_work.one_read): its use cases look the model and the reader's level
up once, nothing looked up outlives the page, and no write can run inside one."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from registry.auth import SYSTEM
from registry.db.loading import find_model
from registry.db.unit_of_work import one_read
from registry.extensions import db
from registry.services import models, permissions

from .console import text


class Statements:
    def __init__(self):
        self.seen: list[str] = []
        self.sent: list[tuple[str, str]] = []  # (statement, its parameters)

    def __call__(self, _conn, _cursor, statement, parameters, *_):
        self.seen.append(" ".join(statement.split()))
        self.sent.append((self.seen[-1], repr(parameters)))

    def matching(self, pattern: str) -> list[str]:
        return [s for s in self.seen if re.search(pattern, s)]

    def repeated(self, pattern: str) -> list[tuple[str, str]]:
        """Statements matching ``pattern`` sent more than once with the same parameters."""
        sent = [s for s in self.sent if re.search(pattern, s[0])]
        return [s for s in set(sent) if sent.count(s) > 1]


@pytest.fixture
def statements(app):
    """Every statement sent. Tests run on the connection ``db_session`` opens from ``app``'s engine: ask for
    this fixture first, as a connection hears only the events listened for before it was opened."""
    with app.app_context():
        engine = db.engine
    seen = Statements()
    event.listen(engine, "before_cursor_execute", seen)
    yield seen
    event.remove(engine, "before_cursor_execute", seen)


MODEL_BY_NAME = r"FROM registered_models WHERE registered_models\.name ="
MODEL_ROW_BY_NAME = r"^SELECT registered_models\.id, registered_models\.name, .* " + MODEL_BY_NAME
LEVEL = r"SELECT CASE WHEN min\(level\) < 0 THEN -1 ELSE max\(level\) END FROM permission_grants"
STANDING = r"SELECT model_id, level FROM permission_grants WHERE .* OR level < 0\)"


def test_the_version_page_finds_its_model_and_the_readers_level_once(statements, world, browser_for):
    browser = browser_for(world.reviewer)
    statements.seen.clear()
    page = browser.get("/models/churn/versions/2")
    assert page.status_code == 200, text(page)
    # Seven use cases on this page each find the model and check the reader's level (40 statements before).
    assert len(statements.matching(MODEL_ROW_BY_NAME)) == 1, "\n".join(statements.seen)
    assert statements.matching(LEVEL)
    assert statements.repeated(LEVEL) == [], "\n".join(statements.seen)
    assert statements.matching(STANDING)
    assert statements.repeated(STANDING) == [], "\n".join(statements.seen)


def test_what_a_page_looked_up_is_not_kept_for_the_next_page(secure_app, world, browser_for):
    browser = browser_for(world.reader)
    assert browser.get("/models/churn/versions/1").status_code == 200
    with secure_app.app_context():  # every grant on churn but reed's READ
        permissions.set_model_permissions(SYSTEM, "churn", [("olga", "MANAGE"), ("rev", "MANAGE_PRODUCTION"),
                                                            ("rev2", "MANAGE_PRODUCTION")])
    assert browser.get("/models/churn/versions/1").status_code == 404


def test_outside_one_read_each_lookup_reads_again(statements, secure_app, db_session):
    with secure_app.app_context():
        models.create_model(SYSTEM, "twice")
        statements.seen.clear()
        find_model("twice")
        find_model("twice")
        assert len(statements.matching(MODEL_BY_NAME)) == 2
        statements.seen.clear()
        with one_read():
            find_model("twice")
            find_model("twice")
        assert len(statements.matching(MODEL_BY_NAME)) == 1


def test_a_write_refuses_to_run_inside_one_read(secure_app, db_session):
    with secure_app.app_context():
        with one_read(), pytest.raises(RuntimeError, match="one_read"):
            models.create_model(SYSTEM, "never-written")
        with pytest.raises(Exception, match="never-written"):
            find_model("never-written")
