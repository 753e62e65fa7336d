"""Schedules: what an operator may send, and how a pass tells an operator's cron edit in Prefect
from a redeploy (pure rules, no I/O)."""

from __future__ import annotations

import uuid

import pytest

from backoffice.jobs.catalog import CatalogError, load_catalog, parse_catalog
from backoffice.jobs.prefect_api import Deployed
from backoffice.jobs.schedule import InvalidSchedule, Schedule, parse_schedule
from backoffice.jobs.sync import Observation, schedule_intent

NOON = Schedule("0 12 * * 1-5", "Europe/Prague")
HALF_PAST = Schedule("30 12 * * 1-5", "Europe/Prague")


def test_a_valid_schedule_is_kept_with_single_spaces() -> None:
    assert parse_schedule(" 30  12 * *   1-5 ", "Europe/Prague") == HALF_PAST


@pytest.mark.parametrize(
    ("cron", "zone", "says"),
    [
        ("61 * * * *", "UTC", "the minute field '61'"),
        ("0 12 * 13 *", "UTC", "the month field '13'"),
        ("0 25 * * *", "UTC", "the hour field '25'"),
        ("0 12 * * 1-9", "UTC", "the day of week field '1-9'"),
        ("* * *", "UTC", "has 3 field(s); write five"),
        ("0 0 * * * *", "UTC", "has 6 field(s)"),
        ("", "UTC", "has 0 field(s)"),
        ("@daily", "UTC", "has 1 field(s)"),
        ("H * * * *", "UTC", "the minute field 'H'"),
        ("0 0 31 2 *", "UTC", "never fires"),
        ("0 12 * * *", "Mars/Olympus_Mons", "timezone 'Mars/Olympus_Mons' is unknown"),
        ("0 12 * * *", "../../etc/passwd", "is unknown"),
        ("0 12 * * *", "", "is unknown"),
        ("1," * 80 + "2 * * * *", "UTC", "longer than 128"),
    ],
)
def test_a_bad_cron_or_zone_is_refused_with_what_is_wrong(cron: str, zone: str, says: str) -> None:
    with pytest.raises(InvalidSchedule) as raised:
        parse_schedule(cron, zone)
    assert raised.value.code == "invalid_schedule" and raised.value.status_code == 422
    assert says in raised.value.message


def _deployed(crons: list[tuple[uuid.UUID, Schedule | None]], deployment: uuid.UUID) -> Deployed:
    return Deployed(
        deployment,
        uuid.uuid4(),
        False,
        tuple((sid, True) for sid, _ in crons),
        frozenset(),
        tuple(crons),
    )


def test_a_cron_edited_under_the_same_schedule_id_is_an_operators() -> None:
    deployment, sid = uuid.uuid4(), uuid.uuid4()
    seen = Observation.of(_deployed([(sid, NOON)], deployment))
    assert schedule_intent(seen, _deployed([(sid, HALF_PAST)], deployment), NOON) == HALF_PAST
    assert schedule_intent(seen, _deployed([(sid, NOON)], deployment), NOON) is None  # unchanged


def test_a_redeploy_or_a_fresh_prefect_is_no_schedule_edit() -> None:
    deployment, sid = uuid.uuid4(), uuid.uuid4()
    seen = Observation.of(_deployed([(sid, HALF_PAST)], deployment))  # an override in force
    # `prefect deploy` recreates the schedule (new id) with prefect.yaml's cron: not an operator.
    assert schedule_intent(seen, _deployed([(uuid.uuid4(), NOON)], deployment), NOON) is None
    assert schedule_intent(seen, _deployed([(sid, NOON)], uuid.uuid4()), NOON) is None
    # `prefect deployment schedule create --replace` puts a cron of its own under a new id.
    other = Schedule("0 14 * * *", "UTC")
    assert schedule_intent(seen, _deployed([(uuid.uuid4(), other)], deployment), NOON) == other
    # An interval schedule is no cron to adopt; an observation from before crons were kept neither.
    assert schedule_intent(seen, _deployed([(sid, None)], deployment), NOON) is None
    old = Observation(deployment, False, ((sid, True),))
    assert schedule_intent(old, _deployed([(sid, HALF_PAST)], deployment), NOON) is None


def test_an_observation_keeps_its_crons_through_json() -> None:
    deployment, sid, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    seen = Observation.of(_deployed([(sid, NOON), (other, None)], deployment))
    assert Observation.from_json(seen.to_json()) == seen
    value = seen.to_json()
    del value["crons"]  # written before this version: read, with the crons unknown
    assert Observation.from_json(value) == Observation(deployment, False, seen.schedules)
    assert Observation.from_json({**seen.to_json(), "crons": [[str(sid), {"cron": "x"}]]}) is None


def test_enabled_by_default_is_read_from_the_backoffice_block() -> None:
    text = (
        "deployments:\n"
        "  - {name: A, entrypoint: f.py:f, schedules: [{cron: '0 1 * * *'}],"
        " backoffice: {misfire: latest_only, enabled_by_default: false}}\n"
        "  - {name: B, entrypoint: f.py:f, schedules: [{cron: '0 2 * * *'}],"
        " backoffice: {misfire: latest_only}}\n"
    )
    catalog = parse_catalog(text)
    assert catalog.enabled_defaults == {"A": False, "B": True}
    assert all(job.enabled_by_default for job in load_catalog().jobs)  # nothing starts paused today
    with pytest.raises(CatalogError, match="enabled_by_default must be true or false"):
        parse_catalog(text.replace("enabled_by_default: false", "enabled_by_default: 'no'"))


def test_the_catalog_under_overrides_changes_only_their_jobs() -> None:
    catalog = load_catalog()
    under = catalog.on({"Print_Picking_noon": HALF_PAST})
    assert under.get("Print_Picking_noon").schedule == HALF_PAST
    assert under.get("Print_Picking_noon").misfire == catalog.get("Print_Picking_noon").misfire
    assert under.get("Controlling") == catalog.get("Controlling")
