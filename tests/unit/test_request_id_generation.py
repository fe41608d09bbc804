"""Generated request ids (registry/telemetry/requests.py): 32 hex digits, a random per-process prefix and a
counter. Two requests never share one, nor do two gunicorn workers forked from one master."""
from __future__ import annotations

import os
import re

from registry.telemetry.requests import request_id_from

GENERATED = re.compile(r"[0-9a-f]{32}\Z")


def test_generated_ids_are_32_hex_digits_and_never_repeat():
    ids = [request_id_from(None) for _ in range(10_000)]
    assert all(GENERATED.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_process_generates_ids_of_its_own():
    before = request_id_from(None)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its first id, then leave at once (no pytest teardown in here)
        try:
            os.write(write_end, request_id_from(None).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    from_child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(child, 0)
    in_parent = request_id_from(None)
    assert GENERATED.match(from_child)
    # The child did not continue the parent's sequence: its prefix is its own.
    assert from_child[:16] != before[:16] == in_parent[:16]
