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

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = db_url  # the app reads its settings from the environment
    try:
        from registry import create_app
        from registry.extensions import db

        app = create_app()
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
    captured: list[str] = []
    with app.app_context():
        engine = db.engine

        def capture(_conn, cursor, statement, parameters, _context, _executemany):
            captured.append(cursor.mogrify(statement, parameters).decode())

        event.listen(engine, "before_cursor_execute", capture)
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
            event.remove(engine, "before_cursor_execute", capture)
            db.session.remove()
            engine.dispose()
    return results


if __name__ == "__main__":
    json.dump(explain_requests(sys.argv[1], sys.argv[2], sys.argv[3:]), sys.stdout)
