"""Pure stage rules: every transition, its permission, archiving and stage parsing."""
from __future__ import annotations

import itertools

import pytest

from registry.errors import InvalidArgument, InvalidTransition
from registry.lifecycle import (
    ALL_STAGES,
    TRANSITIONS,
    Permission,
    Stage,
    StageBoard,
    check_transition,
    parse_stage,
    stage_to_archive,
)

ALL_PAIRS = list(itertools.product(Stage, Stage))
ACTIVE = [Stage.STAGING, Stage.PRODUCTION]
INACTIVE = [Stage.NONE, Stage.ARCHIVED]


def _required(source: Stage, target: Stage) -> Permission:
    # Written independently of the implementation: Production on either side needs the higher level.
    if source is Stage.PRODUCTION or target is Stage.PRODUCTION:
        return Permission.MANAGE_PRODUCTION
    return Permission.MANAGE_STAGING


def test_all_sixteen_stage_pairs_are_listed():
    assert len(ALL_PAIRS) == 16
    assert set(TRANSITIONS) == set(ALL_PAIRS)


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=lambda s: s.value)
def test_transition_is_allowed_with_the_permission_its_stages_need(source, target):
    assert check_transition(source, target, archive_existing_versions=False) == _required(source, target)


@pytest.mark.parametrize("source", list(Stage), ids=lambda s: s.value)
@pytest.mark.parametrize("target", ACTIVE, ids=lambda s: s.value)
def test_archive_existing_versions_is_accepted_for_active_targets(source, target):
    assert check_transition(source, target, archive_existing_versions=True) == _required(source, target)


@pytest.mark.parametrize("source", list(Stage), ids=lambda s: s.value)
@pytest.mark.parametrize("target", INACTIVE, ids=lambda s: s.value)
def test_archive_existing_versions_is_refused_for_inactive_targets(source, target):
    with pytest.raises(InvalidTransition) as info:
        check_transition(source, target, archive_existing_versions=True)
    assert target.value in info.value.message
    assert info.value.details == {"stage": target.value}


@pytest.mark.parametrize("target", ACTIVE, ids=lambda s: s.value)
def test_stage_to_archive_is_the_target_when_archiving_into_an_active_stage(target):
    assert stage_to_archive(target, archive_existing_versions=True) is target


@pytest.mark.parametrize("target", INACTIVE, ids=lambda s: s.value)
def test_stage_to_archive_is_none_for_inactive_targets(target):
    assert stage_to_archive(target, archive_existing_versions=True) is None


@pytest.mark.parametrize("target", list(Stage), ids=lambda s: s.value)
def test_stage_to_archive_is_none_without_archive_flag(target):
    assert stage_to_archive(target, archive_existing_versions=False) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("production", Stage.PRODUCTION),
        ("PRODUCTION", Stage.PRODUCTION),
        ("Production", Stage.PRODUCTION),
        ("staging", Stage.STAGING),
        ("none", Stage.NONE),
        ("None", Stage.NONE),
        ("archived", Stage.ARCHIVED),
        ("ARCHIVED", Stage.ARCHIVED),
    ],
)
def test_parse_stage_is_case_insensitive_and_canonical(raw, expected):
    stage = parse_stage(raw)
    assert stage is expected
    assert str(stage) == expected.value


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.value)
def test_parse_stage_accepts_stage_members(stage):
    assert parse_stage(stage) is stage


@pytest.mark.parametrize("raw", ["prod", "", None, 3, "Productions", "  ", "Staging2", ["Staging"], " Staging ",
                                 "staging ", "\tNone"])
def test_parse_stage_rejects_unknown_values_listing_the_allowed_ones(raw):
    with pytest.raises(InvalidArgument) as info:
        parse_stage(raw)
    for stage in ALL_STAGES:
        assert stage.value in info.value.message
    assert info.value.details == {"field": "stage", "allowed": ["None", "Staging", "Production", "Archived"]}


def test_parse_stage_refuses_with_mlflows_message():
    """MLflow's own words (get_canonical_stage), spaces and all: it matches stages exactly, case aside."""
    with pytest.raises(InvalidArgument) as info:
        parse_stage(" staging ")
    assert info.value.message == ("Invalid Model Version stage:  staging . "
                                  "Value must be one of None, Staging, Production, Archived.")


def test_permissions_form_an_increasing_ladder():
    ladder = [
        Permission.READ,
        Permission.EDIT,
        Permission.MANAGE_STAGING,
        Permission.MANAGE_PRODUCTION,
        Permission.MANAGE,
    ]
    # DENY is no rung: below every one, so no check of the form ``held >= needed`` ever passes with it.
    assert sorted(Permission) == [Permission.DENY, *ladder]
    assert all(Permission.DENY < level for level in ladder)
    assert all(lower < higher for lower, higher in zip(ladder, ladder[1:]))


def test_manage_production_includes_manage_staging():
    assert Permission.MANAGE_PRODUCTION >= Permission.MANAGE_STAGING
    assert not Permission.MANAGE_STAGING >= Permission.MANAGE_PRODUCTION


# --- Policy covers every path to what is served (issue "Trust the served answer", finding 4) -------------
#
# The oracle below is written from the rule, not from the code: a stage's policy governs every change of
# what that stage holds, so a transition is governed by the stage the version leaves, the stage it enters
# and, when archive_existing_versions sends the target's other versions to Archived, by Archived too; the
# change needs the strictest of them (most approvals; the creator is barred if any policy bars them).

from registry.errors import PermissionDenied  # noqa: E402
from registry.lifecycle import (  # noqa: E402
    ALIAS_PERMISSION,
    AliasAction,
    ApprovalPolicy,
    RequiredReview,
    approval_refusal,
    approvals_needed,
    check_alias_request,
    check_force,
    combine,
    deletion_refusal,
    direct_alias_refusal,
    direct_transition_refusal,
    forced_details,
    refusal_details,
    rename_refusal,
    stages_changed,
)

from registry.errors import NotFound  # noqa: E402

STRICTNESS = [0, 1, 2]  # required approvals per stage in the exhaustive sweeps


def _oracle_stages(source: Stage, target: Stage, archive: bool) -> set[Stage]:
    touched = {source, target}
    if archive and target in (Stage.STAGING, Stage.PRODUCTION):
        touched.add(Stage.ARCHIVED)
    return touched


# Every valid (source, target, archive_existing_versions): archiving is refused into None and Archived.
VALID_MOVES = [(a, b, archive) for a, b in ALL_PAIRS for archive in (False, True) if not (archive and b in INACTIVE)]
MOVE_IDS = [f"{a.value}-{b.value}{'-archiving' if archive else ''}" for a, b, archive in VALID_MOVES]


@pytest.mark.parametrize(("source", "target", "archive"), VALID_MOVES, ids=MOVE_IDS)
def test_stages_changed_are_the_left_the_entered_and_archived_when_archiving(source, target, archive):
    changed = stages_changed(source, target, archive)
    assert set(changed) == _oracle_stages(source, target, archive)
    assert len(changed) == len(set(changed))  # each stage once


def _policies(required: dict[Stage, int], creator_barred: set[Stage] = frozenset()) -> dict[Stage, ApprovalPolicy]:
    return {s: ApprovalPolicy(s, required.get(s, 0), s in creator_barred, "model") for s in Stage}


def _all_requirements():
    """Every assignment of 0/1/2 required approvals to the four stages (81 of them)."""
    for values in itertools.product(STRICTNESS, repeat=len(ALL_STAGES)):
        yield dict(zip(ALL_STAGES, values))


@pytest.mark.parametrize(("source", "target", "archive"), VALID_MOVES, ids=MOVE_IDS)
def test_a_transition_needs_the_strictest_policy_of_every_stage_it_changes(source, target, archive):
    for required in _all_requirements():
        by_stage = _policies(required)
        review = combine(by_stage[s] for s in stages_changed(source, target, archive))
        expected = max(required[s] for s in _oracle_stages(source, target, archive))
        assert review.required_approvals == expected, required
        refusal = direct_transition_refusal(review, source, target)
        assert (refusal is None) == (expected == 0), required
        assert approvals_needed(review) == max(1, expected)


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=lambda s: s.value)
def test_the_creator_is_barred_if_any_governing_policy_bars_them(source, target):
    for barred in itertools.chain.from_iterable(itertools.combinations(ALL_STAGES, n) for n in range(3)):
        by_stage = _policies({}, set(barred))
        review = combine(by_stage[s] for s in stages_changed(source, target, False))
        assert review.creator_may_not_approve == bool(set(barred) & {source, target})
        refusal = approval_refusal(review, reviewer="carol", requester="reader", version_creator="carol",
                                   already_approved=False)
        assert (refusal is not None) == review.creator_may_not_approve


def test_leaving_production_is_refused_naming_the_production_policy():
    by_stage = _policies({Stage.PRODUCTION: 2})
    review = combine(by_stage[s] for s in stages_changed(Stage.PRODUCTION, Stage.ARCHIVED, False))

    refusal = direct_transition_refusal(review, Stage.PRODUCTION, Stage.ARCHIVED)

    assert refusal is not None
    assert "from Production to Archived" in refusal
    assert "this model's approval policy for Production requires 2 approval(s)" in refusal
    assert "transition request" in refusal
    assert review.strictest.stage is Stage.PRODUCTION


def test_a_transition_between_two_protected_stages_describes_both_policies():
    by_stage = _policies({Stage.STAGING: 1, Stage.PRODUCTION: 2}, {Stage.STAGING})
    review = combine(by_stage[s] for s in stages_changed(Stage.STAGING, Stage.PRODUCTION, False))

    refusal = direct_transition_refusal(review, Stage.STAGING, Stage.PRODUCTION)

    assert "approval policy for Staging requires 1 approval(s); the version's creator may not approve" in refusal
    assert "approval policy for Production requires 2 approval(s)" in refusal
    assert (review.required_approvals, review.creator_may_not_approve) == (2, True)


def test_a_lax_policy_is_not_described_next_to_a_binding_one():
    by_stage = _policies({Stage.PRODUCTION: 2})
    review = combine(by_stage[s] for s in stages_changed(Stage.PRODUCTION, Stage.ARCHIVED, False))

    assert "Archived" not in review.describe()


def test_promotion_into_staging_with_archiving_never_involves_production():
    """archive_existing_versions archives the *target* stage's others: a Staging promotion cannot touch
    Production, so Production's policy has no say in it."""
    by_stage = _policies({Stage.PRODUCTION: 2})
    review = combine(by_stage[s] for s in stages_changed(Stage.NONE, Stage.STAGING, True))

    assert Stage.PRODUCTION not in stages_changed(Stage.NONE, Stage.STAGING, True)
    assert review.required_approvals == 0
    assert direct_transition_refusal(review, Stage.NONE, Stage.STAGING) is None


def test_refusal_details_name_the_binding_policies():
    by_stage = _policies({Stage.STAGING: 1, Stage.PRODUCTION: 2})
    review = combine(by_stage[s] for s in stages_changed(Stage.STAGING, Stage.PRODUCTION, False))

    details = refusal_details(review)

    assert details["required_approvals"] == 2
    assert details["policy"] == "model"
    assert details["policies"] == [
        {"stage": "Staging", "required_approvals": 1, "creator_may_not_approve": False, "scope": "model"},
        {"stage": "Production", "required_approvals": 2, "creator_may_not_approve": False, "scope": "model"},
    ]


def test_combining_no_policy_requires_nothing():
    review = combine([])
    assert isinstance(review, RequiredReview)
    assert (review.required_approvals, review.creator_may_not_approve) == (0, False)
    assert direct_transition_refusal(review, Stage.NONE, Stage.STAGING) is None


# --- protected aliases ----------------------------------------------------------------------------------

def _alias(required: int, creator: bool = False, scope: str = "model") -> ApprovalPolicy:
    return ApprovalPolicy(None, required, creator, scope, alias="champion")


def test_alias_policy_describes_the_alias():
    assert _alias(2).describe() == "this model's approval policy for alias champion requires 2 approval(s)"
    assert _alias(1, True, "registry").describe() == (
        "the registry-wide approval policy for alias champion requires 1 approval(s); "
        "the version's creator may not approve")


@pytest.mark.parametrize("action", list(AliasAction))
@pytest.mark.parametrize("required", STRICTNESS)
def test_changing_a_protected_alias_directly_is_refused(action, required):
    refusal = direct_alias_refusal(combine([_alias(required)]), "champion", action)

    if required == 0:
        assert refusal is None
    else:
        assert "champion" in refusal and f"requires {required} approval(s)" in refusal
        assert "alias request" in refusal


def test_aliases_route_traffic_so_they_need_the_production_permission():
    assert ALIAS_PERMISSION is Permission.MANAGE_PRODUCTION


def test_an_alias_request_must_change_something():
    check_alias_request(AliasAction.SET, "champion", current_version=None, requested_version=3)
    check_alias_request(AliasAction.SET, "champion", current_version=1, requested_version=3)
    check_alias_request(AliasAction.DELETE, "champion", current_version=1, requested_version=None)
    with pytest.raises(InvalidTransition):
        check_alias_request(AliasAction.SET, "champion", current_version=3, requested_version=3)
    with pytest.raises(NotFound):
        check_alias_request(AliasAction.DELETE, "champion", current_version=None, requested_version=None)


@pytest.mark.parametrize("required", STRICTNESS)
def test_alias_requests_follow_n_of_m_and_no_self_approval(required):
    review = combine([_alias(required, creator=True)])

    assert approvals_needed(review) == max(1, required)
    assert approval_refusal(review, reviewer="req", requester="req", version_creator="x",
                            already_approved=False) == "You cannot approve your own transition request."
    assert "creator" in approval_refusal(review, reviewer="maker", requester="req", version_creator="maker",
                                         already_approved=False)
    assert approval_refusal(review, reviewer="other", requester="req", version_creator="maker",
                            already_approved=False) is None


# --- deletions and force --------------------------------------------------------------------------------

@pytest.mark.parametrize("stage_required", STRICTNESS)
@pytest.mark.parametrize("alias_required", [None, *STRICTNESS])
def test_deleting_what_serving_returns_is_refused_when_any_governing_policy_requires_review(
        stage_required, alias_required):
    governing = [ApprovalPolicy(Stage.PRODUCTION, stage_required, False, "model")]
    if alias_required is not None:
        governing.append(_alias(alias_required))
    review = combine(governing)

    refusal = deletion_refusal(review, "version 1 of model churn")

    if max(stage_required, alias_required or 0) == 0:
        assert refusal is None
    else:
        assert refusal.startswith("Deleting version 1 of model churn")
        assert "through a reviewed request" in refusal


@pytest.mark.parametrize("is_admin", [False, True])
def test_force_is_for_admins_only(is_admin):
    check_force(False, is_admin, "a transition")
    if is_admin:
        check_force(True, is_admin, "a transition")
    else:
        with pytest.raises(PermissionDenied) as raised:
            check_force(True, is_admin, "a transition")
        assert raised.value.details == {"field": "force"}


@pytest.mark.parametrize("required", STRICTNESS)
def test_renaming_a_model_that_serves_something_protected_is_refused(required):
    review = combine([ApprovalPolicy(Stage.PRODUCTION, required, False, "registry")])

    refusal = rename_refusal(review, "churn")

    if required == 0:
        assert refusal is None
    else:
        assert refusal.startswith("Renaming registered model churn")
        assert "the registry-wide approval policy for Production" in refusal


def test_a_forced_change_records_what_it_bypassed():
    review = combine([ApprovalPolicy(Stage.PRODUCTION, 2, False, "model"), _alias(1)])

    assert forced_details(review) == {
        "forced": True,
        "bypassed_policy": "this model's approval policy for Production requires 2 approval(s) and "
                           "this model's approval policy for alias champion requires 1 approval(s)"}


def test_a_stage_board_serves_each_stages_highest_version_move_by_move():
    board = StageBoard([(1, Stage.NONE), (3, Stage.NONE), (2, Stage.PRODUCTION)])
    assert board.answers() == {"None": 3, "Staging": None, "Production": 2, "Archived": None}
    board.move(3, Stage.NONE, Stage.PRODUCTION)
    assert board.answers() == {"None": 1, "Staging": None, "Production": 3, "Archived": None}
    board.move(3, Stage.PRODUCTION, Stage.ARCHIVED)  # leaving the top: the next highest serves
    assert board.answers() == {"None": 1, "Staging": None, "Production": 2, "Archived": 3}
    with pytest.raises(ValueError):
        board.move(3, Stage.NONE, Stage.STAGING)  # not where it is said to be
