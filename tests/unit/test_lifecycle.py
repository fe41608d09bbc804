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
        (" Staging ", Stage.STAGING),
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


@pytest.mark.parametrize("raw", ["prod", "", None, 3, "Productions", "  ", "Staging2", ["Staging"]])
def test_parse_stage_rejects_unknown_values_listing_the_allowed_ones(raw):
    with pytest.raises(InvalidArgument) as info:
        parse_stage(raw)
    for stage in ALL_STAGES:
        assert stage.value in info.value.message
    assert info.value.details == {"field": "stage", "allowed": ["None", "Staging", "Production", "Archived"]}


def test_permissions_form_an_increasing_ladder():
    ladder = [
        Permission.READ,
        Permission.EDIT,
        Permission.MANAGE_STAGING,
        Permission.MANAGE_PRODUCTION,
        Permission.MANAGE,
    ]
    assert sorted(Permission) == ladder
    assert all(lower < higher for lower, higher in zip(ladder, ladder[1:]))


def test_manage_production_includes_manage_staging():
    assert Permission.MANAGE_PRODUCTION >= Permission.MANAGE_STAGING
    assert not Permission.MANAGE_STAGING >= Permission.MANAGE_PRODUCTION
