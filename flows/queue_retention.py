"""Queue_Retention (daily, 02:00): delete finished tasks past their retention, and old audit events."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State

from backoffice.jobs.resources import job_resources
from backoffice.jobs.runtime import skip_if_disabled
from backoffice.jobs.timeouts import with_job_timeout
from backoffice.queue.retention import RetentionReport, run_retention


@task(name="purge-queue", cache_policy=NONE)
def purge_queue() -> RetentionReport:
    """Delete completed and dead-lettered tasks older than their type's retention_days, then events
    and callback deliveries older than BACKOFFICE_EVENT_RETENTION_DAYS, in small batches."""
    with job_resources() as jobs:
        return run_retention(jobs.engine, jobs.settings)


@with_job_timeout
@flow(name="queue-retention")
def queue_retention(force: bool = False) -> RetentionReport | State[Any]:
    """Keep the queue's tables small: finished tasks go after their type's `retention_days`
    (default BACKOFFICE_TASK_RETENTION_DAYS, 30); pending and locked tasks are never touched.
    Events of deleted tasks stay BACKOFFICE_EVENT_RETENTION_DAYS (365). Safe to re-run."""
    if (skipped := skip_if_disabled(force)) is not None:
        return skipped
    report = purge_queue()
    get_run_logger().info(
        "Deleted %d task(s) %s, %d event(s), %d callback delivery(ies).",
        report.tasks,
        report.tasks_by_rule,
        report.events,
        report.deliveries,
    )
    return report
