"""The job catalog, read from `prefect.yaml` (the one place the recurring jobs are declared).

A job is a Prefect deployment; its id is the deployment name. Besides what Prefect reads, each
deployment carries our `backoffice:` key (misfire policy, catch-up limit, timeout), which
Prefect ignores; `enabled_by_default: false` there makes a job start disabled until an operator
enables it (a job without an Enabled record follows its default).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; no dev dependency for one call

from backoffice.errors import NotFound
from backoffice.jobs.schedule import Schedule

PROJECT_DIR = Path(__file__).resolve().parents[2]
PREFECT_YAML = PROJECT_DIR / "prefect.yaml"

Misfire = Literal["each_missed_slot", "latest_only"]
MISFIRE_POLICIES: tuple[Misfire, ...] = ("each_missed_slot", "latest_only")


class CatalogError(ValueError):
    """prefect.yaml does not describe the jobs the way our code needs."""


@dataclass(frozen=True)
class Job:
    """One recurring job as declared in prefect.yaml."""

    id: str
    entrypoint: str
    cron: str
    timezone: str
    parameters: dict[str, Any]
    misfire: Misfire
    catch_up_limit: int
    timeout_seconds: int
    tags: tuple[str, ...] = field(default=())
    enabled_by_default: bool = True

    @property
    def function(self) -> str:
        """The flow function's name (the part after ':' of the entrypoint)."""
        return self.entrypoint.rsplit(":", 1)[-1]

    @property
    def flow_name(self) -> str:
        """The Prefect flow name of the entrypoint, as its `@flow(name=...)` declares it."""
        return flow_name(self.entrypoint)

    @property
    def schedule(self) -> Schedule:
        """The cron and timezone prefect.yaml declares (an operator's override may be in force instead)."""
        return Schedule(self.cron, self.timezone)

    def on(self, schedule: Schedule) -> Job:
        """This job under `schedule` (an operator's override); everything else as declared."""
        return replace(self, cron=schedule.cron, timezone=schedule.timezone)


@dataclass(frozen=True)
class Catalog:
    """The jobs in declaration order."""

    jobs: tuple[Job, ...]

    def get(self, job_id: str) -> Job:
        """The job `job_id`; NotFound when the catalog has no such job."""
        for job in self.jobs:
            if job.id == job_id:
                return job
        known = ", ".join(j.id for j in self.jobs)
        raise NotFound(f"There is no job '{job_id}'. Known jobs: {known}.")

    @property
    def ids(self) -> list[str]:
        """Job ids in declaration order."""
        return [job.id for job in self.jobs]

    @property
    def enabled_defaults(self) -> dict[str, bool]:
        """Whether each job is enabled while it has no Enabled record (`enabled_by_default`)."""
        return {job.id: job.enabled_by_default for job in self.jobs}

    def on(self, schedules: Mapping[str, Schedule]) -> Catalog:
        """The catalog with the schedules in force (`schedules`: the overrides by job id)."""
        return Catalog(tuple(job.on(schedules[job.id]) if job.id in schedules else job for job in self.jobs))


@lru_cache
def flow_name(entrypoint: str) -> str:
    """The name of the Prefect flow at `entrypoint` (`flows/x.py:fn`), read from the flow object.

    Imports the flow's module (`flows.x`, cached by Python) rather than repeating the name here,
    so the decorator stays the one place it is written.
    """
    from prefect import Flow

    path, _, function = entrypoint.rpartition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, function, None)
    if not isinstance(flow, Flow):
        raise CatalogError(f"{entrypoint} is not a Prefect flow")
    return flow.name


def _job(raw: dict[str, Any]) -> Job:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CatalogError("every deployment in prefect.yaml needs a name (the job id)")
    schedules = raw.get("schedules") or []
    if len(schedules) != 1 or "cron" not in schedules[0]:
        raise CatalogError(f"{name}: declare exactly one cron schedule")
    ours = raw.get("backoffice") or {}
    misfire = ours.get("misfire")
    if misfire not in MISFIRE_POLICIES:
        raise CatalogError(f"{name}: backoffice.misfire must be one of {', '.join(MISFIRE_POLICIES)}")
    enabled_by_default = ours.get("enabled_by_default", True)
    if not isinstance(enabled_by_default, bool):
        raise CatalogError(f"{name}: backoffice.enabled_by_default must be true or false")
    return Job(
        id=name,
        entrypoint=str(raw["entrypoint"]),
        cron=str(schedules[0]["cron"]),
        timezone=str(schedules[0].get("timezone") or "UTC"),
        parameters=dict(raw.get("parameters") or {}),
        misfire=cast(Misfire, misfire),
        catch_up_limit=int(ours.get("catch_up_limit", 1)),
        timeout_seconds=int(ours.get("timeout_seconds", 3600)),
        tags=tuple(raw.get("tags") or ()),
        enabled_by_default=enabled_by_default,
    )


def parse_catalog(text: str) -> Catalog:
    """Parse the text of a prefect.yaml into a Catalog."""
    data = yaml.safe_load(text) or {}
    jobs = tuple(_job(raw) for raw in data.get("deployments") or [])
    ids = [job.id for job in jobs]
    if len(set(ids)) != len(ids):
        raise CatalogError("job ids (deployment names) in prefect.yaml must be unique")
    # The timeout is Prefect's flow timeout (backoffice.jobs.timeouts): one per entrypoint.
    timeouts: dict[str, int] = {}
    for job in jobs:
        if timeouts.setdefault(job.entrypoint, job.timeout_seconds) != job.timeout_seconds:
            raise CatalogError(
                f"{job.id}: the jobs of {job.entrypoint} must share one backoffice.timeout_seconds"
            )
    return Catalog(jobs)


@lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> Catalog:
    return parse_catalog(path.read_text(encoding="utf-8"))


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog of `path` (default: the project's prefect.yaml), re-read when the file changes."""
    path = path or PREFECT_YAML
    return _load(path, path.stat().st_mtime_ns)
