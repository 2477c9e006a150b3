"""Resource names (server/domain/names.py): parse, str round-trip, and every bad form."""

from __future__ import annotations

import uuid

import pytest

from server.domain.errors import InvalidArgument
from server.domain.names import (
    DistributionName,
    RemoteName,
    RepositoryName,
    TaskName,
    VersionName,
    check_id,
    version_name,
)

ID_128 = "a" * 128
ID_129 = "a" * 129
TASK_ID = "0b8f5b0e-6f1c-4a53-9a4e-2f1d3c4b5a69"

SIMPLE = [
    (RepositoryName, "repositories"),
    (RemoteName, "remotes"),
    (DistributionName, "distributions"),
]
GOOD_IDS = ["a", "0", "ab", "a-b", "a.b", "a_b", "a--b", "abc123", "1.0-rc_1", ID_128]
# (id part, why) of ids every simple name rejects.
BAD_IDS = [
    ("", "empty"),
    ("A", "uppercase"),
    ("aB", "uppercase inside"),
    (ID_129, "129 characters"),
    ("-a", "leading dash"),
    ("a-", "trailing dash"),
    (".a", "leading dot"),
    ("a.", "trailing dot"),
    ("_a", "leading underscore"),
    ("a_", "trailing underscore"),
    ("a b", "space"),
    ("a/b", "slash"),
    ("a:b", "colon"),
    ("é", "non-ascii"),
    ("a\n", "trailing newline"),
]


@pytest.mark.parametrize(("cls", "collection"), SIMPLE)
@pytest.mark.parametrize("ident", GOOD_IDS)
def test_simple_name_round_trip(cls: type, collection: str, ident: str) -> None:
    text = f"{collection}/{ident}"
    parsed = cls.parse(text)
    assert str(parsed) == text
    assert cls.parse(str(parsed)) == parsed
    assert parsed == cls(ident)


@pytest.mark.parametrize(("cls", "collection"), SIMPLE)
@pytest.mark.parametrize(("ident", "why"), BAD_IDS, ids=[why for _, why in BAD_IDS])
def test_simple_name_rejects_bad_id(cls: type, collection: str, ident: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        cls.parse(f"{collection}/{ident}", "request.name")
    assert info.value.violations[0].field == "request.name"


@pytest.mark.parametrize(("cls", "collection"), SIMPLE)
@pytest.mark.parametrize(
    "prefix",
    ["", "/", "repository/", "Repositories/", "remote/", "distribution/", "tasks/", "x/"],
)
def test_simple_name_rejects_wrong_collection(cls: type, collection: str, prefix: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        cls.parse(f"{prefix}abc", "parent")
    assert info.value.violations[0].field == "parent"


@pytest.mark.parametrize(
    ("cls", "other"),
    [
        (RepositoryName, "remotes/abc"),
        (RepositoryName, "distributions/abc"),
        (RemoteName, "repositories/abc"),
        (DistributionName, "remotes/abc"),
    ],
)
def test_simple_name_rejects_other_collections(cls: type, other: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        cls.parse(other, "name")
    assert info.value.violations[0].field == "name"


@pytest.mark.parametrize(("cls", "collection"), SIMPLE)
def test_default_field_is_name(cls: type, collection: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        cls.parse(f"{collection}/UPPER")
    assert info.value.violations[0].field == "name"
    assert info.value.reason == "INVALID_RESOURCE_ID"
    assert info.value.code == "INVALID_ARGUMENT"


def test_simple_name_error_is_one_violation_with_metadata() -> None:
    with pytest.raises(InvalidArgument) as info:
        RepositoryName.parse("repositories/-x", "repository")
    err = info.value
    assert len(err.violations) == 1
    assert err.metadata == {"id": "-x"}


@pytest.mark.parametrize("ident", GOOD_IDS)
def test_check_id_accepts(ident: str) -> None:
    assert check_id(ident, "remote_id") == ident


@pytest.mark.parametrize(("ident", "why"), BAD_IDS, ids=[why for _, why in BAD_IDS])
def test_check_id_rejects(ident: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_id(ident, "remote_id")
    assert info.value.violations[0].field == "remote_id"


# --- versions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "repository_id", "number"),
    [
        ("repositories/r/versions/0", "r", 0),
        ("repositories/r/versions/1", "r", 1),
        ("repositories/my-repo.v2/versions/42", "my-repo.v2", 42),
        ("repositories/r/versions/999999999", "r", 999_999_999),
        ("repositories/r/versions/latest", "r", None),
    ],
)
def test_version_name_round_trip(text: str, repository_id: str, number: int | None) -> None:
    parsed = VersionName.parse(text)
    assert parsed == VersionName(RepositoryName(repository_id), number)
    assert str(parsed) == text
    assert VersionName.parse(str(parsed)) == parsed


def test_version_name_helper_matches_parse() -> None:
    assert VersionName.parse(version_name("r", 7)) == VersionName(RepositoryName("r"), 7)


def test_version_latest_allowed_by_default_and_is_none() -> None:
    assert VersionName.parse("repositories/r/versions/latest").number is None


@pytest.mark.parametrize(
    ("text", "allow_latest"),
    [
        ("repositories/r/versions/latest", False),
        ("repositories/r/versions/abc", True),
        ("repositories/r/versions/-1", True),
        ("repositories/r/versions/+1", True),
        ("repositories/r/versions/1.0", True),
        ("repositories/r/versions/ 1", True),
        ("repositories/r/versions/0x1", True),
        ("repositories/r/versions/LATEST", True),
        ("repositories/r/versions/", True),
        ("repositories/r/versions/1234567890123456789", True),  # 19 digits
        ("repositories/r/versions", True),
        ("repositories/r", True),
        ("repositories/r/version/1", True),
        ("remotes/r/versions/1", True),
        ("repositories/R/versions/1", True),
        ("repositories/-r/versions/1", True),
        ("repositories//versions/1", True),
        ("/versions/1", True),
        ("versions/1", True),
        ("repositories/a/b/versions/1", True),
        ("repositories/r/versions/1/versions/2", True),
        ("", True),
    ],
)
def test_version_name_rejects(text: str, allow_latest: bool) -> None:
    with pytest.raises(InvalidArgument) as info:
        VersionName.parse(text, "version", allow_latest=allow_latest)
    assert info.value.violations[0].field == "version"


def test_version_name_numbers_still_work_without_latest() -> None:
    parsed = VersionName.parse("repositories/r/versions/3", allow_latest=False)
    assert parsed.number == 3


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param("\u00b2", id="superscript-two"),  # isdigit() but int() fails
        pytest.param("\u0661", id="arabic-indic-one"),  # isdigit() and int() == 1
        pytest.param("\uff11", id="fullwidth-one"),
    ],
)
def test_version_name_rejects_non_ascii_digits(tail: str) -> None:
    # Regression: `str.isdigit()` let these through (ValueError, or a non-round-tripping name).
    with pytest.raises(InvalidArgument) as info:
        VersionName.parse(f"repositories/r/versions/{tail}", "version")
    assert info.value.violations[0].field == "version"


# --- tasks ---------------------------------------------------------------------------------------


def test_task_name_round_trip() -> None:
    parsed = TaskName.parse(f"tasks/{TASK_ID}")
    assert parsed == TaskName(TASK_ID)
    assert str(parsed) == f"tasks/{TASK_ID}"
    assert TaskName.parse(str(parsed)) == parsed


def test_task_name_round_trip_random_uuid() -> None:
    tid = str(uuid.uuid4())
    assert str(TaskName.parse(f"tasks/{tid}")) == f"tasks/{tid}"


@pytest.mark.parametrize(
    "text",
    [
        "tasks/not-a-uuid",
        "tasks/",
        "tasks",
        "",
        f"task/{TASK_ID}",
        f"Tasks/{TASK_ID}",
        f"jobs/{TASK_ID}",
        f"tasks/{TASK_ID.upper()}",  # valid UUID, non-canonical form
        f"tasks/{TASK_ID.replace('-', '')}",  # hex without hyphens
        f"tasks/{{{TASK_ID}}}",  # braces
        f"tasks/urn:uuid:{TASK_ID}",
        f"tasks/{TASK_ID}/x",
        f"tasks/{TASK_ID} ",
        f"tasks/{TASK_ID[:-1]}",
        f"/tasks/{TASK_ID}",
    ],
)
def test_task_name_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        TaskName.parse(text, "task")
    assert info.value.violations[0].field == "task"


def test_version_number_beyond_an_int32_column_is_invalid() -> None:
    # Version numbers live in an INTEGER column; a 10-digit number must be bad input, not a
    # database error.
    with pytest.raises(InvalidArgument) as caught:
        VersionName.parse("repositories/r/versions/9999999999", "name")
    assert caught.value.violations[0].field == "name"
