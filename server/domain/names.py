"""Resource names (AIP-122), parsed once at the edge into value types.

Ids of repositories, remotes and distributions follow one rule, documented in the README:
lower-case letters, digits, `.`, `_` and `-`, starting and ending with a letter or digit,
at most 128 characters.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from server.domain.errors import InvalidArgument, Rule

ID_PATTERN = r"[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?"
_ID = re.compile(ID_PATTERN)
ID_RULE = "must be 1-128 characters of a-z, 0-9, '.', '_', '-', starting and ending with a-z or 0-9"


def check_id(value: str, field: str) -> str:
    """Return `value` if it is a valid resource id, else raise InvalidArgument on `field`."""
    if not _ID.fullmatch(value or ""):
        raise InvalidArgument(
            f"invalid id {value!r}: {ID_RULE}",
            field=field,
            reason=Rule.INVALID_RESOURCE_ID,
            id=value,
        )
    return value


def _split(name: str, collection: str, field: str) -> str:
    prefix = collection + "/"
    if not name.startswith(prefix):
        raise InvalidArgument(
            f"expected {collection}/{{id}}, got {name!r}",
            field=field,
            reason=Rule.INVALID_RESOURCE_NAME,
            name=name,
        )
    return check_id(name[len(prefix) :], field)


@dataclass(frozen=True, slots=True)
class RepositoryName:
    """`repositories/{repository}`."""

    repository_id: str

    @classmethod
    def parse(cls, name: str, field: str = "name") -> RepositoryName:
        return cls(_split(name, "repositories", field))

    def __str__(self) -> str:
        return f"repositories/{self.repository_id}"


@dataclass(frozen=True, slots=True)
class RemoteName:
    """`remotes/{remote}`."""

    remote_id: str

    @classmethod
    def parse(cls, name: str, field: str = "name") -> RemoteName:
        return cls(_split(name, "remotes", field))

    def __str__(self) -> str:
        return f"remotes/{self.remote_id}"


@dataclass(frozen=True, slots=True)
class DistributionName:
    """`distributions/{distribution}`."""

    distribution_id: str

    @classmethod
    def parse(cls, name: str, field: str = "name") -> DistributionName:
        return cls(_split(name, "distributions", field))

    def __str__(self) -> str:
        return f"distributions/{self.distribution_id}"


LATEST = "latest"
# ASCII only (str.isdigit() accepts other scripts); 9 digits stay inside an int32 column.
_NUMBER = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class VersionName:
    """`repositories/{repository}/versions/{number}`; `number` None means `latest`."""

    repository: RepositoryName
    number: int | None

    @classmethod
    def parse(cls, name: str, field: str = "name", allow_latest: bool = True) -> VersionName:
        head, sep, tail = name.rpartition("/versions/")
        if not sep:
            raise InvalidArgument(
                f"expected repositories/{{id}}/versions/{{number}}, got {name!r}",
                field=field,
                reason=Rule.INVALID_RESOURCE_NAME,
                name=name,
            )
        repository = RepositoryName.parse(head, field)
        if tail == LATEST and allow_latest:
            return cls(repository, None)
        if not _NUMBER.fullmatch(tail):
            raise InvalidArgument(
                f"version must be a non-negative number"
                f"{' or latest' if allow_latest else ''}, got {tail!r}",
                field=field,
                reason=Rule.INVALID_RESOURCE_NAME,
                name=name,
            )
        return cls(repository, int(tail))

    def __str__(self) -> str:
        return f"{self.repository}/versions/{LATEST if self.number is None else self.number}"


def version_name(repository_id: str, number: int) -> str:
    """The resource name of version `number` of a repository."""
    return f"repositories/{repository_id}/versions/{number}"


@dataclass(frozen=True, slots=True)
class TaskName:
    """`tasks/{uuid}`."""

    task_id: str

    @classmethod
    def parse(cls, name: str, field: str = "name") -> TaskName:
        collection, _, tid = name.partition("/")
        try:
            parsed = uuid.UUID(tid)
        except ValueError:
            parsed = None
        if collection != "tasks" or parsed is None or str(parsed) != tid:
            raise InvalidArgument(
                f"expected tasks/{{uuid}}, got {name!r}",
                field=field,
                reason=Rule.INVALID_RESOURCE_NAME,
                name=name,
            )
        return cls(tid)

    def __str__(self) -> str:
        return f"tasks/{self.task_id}"
