"""The parameters of a sync task, shared by the services that queue syncs (the Sync API and
the scheduler) and the engine that runs them."""

from __future__ import annotations

from dataclasses import dataclass

SYNC_KIND = "sync"


@dataclass(frozen=True, slots=True)
class SyncParameters:
    """What a sync task was started with (stored as the task's parameters)."""

    repository_id: str
    remote_id: str
    mirror: bool
    dry_run: bool = False
    schedule: str = ""  # `schedules/{id}` when a schedule started the sync
    scheduled_time: str = ""  # the run time (ISO 8601, UTC) the schedule fired for

    @property
    def resource(self) -> str:
        """The resource the task writes exclusively."""
        return f"repositories/{self.repository_id}"

    def to_parameters(self) -> dict[str, str]:
        params = {
            "repository": self.resource,
            "remote": f"remotes/{self.remote_id}",
            "mirror": "true" if self.mirror else "false",
        }
        if self.dry_run:
            params["dry_run"] = "true"
        if self.schedule:
            params["schedule"] = self.schedule
            params["scheduled_time"] = self.scheduled_time
        return params

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> SyncParameters:
        return cls(
            repository_id=params["repository"].removeprefix("repositories/"),
            remote_id=params["remote"].removeprefix("remotes/"),
            mirror=params.get("mirror") == "true",
            dry_run=params.get("dry_run") == "true",
            schedule=params.get("schedule", ""),
            scheduled_time=params.get("scheduled_time", ""),
        )
