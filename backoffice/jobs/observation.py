"""What the reconciler last saw of each job's deployment, kept in a Prefect variable per job, and
what an operator meant by changing Prefect since: the pause toggle (`operator_intent`) and the
schedule edit (`schedule_intent`). See backoffice/jobs/sync.py for how a pass uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.exceptions import ObjectAlreadyExists

from backoffice.jobs.prefect_api import Deployed
from backoffice.jobs.schedule import Schedule

OBSERVED_PREFIX = "backoffice_sync_"


@dataclass(frozen=True)
class Observation:
    """The Prefect side of a job as we last left it (or last found it in step with the record)."""

    deployment_id: UUID
    paused: bool
    schedules: tuple[tuple[UUID, bool], ...]
    # (schedule id, its cron); None in an observation written before schedules were kept
    crons: tuple[tuple[UUID, Schedule | None], ...] | None = None

    @classmethod
    def of(cls, deployed: Deployed) -> Observation:
        """Snapshot a deployment."""
        return cls(deployed.deployment_id, deployed.paused, deployed.schedules, deployed.crons)

    def on(self, schedule: Schedule) -> Observation:
        """This observation with every schedule running `schedule` (as `apply_schedule` leaves it)."""
        return replace(self, crons=tuple((sid, schedule) for sid, _ in self.schedules))

    @classmethod
    def after_schedule(
        cls, before: Observation | None, deployed: Deployed, schedule: Schedule
    ) -> Observation:
        """How `apply_schedule(deployed, schedule)` leaves the deployment, pause state as last observed.

        The pause state stays as `before` saw it, so an operator's UI toggle not yet taken in still
        shows as a difference on the next pass.
        """
        if before is None or not before.matches(deployed):
            before = cls.of(deployed)
        return before.on(schedule)

    @classmethod
    def after_apply(cls, deployed: Deployed, enabled: bool, before: Observation | None = None) -> Observation:
        """How `apply_enabled(deployed, enabled)` leaves the deployment.

        Recorded instead of re-reading Prefect: an operator's toggle that lands while we apply
        must show up as a difference on the next pass, not be taken for our own doing. The crons
        stay as `before` saw them (when it saw these schedules), so a schedule edit in Prefect not
        yet taken in still shows as one.
        """
        crons = deployed.crons
        if before is not None and before.crons is not None and before.matches(deployed):
            crons = before.crons
        return cls(
            deployed.deployment_id, not enabled, tuple((sid, enabled) for sid, _ in deployed.schedules), crons
        )

    def matches(self, deployed: Deployed) -> bool:
        """True when this observation is of the same deployment and schedule ids as `deployed`."""
        ids = [sid for sid, _ in deployed.schedules]
        return (self.deployment_id, [sid for sid, _ in self.schedules]) == (deployed.deployment_id, ids)

    def to_json(self) -> dict[str, Any]:
        """The variable value."""
        value: dict[str, Any] = {
            "deployment_id": str(self.deployment_id),
            "paused": self.paused,
            "schedules": [[str(sid), active] for sid, active in self.schedules],
        }
        if self.crons is not None:
            value["crons"] = [[str(sid), cron.to_json() if cron else None] for sid, cron in self.crons]
        return value

    @classmethod
    def from_json(cls, value: Any) -> Observation | None:
        """Parse a variable value; None when it is not ours."""
        try:
            crons = value.get("crons")
            return cls(
                UUID(value["deployment_id"]),
                bool(value["paused"]),
                tuple((UUID(sid), bool(active)) for sid, active in value["schedules"]),
                None
                if crons is None
                else tuple((UUID(sid), Schedule.from_json(c) if c else None) for sid, c in crons),
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return None


def operator_intent(before: Observation, now: Deployed) -> bool | None:
    """What an operator meant by changing Prefect since `before`: True enable, False disable.

    None when nothing an operator does changed: a different deployment (fresh Prefect database)
    or different schedule ids (a redeploy), or no change of the pause flag or schedule activity.
    """
    if before.deployment_id != now.deployment_id:
        return None
    if [sid for sid, _ in before.schedules] != [sid for sid, _ in now.schedules]:
        return None
    was = dict(before.schedules)
    towards_on = (before.paused and not now.paused) or any(a and not was[s] for s, a in now.schedules)
    towards_off = (now.paused and not before.paused) or any(was[s] and not a for s, a in now.schedules)
    if towards_on == towards_off:
        # Nothing changed (None), or both ways at once: then what Prefect shows now counts.
        return now.enabled if towards_on else None
    return towards_on


def schedule_intent(before: Observation, now: Deployed, catalog: Schedule) -> Schedule | None:
    """The cron an operator put on the deployment in Prefect since `before`; None when none did.

    Under the same schedule id: a changed cron (the UI's schedule edit). Under a new id: a cron
    other than prefect.yaml's `catalog` (`prefect deployment schedule create [--replace]`; a
    redeploy recreates the schedules with the catalog's cron). None for a different deployment (a
    fresh Prefect database), an observation that kept no crons, or a schedule that is no cron.
    """
    if before.crons is None or before.deployment_id != now.deployment_id:
        return None
    was = dict(before.crons)
    for sid, schedule in now.crons:
        if schedule is None:
            continue
        if sid in was and schedule != was[sid]:
            return schedule
        if sid not in was and schedule != catalog:
            return schedule
    return None


def observed_variable(job_id: str) -> str:
    """Name of the Prefect variable holding the job's observation (lowercase, as Prefect wants)."""
    return OBSERVED_PREFIX + job_id.lower()


async def read_observation(client: PrefectClient, job_id: str) -> Observation | None:
    """The last observation of a job, None when there is none."""
    variable = await client.read_variable_by_name(observed_variable(job_id))
    return Observation.from_json(variable.value) if variable is not None else None


async def write_observation(client: PrefectClient, job_id: str, seen: Observation) -> None:
    """Remember how we left the job's deployment."""
    name, value = observed_variable(job_id), seen.to_json()
    if await client.read_variable_by_name(name) is None:
        try:
            await client.create_variable(VariableCreate(name=name, value=value, tags=["backoffice"]))
            return
        except ObjectAlreadyExists:
            pass  # a concurrent reconciler created it first: update below
    await client.update_variable(VariableUpdate(name=name, value=value))
