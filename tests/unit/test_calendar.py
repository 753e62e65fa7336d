"""The shop calendar (business day, half-open Prague days) and the flow names the catalog derives."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from backoffice.accounting.controlling import job_flow_names
from backoffice.calendar import PRAGUE, day_bounds, local_date, previous_business_day, to_prague
from backoffice.jobs.catalog import load_catalog


def test_the_business_day_is_the_prague_day_before_the_reference() -> None:
    # 23:30 UTC on 6 May is already 01:30 on 7 May in Prague: the business day is 6 May.
    assert previous_business_day(datetime(2024, 5, 6, 23, 30, tzinfo=UTC)) == date(2024, 5, 6)
    assert previous_business_day(datetime(2024, 5, 6, 21, 30, tzinfo=UTC)) == date(2024, 5, 5)
    # Weekends count: a Monday run works on Sunday.
    assert previous_business_day(datetime(2024, 5, 6, 0, 30, tzinfo=PRAGUE)) == date(2024, 5, 5)


def test_local_date_and_to_prague() -> None:
    instant = datetime(2024, 1, 6, 23, 15, tzinfo=UTC)
    assert local_date(instant) == date(2024, 1, 7)
    assert to_prague(instant) == instant
    assert to_prague(instant).utcoffset() == timedelta(hours=1)


def test_day_bounds_are_half_open_and_utc() -> None:
    start, end = day_bounds(date(2024, 5, 6))
    assert (start, end) == (datetime(2024, 5, 5, 22, tzinfo=UTC), datetime(2024, 5, 6, 22, tzinfo=UTC))
    assert start.utcoffset() == end.utcoffset() == timedelta(0)
    assert day_bounds(date(2024, 5, 7))[0] == end  # consecutive days tile: no gap, no overlap
    assert local_date(end - timedelta(microseconds=1)) == date(2024, 5, 6)
    assert local_date(end) == date(2024, 5, 7)


def test_day_bounds_on_dst_days() -> None:
    start, end = day_bounds(date(2024, 3, 31))
    assert end - start == timedelta(hours=23)
    start, end = day_bounds(date(2024, 10, 27))
    assert end - start == timedelta(hours=25)


def test_flow_names_come_from_the_flows_decorators() -> None:
    catalog = load_catalog()
    assert catalog.get("Import_Shoptet_yesterday_CZK").flow_name == "import-shoptet-invoices"
    assert job_flow_names() == [
        "import-shoptet-invoices",
        "import-comgate-payments",
        "controlling-report",
        "print-picking-lists",
        "finish-transport",
        "queue-retention",
    ]
