"""Version planning (server/domain/plan.py): mirror vs additive, tag replacement, no-op."""

from __future__ import annotations

from server.domain.plan import plan_version
from server.domain.resources import BLOB, MANIFEST, TAG

M1, M2, M3 = (MANIFEST, 1), (MANIFEST, 2), (MANIFEST, 3)
B1, B2 = (BLOB, 1), (BLOB, 2)
# Tag rows: 10 = "latest" -> M1, 11 = "old" -> M1, 12 = "latest" -> M2, 13 = "new" -> M3.
T_LATEST_M1, T_OLD, T_LATEST_M2, T_NEW = (TAG, 10), (TAG, 11), (TAG, 12), (TAG, 13)
NAMES = {10: "latest", 11: "old", 12: "latest", 13: "new"}

PRESENT = frozenset({M1, B1, T_LATEST_M1, T_OLD})
PRESENT_NAMES = {10: "latest", 11: "old"}


def names(*tags: tuple[str, int]) -> dict[int, str]:
    return {tag_id: NAMES[tag_id] for _, tag_id in tags}


def test_mirror_target_is_exactly_upstream() -> None:
    upstream = frozenset({M2, B2, T_LATEST_M2})
    plan = plan_version(PRESENT, PRESENT_NAMES, upstream, names(T_LATEST_M2), mirror=True)
    assert plan.target == upstream
    assert plan.added == upstream
    assert plan.removed == PRESENT
    assert plan.changed


def test_mirror_removes_vanished_tag() -> None:
    upstream = frozenset({M1, B1, T_LATEST_M1})
    plan = plan_version(PRESENT, PRESENT_NAMES, upstream, names(T_LATEST_M1), mirror=True)
    assert plan.target == upstream
    assert plan.added == frozenset()
    assert plan.removed == {T_OLD}
    assert plan.changed


def test_additive_keeps_tag_that_vanished_upstream() -> None:
    upstream = frozenset({M1, B1, T_LATEST_M1})
    plan = plan_version(PRESENT, PRESENT_NAMES, upstream, names(T_LATEST_M1), mirror=False)
    assert T_OLD in plan.target
    assert plan.target == PRESENT
    assert not plan.changed


def test_additive_adds_new_content() -> None:
    upstream = frozenset({M3, T_NEW})
    plan = plan_version(PRESENT, PRESENT_NAMES, upstream, names(T_NEW), mirror=False)
    assert plan.target == PRESENT | upstream
    assert plan.added == {M3, T_NEW}
    assert plan.removed == frozenset()
    assert plan.changed


def test_additive_replaces_tag_whose_name_now_points_elsewhere() -> None:
    upstream = frozenset({M2, B2, T_LATEST_M2})
    plan = plan_version(PRESENT, PRESENT_NAMES, upstream, names(T_LATEST_M2), mirror=False)
    assert T_LATEST_M1 not in plan.target
    assert T_LATEST_M2 in plan.target
    assert T_OLD in plan.target
    # The old manifest stays (additive only drops the superseded tag row).
    assert {M1, B1, M2, B2} <= plan.target
    assert plan.removed == {T_LATEST_M1}
    assert plan.added == {M2, B2, T_LATEST_M2}
    assert plan.changed


def test_additive_keeps_present_tag_also_upstream() -> None:
    upstream = frozenset({M1, T_LATEST_M1})
    plan = plan_version(PRESENT, PRESENT_NAMES, upstream, names(T_LATEST_M1), mirror=False)
    assert T_LATEST_M1 in plan.target
    assert plan.removed == frozenset()


def test_additive_ignores_non_tag_ids_that_collide_with_tag_ids() -> None:
    # A manifest row with the same id as a present tag row must not make the tag "replaced".
    upstream = frozenset({(MANIFEST, 10)})
    plan = plan_version(PRESENT, PRESENT_NAMES, upstream, {}, mirror=False)
    assert plan.removed == frozenset()
    assert plan.added == {(MANIFEST, 10)}


def test_no_change_mirror() -> None:
    plan = plan_version(PRESENT, PRESENT_NAMES, PRESENT, PRESENT_NAMES, mirror=True)
    assert plan.target == PRESENT
    assert plan.added == plan.removed == frozenset()
    assert not plan.changed


def test_no_change_additive() -> None:
    plan = plan_version(PRESENT, PRESENT_NAMES, PRESENT, PRESENT_NAMES, mirror=False)
    assert plan.target == PRESENT
    assert not plan.changed


def test_empty_everything() -> None:
    for mirror in (True, False):
        plan = plan_version(frozenset(), {}, frozenset(), {}, mirror=mirror)
        assert plan.target == frozenset()
        assert not plan.changed


def test_mirror_with_empty_upstream_empties_the_version() -> None:
    plan = plan_version(PRESENT, PRESENT_NAMES, frozenset(), {}, mirror=True)
    assert plan.target == frozenset()
    assert plan.removed == PRESENT


def test_additive_with_empty_upstream_keeps_everything() -> None:
    plan = plan_version(PRESENT, PRESENT_NAMES, frozenset(), {}, mirror=False)
    assert plan.target == PRESENT
    assert not plan.changed


def test_plan_sets_are_frozen() -> None:
    plan = plan_version(PRESENT, PRESENT_NAMES, frozenset({M2}), {}, mirror=False)
    assert isinstance(plan.target, frozenset)
    assert isinstance(plan.added, frozenset)
    assert isinstance(plan.removed, frozenset)
