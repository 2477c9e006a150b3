"""Update masks (server/services/masks.py resolve_mask) on the real Remote/Repository messages."""

from __future__ import annotations

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from protos import mirror_pb2 as pb
from server.domain.errors import InvalidArgument
from server.services.masks import resolve_mask

REPO_MUTABLE = ("description", "retain_versions")
REPO_OUTPUT_ONLY = (
    "name",
    "uid",
    "latest_version",
    "latest_version_number",
    "versions",
    "create_time",
    "update_time",
)  # `mirror` is deliberately neither: immutable after create.

REMOTE_OUTPUT_ONLY = ("name", "uid", "password_set", "create_time", "update_time")
REMOTE_MUTABLE = ("url", "include_tags", "download_concurrency", "password", "headers")
# upstream_name is immutable here.


def repo_mask(message: pb.Repository, *paths: str) -> list[str]:
    return resolve_mask(
        FieldMask(paths=list(paths)),
        message,
        mutable=REPO_MUTABLE,
        output_only=REPO_OUTPUT_ONLY,
    )


def remote_mask(message: pb.Remote, *paths: str, field: str = "update_mask") -> list[str]:
    return resolve_mask(
        FieldMask(paths=list(paths)),
        message,
        mutable=REMOTE_MUTABLE,
        output_only=REMOTE_OUTPUT_ONLY,
        field=field,
    )


# --- empty mask ---------------------------------------------------------------------------------


def test_empty_mask_is_populated_mutable_fields() -> None:
    message = pb.Repository(name="repositories/r", description="d", mirror=True)
    assert repo_mask(message) == ["description"]


def test_empty_mask_nothing_populated() -> None:
    assert repo_mask(pb.Repository()) == []


def test_empty_mask_default_scalars_are_not_populated() -> None:
    assert repo_mask(pb.Repository(description="", retain_versions=0)) == []


def test_empty_mask_all_mutable_populated_in_field_order() -> None:
    message = pb.Repository(retain_versions=3, description="d", uid="u")
    assert repo_mask(message) == ["description", "retain_versions"]


def test_empty_mask_on_remote_with_optional_and_repeated_and_map() -> None:
    message = pb.Remote(
        name="remotes/r",
        upstream_name="library/x",  # immutable: ignored by the empty mask
        include_tags=["latest"],
        download_concurrency=0,  # explicit presence: populated although zero
        headers={"X-A": "1"},
        password_set=True,
    )
    assert remote_mask(message) == ["download_concurrency", "include_tags", "headers"]


def test_empty_mask_unset_optional_is_not_populated() -> None:
    assert remote_mask(pb.Remote(url="https://h")) == ["url"]


# --- "*" ----------------------------------------------------------------------------------------


def test_star_is_every_mutable_field() -> None:
    assert repo_mask(pb.Repository(), "*") == list(REPO_MUTABLE)
    assert remote_mask(pb.Remote(url="x"), "*") == list(REMOTE_MUTABLE)


def test_star_mixed_with_paths_is_not_a_wildcard() -> None:
    with pytest.raises(InvalidArgument) as info:
        repo_mask(pb.Repository(), "*", "description")
    assert [v.field for v in info.value.violations] == ["update_mask"]


# --- explicit paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (("description",), ["description"]),
        (("retain_versions", "description"), ["retain_versions", "description"]),
        (("description", "description"), ["description"]),
    ],
)
def test_explicit_mutable_paths(paths: tuple[str, ...], expected: list[str]) -> None:
    # Explicit paths apply even when the field is unset (clearing it).
    assert repo_mask(pb.Repository(), *paths) == expected


@pytest.mark.parametrize("path", REPO_OUTPUT_ONLY)
def test_output_only_paths_are_ignored(path: str) -> None:
    assert repo_mask(pb.Repository(description="d"), path) == []
    assert repo_mask(pb.Repository(), path, "description") == ["description"]


@pytest.mark.parametrize(
    "path", ["nope", "Description", "description.text", "remote.url", "", " description"]
)
def test_unknown_path_rejected(path: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        repo_mask(pb.Repository(), path)
    (violation,) = info.value.violations
    assert violation.field == "update_mask"
    assert "unknown field" in violation.description


def test_immutable_path_rejected() -> None:
    with pytest.raises(InvalidArgument) as info:
        repo_mask(pb.Repository(mirror=True), "mirror")
    (violation,) = info.value.violations
    assert violation.field == "update_mask"
    assert "cannot be updated" in violation.description


def test_immutable_remote_path_rejected_with_custom_field() -> None:
    with pytest.raises(InvalidArgument) as info:
        remote_mask(pb.Remote(upstream_name="x"), "upstream_name", field="request.update_mask")
    assert [v.field for v in info.value.violations] == ["request.update_mask"]


def test_every_bad_path_reported() -> None:
    with pytest.raises(InvalidArgument) as info:
        remote_mask(pb.Remote(), "url", "nope", "name", "upstream_name", "policy")
    descriptions = [v.description for v in info.value.violations]
    assert len(descriptions) == 3
    assert "unknown field 'nope'" in descriptions[0]
    assert "'upstream_name' cannot be updated" in descriptions[1]
    assert "'policy' cannot be updated" in descriptions[2]
    assert info.value.code == "INVALID_ARGUMENT"
