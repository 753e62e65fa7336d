"""Shoptet's time format and the Prague day window of the invoice import."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from backoffice.accounting.shoptet_import import list_invoice_codes
from backoffice.calendar import PRAGUE
from backoffice.integrations.shoptet import format_time, parse_time


def test_summer_time_has_a_plus_two_offset_without_colon() -> None:
    assert format_time(datetime(2024, 5, 6, 10, 15, tzinfo=PRAGUE)) == "2024-05-06T10:15:00+0200"


def test_winter_time_has_a_plus_one_offset() -> None:
    assert format_time(datetime(2024, 1, 6, 8, 0, 5, tzinfo=PRAGUE)) == "2024-01-06T08:00:05+0100"


def test_utc_times_are_written_with_a_zero_offset() -> None:
    assert format_time(datetime(2024, 5, 6, 8, 15, tzinfo=UTC)) == "2024-05-06T08:15:00+0000"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_time(datetime(2024, 5, 6, 10, 15))


@pytest.mark.parametrize("text", ["2024-05-06T10:15:00+0200", "2024-05-06T10:15:00+02:00"])
def test_parse_time_reads_offsets_with_and_without_colon(text: str) -> None:
    assert parse_time(text) == datetime(2024, 5, 6, 8, 15, tzinfo=UTC)


def test_parse_and_format_round_trip() -> None:
    assert format_time(parse_time("2024-11-30T23:59:59+0100")) == "2024-11-30T23:59:59+0100"


class _ListRecorder:
    """Stands in for ShoptetClient.list_invoices: records the window the import asks for."""

    def __init__(self) -> None:
        self.windows: list[tuple[datetime, datetime]] = []

    def list_invoices(self, creation_from: datetime, creation_to: datetime) -> list[dict[str, Any]]:
        self.windows.append((creation_from, creation_to))
        return [{"code": code, "price": {"currencyCode": cur}} for code, cur in (("1", "CZK"), ("2", "EUR"))]


def _invoice_window(day: date) -> tuple[datetime, datetime]:
    client = _ListRecorder()
    assert list_invoice_codes(client, day, "CZK") == ["1"]  # type: ignore[arg-type]
    [window] = client.windows
    return window


def test_invoice_window_covers_the_prague_day() -> None:
    start, end = _invoice_window(date(2024, 5, 6))
    assert format_time(start) == "2024-05-06T00:00:00+0200"
    assert format_time(end) == "2024-05-06T23:59:59+0200"


def test_invoice_window_on_the_spring_dst_change_is_23_hours() -> None:
    start, end = _invoice_window(date(2024, 3, 31))
    assert format_time(start) == "2024-03-31T00:00:00+0100"
    assert format_time(end) == "2024-03-31T23:59:59+0200"
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23) - timedelta(seconds=1)


def test_a_time_without_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="without an offset"):
        parse_time("2024-05-06T10:15:00")
