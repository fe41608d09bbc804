"""What a reader sees of requests (``review_queue``): the approvals each needs, what the reader may do, and an
inbox whose cost does not grow with the number of models its requests are about."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from registry.extensions import db
from registry.services.models import create_model
from registry.services.policies import set_model_policy, set_registry_policy
from registry.services.review_queue import inbox, my_requests, version_requests
from registry.services.reviews import approve, create_request
from registry.services.versions import create_version

from .support import ROOT, person


@contextmanager
def statements():
    seen: list[str] = []

    def capture(_conn, _cursor, statement, _parameters, _context, _executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)


def models_with_requests(count: int, requester) -> list[int]:
    ids = []
    for i in range(count):
        create_model(ROOT, f"m{i}")
        create_version(ROOT, f"m{i}", f"s3://m{i}/1")
        ids.append(create_request(requester, f"m{i}", 1, "Production" if i % 2 else "Staging").id)
    return ids


def test_the_inbox_reads_a_fixed_number_of_times_however_many_models(ctx):
    requester, reviewer = person("req"), person("rev", "MANAGE_PRODUCTION")
    set_registry_policy(ROOT, "Production", required_approvals=2)
    models_with_requests(3, requester)
    inbox(reviewer)  # the reviewer's registry-wide level is remembered from here on (a cached read)
    with statements() as few:
        assert len(inbox(reviewer)) == 3
    for i in range(3, 40):
        create_model(ROOT, f"m{i}")
        create_version(ROOT, f"m{i}", f"s3://m{i}/1")
        create_request(requester, f"m{i}", 1, "Production")
    with statements() as many:
        assert len(inbox(reviewer)) == 40
    assert len(many) == len(few) <= 10


def test_each_state_says_what_it_needs_and_what_the_reader_may_do(ctx):
    requester, reviewer, other = person("req"), person("rev", "MANAGE_PRODUCTION"), person("rev2", "MANAGE_PRODUCTION")
    create_model(ROOT, "churn")
    create_version(ROOT, "churn", "s3://churn/1")
    set_model_policy(ROOT, "churn", "Production", required_approvals=2)
    request = create_request(requester, "churn", 1, "Production")
    approve(other, request.id)

    [state] = version_requests(reviewer, "churn", 1)
    assert (state.required_approvals, state.may_approve, state.may_reject, state.may_cancel) == (2, True, True, False)
    [own] = version_requests(requester, "churn", 1)
    assert (own.may_approve, own.may_reject, own.may_cancel) == (False, False, True)
    assert own.why_not == "You cannot approve your own transition request."
    [done] = version_requests(other, "churn", 1)
    assert done.may_approve is False and "already approved" in done.why_not
    [stager] = version_requests(person("stager", "MANAGE_STAGING"), "churn", 1)
    assert stager.may_approve is stager.may_reject is False and "MANAGE_PRODUCTION" in stager.why_not
    assert [s.request.id for s in my_requests(requester).items] == [request.id]
    assert my_requests(reviewer).items == []
