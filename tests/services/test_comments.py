"""Comments on model versions: create (EDIT), edit own only, delete own (admins any), audited, listed in order."""
from __future__ import annotations

import pytest

from registry.auth import Actor
from registry.errors import InvalidArgument, NotFound, PermissionDenied
from registry.services.comments import create_comment, delete_comment, list_comments, update_comment
from registry.services.models import create_model
from registry.services.permissions import set_registry_permissions
from registry.services.versions import create_version

from .support import ROOT, events_after, last_event_id, person, summary


@pytest.fixture
def model(ctx):
    create_model(ROOT, "churn")
    create_version(ROOT, "churn", "s3://bucket/1", run_id="run-1")
    create_version(ROOT, "churn", "s3://bucket/2", run_id="run-2")
    return "churn"


@pytest.fixture
def writer(model):
    return person("writer", "EDIT")


@pytest.fixture
def colleague(model):
    return person("colleague", "MANAGE")


def texts(version: int = 1) -> list[tuple[str, str]]:
    return [(c.author, c.comment) for c in list_comments(ROOT, "churn", version)]


def test_editor_comments_on_a_version(writer):
    made = create_comment(writer, "churn", "1", "accuracy looks good")

    assert (made.model_name, made.version, made.author, made.comment) == ("churn", 1, "writer", "accuracy looks good")
    assert texts() == [("writer", "accuracy looks good")]


def test_reader_cannot_comment(model):
    with pytest.raises(PermissionDenied):
        create_comment(person("reader"), "churn", 1, "hello")
    assert texts() == []


def test_creating_a_comment_is_audited_with_the_versions_run_id(writer):
    marker = last_event_id()

    made = create_comment(writer, "churn", 2, "see run")

    new = events_after(marker)
    assert [summary(e) for e in new] == [("writer", "comment.created", "churn", 2, "run-2", None, None)]
    assert new[0].details == {"comment_id": made.id, "comment": "see run"}


@pytest.mark.parametrize("body", ["", None, 42, "nul\x00byte"])
def test_empty_or_non_text_comment_is_refused(writer, body):
    with pytest.raises(InvalidArgument):
        create_comment(writer, "churn", 1, body)


def test_comment_on_an_unknown_version_is_not_found(writer):
    with pytest.raises(NotFound):
        create_comment(writer, "churn", 9, "hello")


def test_comments_are_listed_in_the_order_they_were_made(writer, colleague):
    create_comment(writer, "churn", 1, "first")
    create_comment(colleague, "churn", 1, "second")
    create_comment(writer, "churn", 2, "elsewhere")
    create_comment(writer, "churn", 1, "third")

    assert texts(1) == [("writer", "first"), ("colleague", "second"), ("writer", "third")]


def test_readers_can_list_comments(writer):
    create_comment(writer, "churn", 1, "visible")

    assert [c.comment for c in list_comments(person("reader"), "churn", 1)] == ["visible"]


def test_author_edits_own_comment(writer):
    made = create_comment(writer, "churn", 1, "draft")

    edited = update_comment(writer, made.id, "final")

    assert (edited.id, edited.comment) == (made.id, "final")
    assert edited.updated_at >= made.updated_at
    assert texts() == [("writer", "final")]


def test_editing_a_comment_is_audited_with_old_and_new_text(writer):
    made = create_comment(writer, "churn", 1, "draft")
    marker = last_event_id()

    update_comment(writer, made.id, "final")

    new = events_after(marker)
    assert [summary(e) for e in new] == [("writer", "comment.updated", "churn", 1, "run-1", None, None)]
    assert new[0].details == {"comment_id": made.id, "from": "draft", "to": "final"}


@pytest.mark.parametrize("editor", ["colleague", "root"])
def test_nobody_but_the_author_edits_a_comment(writer, colleague, editor):
    made = create_comment(writer, "churn", 1, "mine")
    actor = {"colleague": colleague, "root": ROOT}[editor]

    with pytest.raises(PermissionDenied):
        update_comment(actor, made.id, "yours now")
    assert texts() == [("writer", "mine")]


def test_author_deletes_own_comment(writer):
    made = create_comment(writer, "churn", 1, "oops")

    delete_comment(writer, made.id)

    assert texts() == []


def test_deleting_a_comment_is_audited_with_its_text(writer):
    made = create_comment(writer, "churn", 1, "oops")
    marker = last_event_id()

    delete_comment(writer, made.id)

    new = events_after(marker)
    assert [summary(e) for e in new] == [("writer", "comment.deleted", "churn", 1, "run-1", None, None)]
    assert new[0].details == {"comment_id": made.id, "comment": "oops"}


def test_non_author_cannot_delete_a_comment_even_with_manage(writer, colleague):
    made = create_comment(writer, "churn", 1, "mine")

    with pytest.raises(PermissionDenied):
        delete_comment(colleague, made.id)
    assert texts() == [("writer", "mine")]


def test_admin_deletes_anyones_comment(writer):
    made = create_comment(writer, "churn", 1, "spam")
    marker = last_event_id()

    delete_comment(ROOT, made.id)

    assert texts() == []
    assert [e.actor for e in events_after(marker)] == ["root"]


@pytest.mark.parametrize("change", [lambda actor, cid: update_comment(actor, cid, "x"), delete_comment])
def test_unknown_comment_is_not_found(writer, change):
    with pytest.raises(NotFound):
        change(writer, 987654321)


def test_comments_of_an_unreadable_model_are_not_found(writer):
    create_comment(writer, "churn", 1, "secret")
    set_registry_permissions(ROOT, [])  # nobody but admins reads now

    with pytest.raises(NotFound):
        list_comments(Actor("writer"), "churn", 1)
