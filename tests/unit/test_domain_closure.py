"""The content graph's closures and removal rules (pure)."""

from __future__ import annotations

import pytest

from server.domain.closure import ContentGraph
from server.domain.errors import FailedPrecondition
from server.domain.plan import ContentChange, plan_change
from server.domain.resources import BLOB, MANIFEST, SIGNATURE, TAG

HEX_A = "a" * 64


def graph() -> ContentGraph:
    """Index 10 over images 11 and 12 (blobs 1-3, 2 shared); image 13 (blob 4) with a cosign
    signature manifest 14 (blob 5) tagged sha256-<hex of 13>.sig, an atomic signature 40 and
    a referrer 15 (blob 6). Tags: multi -> 10, app -> 13, also -> 13, sig tag -> 14."""
    g = ContentGraph()
    g.manifests = {10: "sha256:" + "0" * 64, 11: "sha256:" + "1" * 64, 12: "sha256:" + "2" * 64}
    g.manifests |= {13: "sha256:" + HEX_A, 14: "sha256:" + "e" * 64, 15: "sha256:" + "f" * 64}
    g.children = {10: {11, 12}}
    g.manifest_blobs = {11: {1, 2}, 12: {2, 3}, 13: {4}, 14: {5}, 15: {6}}
    g.blobs = {n: f"sha256:{n:064d}" for n in range(1, 7)}
    g.subjects = {15: "sha256:" + HEX_A}
    g.signatures = {40: 13}
    g.tags = {20: ("multi", 10), 21: ("app", 13), 22: ("also", 13), 23: (f"sha256-{HEX_A}.sig", 14)}
    return g


def test_closure_of_an_image_brings_blobs_signatures_cosign_tags_and_referrers() -> None:
    keys = graph().closure([13])
    assert keys == {
        (MANIFEST, 13), (MANIFEST, 14), (MANIFEST, 15),
        (BLOB, 4), (BLOB, 5), (BLOB, 6),
        (SIGNATURE, 40), (TAG, 23),
    }  # fmt: skip


def test_closure_of_an_index_brings_its_children() -> None:
    assert graph().closure([10]) == {
        (MANIFEST, 10),
        (MANIFEST, 11),
        (MANIFEST, 12),
        (BLOB, 1),
        (BLOB, 2),
        (BLOB, 3),
    }


def test_removal_drops_the_image_its_tags_and_artifacts_keeps_shared_content() -> None:
    g = graph()
    removed = g.removal([13], [])
    assert {k for k in removed if k[0] == TAG} == {(TAG, 21), (TAG, 22), (TAG, 23)}
    assert (MANIFEST, 15) in removed and (SIGNATURE, 40) in removed
    assert not any(k in removed for k in [(MANIFEST, 10), (BLOB, 2)])


def test_removal_refuses_what_staying_content_references() -> None:
    g = graph()
    with pytest.raises(FailedPrecondition) as child:
        g.removal([11], [])
    assert child.value.reason == "CONTENT_IN_USE"
    assert child.value.metadata["referencedBy"] == g.manifests[10]
    with pytest.raises(FailedPrecondition):
        g.removal([], [2])
    # Removing the index with its children takes their blobs too.
    assert g.removal([10], []) >= {(MANIFEST, 11), (BLOB, 1), (BLOB, 2), (BLOB, 3), (TAG, 20)}


def test_plan_change_replaces_tags_by_name_and_removes() -> None:
    base = frozenset({(TAG, 1), (MANIFEST, 5), (BLOB, 7)})
    change = ContentChange(
        add=frozenset({(TAG, 2), (MANIFEST, 6)}), add_tag_names={2: "latest"},
        remove=frozenset({(BLOB, 7)}),
    )  # fmt: skip
    plan = plan_change(base, {1: "latest"}, change)
    assert plan.target == {(TAG, 2), (MANIFEST, 5), (MANIFEST, 6)}
    assert plan.removed == {(TAG, 1), (BLOB, 7)}
    exact = plan_change(base, {1: "latest"}, ContentChange(add=frozenset({(BLOB, 7)}), exact=True))
    assert exact.target == {(BLOB, 7)} and exact.removed == {(TAG, 1), (MANIFEST, 5)}
