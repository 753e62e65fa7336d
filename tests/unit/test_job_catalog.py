"""The job catalog read from prefect.yaml, and the pure rules of sync, misfire and health."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.calendar import PRAGUE
from backoffice.errors import NotFound
from backoffice.jobs.catalog import CatalogError, Job, load_catalog, parse_catalog
from backoffice.jobs.misfire import latest_slots
from backoffice.jobs.prefect_api import Deployed
from backoffice.jobs.status import next_slot
from backoffice.jobs.sync import Observation, operator_intent

EXPECTED = {
    "Import_Shoptet_yesterday_EUR": ("10 0 * * *", {"currency": "EUR"}, "each_missed_slot"),
    "Import_Shoptet_yesterday_CZK": ("20 0 * * *", {"currency": "CZK"}, "each_missed_slot"),
    "Import_Comgate_yesterday_CZK": ("30 0 * * *", {"currency": "CZK"}, "each_missed_slot"),
    "Import_Comgate_yesterday_EUR": ("40 0 * * *", {"currency": "EUR"}, "each_missed_slot"),
    "Controlling": ("0 1 * * *", {}, "each_missed_slot"),
    "Print_Picking_morning": ("0 7 * * 1-5", {"batch": "morning"}, "latest_only"),
    "Print_Picking_noon": ("0 12 * * 1-5", {"batch": "noon"}, "latest_only"),
    "Finish_Transport": ("*/5 * * * *", {}, "latest_only"),
    "Queue_Retention": ("0 2 * * *", {}, "latest_only"),
}


def test_prefect_yaml_declares_the_jobs() -> None:
    catalog = load_catalog()
    assert catalog.ids == list(EXPECTED)
    for job in catalog.jobs:
        cron, parameters, misfire = EXPECTED[job.id]
        assert (job.cron, job.parameters, job.misfire, job.timezone) == (
            cron,
            parameters,
            misfire,
            "Europe/Prague",
        )
        assert job.entrypoint.startswith("flows/") and job.timeout_seconds > 0
    assert catalog.get("Finish_Transport").function == "finish_transport"


def test_unknown_job_is_not_found() -> None:
    with pytest.raises(NotFound, match="Known jobs"):
        load_catalog().get("Import_Everything")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("deployments:\n  - entrypoint: f.py:f\n", "needs a name"),
        ("deployments:\n  - {name: A, entrypoint: f.py:f, backoffice: {misfire: latest_only}}\n", "one cron"),
        (
            "deployments:\n  - {name: A, entrypoint: f.py:f, schedules: [{cron: '* * * * *'}],"
            " backoffice: {misfire: sometimes}}\n",
            "misfire must be",
        ),
    ],
)
def test_a_malformed_catalog_is_refused(text: str, problem: str) -> None:
    with pytest.raises(CatalogError, match=problem):
        parse_catalog(text)


def _deployed(paused: bool, actives: list[bool], ids: list[uuid.UUID], deployment: uuid.UUID) -> Deployed:
    return Deployed(deployment, uuid.uuid4(), paused, tuple(zip(ids, actives, strict=True)), frozenset())


@pytest.mark.parametrize(
    ("before", "now", "intent"),
    [
        ((False, True), (True, True), False),  # UI pause toggle on an enabled job
        ((False, True), (False, False), False),  # `prefect deployment schedule pause`
        ((True, False), (False, False), True),  # UI toggle back on (our disable also deactivated)
        ((True, False), (True, True), True),  # `prefect deployment schedule resume`
        ((True, False), (True, False), None),  # nothing changed
        ((False, True), (False, True), None),
    ],
)
def test_operator_intent_follows_the_direction_of_the_change(
    before: tuple[bool, bool], now: tuple[bool, bool], intent: bool | None
) -> None:
    deployment, schedule = uuid.uuid4(), uuid.uuid4()
    seen = Observation.of(_deployed(before[0], [before[1]], [schedule], deployment))
    assert operator_intent(seen, _deployed(now[0], [now[1]], [schedule], deployment)) is intent


def test_a_redeploy_or_a_fresh_prefect_is_no_operator_intent() -> None:
    deployment, schedule = uuid.uuid4(), uuid.uuid4()
    seen = Observation.of(_deployed(True, [False], [schedule], deployment))
    # `prefect deploy` un-pauses and recreates the schedules (new ids): not an operator's doing.
    assert operator_intent(seen, _deployed(False, [True], [uuid.uuid4()], deployment)) is None
    assert operator_intent(seen, _deployed(False, [True], [schedule], uuid.uuid4())) is None


def test_observation_round_trips_through_json() -> None:
    seen = Observation.of(_deployed(True, [False, True], [uuid.uuid4(), uuid.uuid4()], uuid.uuid4()))
    assert Observation.from_json(seen.to_json()) == seen
    assert Observation.from_json({"something": "else"}) is None


def _job(cron: str) -> Job:
    return Job("J", "flows/x.py:x", cron, "Europe/Prague", {}, "each_missed_slot", 14, 60)


def test_latest_slots_are_the_cron_times_after_the_last_run_up_to_now() -> None:
    after = datetime(2026, 11, 20, 0, 20, tzinfo=PRAGUE)  # the last run that started
    until = datetime(2026, 11, 24, 9, 0, tzinfo=PRAGUE)
    slots = asyncio.run(latest_slots(_job("20 0 * * *"), after, until, 14))
    assert [s.astimezone(PRAGUE) for s in slots] == [
        datetime(2026, 11, d, 0, 20, tzinfo=PRAGUE) for d in (21, 22, 23, 24)
    ]
    assert asyncio.run(latest_slots(_job("20 0 * * *"), after, until, 2)) == slots[-2:]


def test_latest_slot_of_a_frequent_job_after_a_long_outage() -> None:
    until = datetime(2026, 11, 24, 9, 7, 30, tzinfo=UTC)
    slots = asyncio.run(latest_slots(_job("*/5 * * * *"), until - timedelta(days=5), until, 1))
    assert slots == [datetime(2026, 11, 24, 9, 5, tzinfo=UTC)]


def test_latest_weekday_slot_over_a_weekend() -> None:
    until = datetime(2026, 11, 30, 6, 0, tzinfo=PRAGUE)  # Monday before 07:00
    slots = asyncio.run(latest_slots(_job("0 7 * * 1-5"), until - timedelta(days=10), until, 1))
    assert [s.astimezone(PRAGUE) for s in slots] == [datetime(2026, 11, 27, 7, 0, tzinfo=PRAGUE)]  # Friday


@pytest.mark.parametrize(
    ("job_id", "after", "expected"),
    [
        # Friday after the morning run: Monday 07:00 in Prague (CET, UTC+1).
        ("Print_Picking_morning", datetime(2026, 11, 27, 7, 0, tzinfo=UTC), datetime(2026, 11, 30, 6, 0)),
        # 00:30 CEST on the day DST ends: 00:10 CET (UTC+1) the next day, 25 hours on.
        (
            "Import_Shoptet_yesterday_EUR",
            datetime(2026, 10, 24, 22, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 23, 10),
        ),
        ("Finish_Transport", datetime(2026, 11, 27, 10, 1, 30, tzinfo=UTC), datetime(2026, 11, 27, 10, 5)),
    ],
)
def test_next_slot_is_computed_from_the_cron_in_prague(
    job_id: str, after: datetime, expected: datetime
) -> None:
    """What `next_run_at` shows for an enabled job while Prefect has no scheduled run yet."""
    assert asyncio.run(next_slot(load_catalog().get(job_id), after)) == expected.replace(tzinfo=UTC)
