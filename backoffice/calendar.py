"""The shop's calendar: the Europe/Prague zone, the business day, and the instants a day spans.

The e-shop, its accountants and Shoptet all count days in Prague time, so every date this code
reasons about (an invoice's day, a payout's day, a picking list's folder) is a Prague date. This
module is the one place that builds the zone; everything else imports `PRAGUE` or a helper.

Business day: the Prague calendar day a daily job works on, which is the day *before* its
reference instant (a run's scheduled start) in Prague. A run scheduled for 00:30 on 7 May works
on 6 May. Every calendar day is a business day, weekends and holidays included: the shop sells
on all of them, and each day's invoices and payouts are imported and reported.

Day bounds are half-open, ``start <= t < end``: consecutive days then tile time with no gap and
no overlap, whatever the precision of a timestamp (23:59:59.5 still belongs to its day), the
length of a day is simply ``end - start`` (23 or 25 hours on the DST change days), and a database
filter is ``t >= start AND t < end``. An API that wants an inclusive last second (Shoptet's
`creationTimeTo`) converts at its own call site.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PRAGUE = ZoneInfo("Europe/Prague")


def to_prague(instant: datetime) -> datetime:
    """`instant` (aware) as Prague wall-clock time."""
    return instant.astimezone(PRAGUE)


def local_date(instant: datetime) -> date:
    """The Prague calendar date of `instant` (aware)."""
    return instant.astimezone(PRAGUE).date()


def previous_business_day(reference: datetime) -> date:
    """The business day of a run at `reference`: the day before `reference`, as a date in Prague."""
    return local_date(reference) - timedelta(days=1)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """`day` in Prague as the half-open `[start, end)`, UTC-aware (23 or 25 hours on DST days)."""
    start = datetime.combine(day, time(0), PRAGUE)
    end = datetime.combine(day + timedelta(days=1), time(0), PRAGUE)
    return start.astimezone(UTC), end.astimezone(UTC)
