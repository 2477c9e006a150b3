"""Resource-name helpers: turn short ids into the full AIP names the service expects.

Every client method that takes a resource name accepts either the full name
(``repositories/codzo``) or the short id (``codzo``); these functions do the mapping.
"""

from __future__ import annotations

import uuid

__all__ = [
    "distribution_name",
    "remote_name",
    "repository_name",
    "schedule_name",
    "short_id",
    "task_name",
    "version_name",
]

_REPOSITORIES = "repositories/"
_REMOTES = "remotes/"
_DISTRIBUTIONS = "distributions/"
_TASKS = "tasks/"
_VERSIONS = "/versions/"


def _prefixed(prefix: str, value: str) -> str:
    """Return ``value`` with ``prefix`` added unless it is already there."""
    value = value.strip()
    if not value:
        raise ValueError(f"an empty name is not a valid {prefix.rstrip('/')} name")
    return value if value.startswith(prefix) else prefix + value


def repository_name(value: str) -> str:
    """Return the full repository name: ``codzo`` -> ``repositories/codzo``."""
    return _prefixed(_REPOSITORIES, value)


def remote_name(value: str) -> str:
    """Return the full remote name: ``hub`` -> ``remotes/hub``."""
    return _prefixed(_REMOTES, value)


def schedule_name(value: str) -> str:
    """Return the full schedule name: ``nightly`` -> ``schedules/nightly``."""
    return _prefixed("schedules/", value)


def distribution_name(value: str) -> str:
    """Return the full distribution name: ``web`` -> ``distributions/web``."""
    return _prefixed(_DISTRIBUTIONS, value)


def task_name(value: str) -> str:
    """Return the full task name for ``tasks/<uuid>`` or a bare uuid.

    A bare value that is not a uuid is passed through with the prefix added, so the
    server (not the client) decides whether it exists.
    """
    value = value.strip()
    if value.startswith(_TASKS):
        return value
    try:
        return _TASKS + str(uuid.UUID(value))
    except ValueError:
        return _prefixed(_TASKS, value)


def version_name(value: str, number: int | str | None = None) -> str:
    """Return a full version name.

    ``value`` is either a full version name (``repositories/r/versions/3``), a short one
    (``r/versions/3``), or a repository (``r`` / ``repositories/r``) combined with
    ``number`` (an int, a numeric string or ``"latest"``; ``None`` means ``latest``).
    """
    value = value.strip()
    if _VERSIONS in value:
        if number is not None:
            raise ValueError(f"{value!r} already names a version; do not pass a number too")
        return repository_name(value)
    ref = "latest" if number is None else str(number).strip()
    if ref != "latest" and not (ref.isdigit()):
        raise ValueError(f"version must be a non-negative number or 'latest', not {ref!r}")
    return f"{repository_name(value)}{_VERSIONS}{ref}"


def short_id(name: str) -> str:
    """Return the last segment of a resource name (``repositories/codzo`` -> ``codzo``)."""
    return name.rsplit("/", 1)[-1]
