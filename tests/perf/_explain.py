"""Query plans of the registry's own SQL for a request: is any table read with a sequential scan?

The request goes through the real application (Flask test client, real authentication) on the benchmark's
database; every SELECT it sends is captured exactly as executed (parameters inlined by psycopg2) and run
again under EXPLAIN (ANALYZE, BUFFERS). Only the plans are kept; the request's own answer is discarded.
run_serving.py runs this file as a child process (`python _explain.py <db url> <token> <path>...`, JSON on
stdout) so the application, its pools and its change-listener thread never live in the benchmark's process.
"""
from __future__ import annotations

import json
import os
import re
import sys
from contextlib import closing

import psycopg2
import psycopg2.extensions

_EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")


def seq_scans(node: dict) -> list[dict]:
    """Every sequential scan of a JSON plan with the rows it read (returned + filtered out, all loops)."""
    found = []
    if node.get("Node Type") == "Seq Scan":
        loops = node.get("Actual Loops", 1)
        rows = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
        found.append({"table": node.get("Relation Name"), "rows_read": int(rows)})
    for child in node.get("Plans", []):
        found += seq_scans(child)
    return found


def explain_requests(db_url: str, token: str, paths: list[str]) -> list[dict]:
    from sqlalchemy import event

    saved = {name: os.environ.get(name) for name in
             ("DATABASE_URL", "REGISTRY_DB_TRANSACTION_POOLER", "REGISTRY_LISTEN_DATABASE_URL")}
    # The app reads its settings from the environment. As behind a transaction pooler, the serving reads send
    # their statement whole (db/prepared.py) instead of EXECUTE of a statement prepared on that connection:
    # the same SQL, which EXPLAIN can take.
    os.environ.update(DATABASE_URL=db_url, REGISTRY_DB_TRANSACTION_POOLER="1", REGISTRY_LISTEN_DATABASE_URL=db_url)
    try:
        from registry import create_app
        from registry.extensions import db

        app = create_app()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    captured: list[str] = []

    class Capturing(psycopg2.extensions.cursor):
        # At the cursor: the serving reads run on raw pooled connections, which SQLAlchemy's events do not see.
        def execute(self, query, vars=None):
            captured.append(self.mogrify(query, vars).decode())
            return super().execute(query, vars)

    def capture(dbapi_connection, _record, _proxy):
        dbapi_connection.cursor_factory = Capturing

    with app.app_context():
        engine = db.engine
        event.listen(engine, "checkout", capture)
    results = []
    client = app.test_client()
    try:
        with closing(psycopg2.connect(db_url, connect_timeout=10)) as connection, connection.cursor() as cursor:
            for path in paths:
                # The first request of a fresh process: nothing is cached yet, so every query of the path shows.
                captured.clear()
                answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
                statements = []
                for sql in list(captured):
                    if not sql.lstrip().upper().startswith("SELECT"):
                        continue
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
                    tree = cursor.fetchone()[0][0]["Plan"]
                    connection.rollback()
                    execution = _EXECUTION.search(plan)
                    statements.append({"sql": sql, "plan": plan, "seq_scans": seq_scans(tree),
                                       "execution_ms": float(execution.group(1)) if execution else None})
                results.append({"path": path, "status": answer.status_code, "statements": statements})
    finally:
        with app.app_context():
            event.remove(engine, "checkout", capture)
            db.session.remove()
            engine.dispose()
    return results


if __name__ == "__main__":
    json.dump(explain_requests(sys.argv[1], sys.argv[2], sys.argv[3:]), sys.stdout)
