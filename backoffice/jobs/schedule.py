"""A job's schedule (cron + timezone): checking what an operator sends, and the slots it gives.

The cron is checked the way Prefect will read it (its CronSchedule, croniter underneath), plus
our own rule of five fields (no seconds column, no `@daily` macros: what prefect.yaml, the
dashboard's description and Hangfire's operators all speak). The zone must be an IANA name
zoneinfo and Prefect both know.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The croniter Prefect's CronSchedule validates with (vendored, untyped): the same rules as Prefect.
from prefect._vendor.croniter import CroniterBadDateError, croniter  # type: ignore[attr-defined]
from prefect.client.schemas.schedules import CronSchedule as ClientCronSchedule
from prefect.server.schemas.schedules import CronSchedule
from pydantic import ValidationError

from backoffice.errors import ValidationFailed

CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
MAX_CRON_LENGTH = 128  # the width of job_schedules.cron
MAX_TIMEZONE_LENGTH = 64
EXAMPLE = '"30 12 * * 1-5" (12:30, Monday through Friday)'


class InvalidSchedule(ValidationFailed):
    """The cron expression or the timezone of a schedule cannot be used (422 invalid_schedule)."""

    code = "invalid_schedule"


@dataclass(frozen=True)
class Schedule:
    """A cron expression in an IANA timezone."""

    cron: str
    timezone: str

    def prefect(self) -> CronSchedule:
        """As Prefect's (server-side) cron schedule, which computes the slots."""
        return CronSchedule(cron=self.cron, timezone=self.timezone)

    def client(self) -> ClientCronSchedule:
        """As the client-side schedule the Prefect client sends."""
        return ClientCronSchedule(cron=self.cron, timezone=self.timezone)

    async def slots(self, start: datetime, end: datetime) -> list[datetime]:
        """Every slot in [start, end], in UTC, oldest first."""
        dates = await self.prefect().get_dates(start=start, end=end)
        return [datetime.fromtimestamp(d.timestamp(), UTC) for d in dates]

    def to_json(self) -> dict[str, str]:
        """For audit details and observations."""
        return {"cron": self.cron, "timezone": self.timezone}

    @classmethod
    def from_json(cls, value: Any) -> Schedule:
        """Back from `to_json` (KeyError/TypeError when it is not one)."""
        return cls(str(value["cron"]), str(value["timezone"]))

    def __str__(self) -> str:
        return f"{self.cron} ({self.timezone})"


def parse_schedule(cron: str, timezone: str) -> Schedule:
    """`cron` in `timezone` as a Schedule; InvalidSchedule with a sentence saying what is wrong."""
    cron = " ".join(cron.split())  # one space between fields, as prefect.yaml writes them
    fields = cron.split(" ") if cron else []
    if len(cron) > MAX_CRON_LENGTH:
        raise InvalidSchedule(f"The cron expression is longer than {MAX_CRON_LENGTH} characters; shorten it.")
    if len(fields) != len(CRON_FIELDS):
        raise InvalidSchedule(
            f"The cron expression {cron!r} has {len(fields)} field(s); write five "
            f"({', '.join(CRON_FIELDS)}), e.g. {EXAMPLE}."
        )
    try:
        if len(timezone) > MAX_TIMEZONE_LENGTH:
            raise ValueError(timezone)
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            f"The timezone {timezone!r} is unknown; use an IANA zone name such as Europe/Prague or UTC."
        ) from None
    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        raise InvalidSchedule(
            f"The cron expression {cron!r} is not valid: {_wrong_field(fields, exc)}; each field takes "
            f"a number in its range, '*', a list (1,3), a range (1-5) or a step (*/5), e.g. {EXAMPLE}."
        ) from None
    try:
        croniter(cron, datetime.now(UTC)).get_next(datetime)  # type: ignore[no-untyped-call]
    except CroniterBadDateError:
        raise InvalidSchedule(
            f"The cron expression {cron!r} never fires (no such date, e.g. 31 February); check its "
            "day-of-month and month fields."
        ) from None
    return Schedule(cron, timezone)


def _wrong_field(fields: list[str], exc: ValidationError) -> str:
    """Which field Prefect's croniter refuses (tried alone, the others `*`), else Prefect's words."""
    for i, name in enumerate(CRON_FIELDS):
        alone = " ".join(field if j == i else "*" for j, field in enumerate(fields))
        try:
            CronSchedule(cron=alone)
        except ValidationError:
            return f"the {name} field {fields[i]!r} is out of range or malformed"
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
