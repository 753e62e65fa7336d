"""What every request must satisfy, checked at the edge so SQLite and PostgreSQL answer alike.

One rule for text: no string a client sends — body value, body key name, query or path
parameter — may hold the NUL character (U+0000). PostgreSQL `text` refuses it and `jsonb`
cannot hold the `\\u0000` escape, so storing it "faithfully" would mean a second encoding of
task data that every reader must undo; instead it is a 422 everywhere, with the place named.
One rule for numbers: `NaN` and `Infinity` are not JSON (Python's parser accepts them);
PostgreSQL refused them and SQLite turned them into null, so they are a 422 too.
JSON may nest at most MAX_DEPTH levels, so that what is stored can be read back.
Instants must be aware and fit the UTC calendar (years 1-9999) they are stored in.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Request
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from backoffice.errors import ValidationFailed

NUL = "\x00"
NUL_ADVICE = "remove it, or encode binary content (e.g. as base64) before sending it"
# Stored fine, but deeper JSON cannot be written back out (pydantic stops at ~250 levels).
MAX_DEPTH = 100


def _problem(value: Any, path: str) -> str | None:
    where = path or "the body"
    if isinstance(value, str) and NUL in value:
        return f"{where} contains the NUL character (\\u0000); {NUL_ADVICE}"
    if isinstance(value, float) and not math.isfinite(value):
        spelled = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return f"{where} is {spelled}, which is not JSON; send a finite number, a string or null"
    if isinstance(value, dict) and any(isinstance(k, str) and NUL in k for k in value):
        return f"a key name in {where} contains the NUL character (\\u0000); {NUL_ADVICE}"
    return None


def unstorable(value: Any) -> str | None:
    """Why `value` (parsed JSON) cannot be stored, naming the first such place; None when it can."""
    # A loop, not recursion: deeply nested JSON must not exhaust the stack.
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        problem = _problem(item, path)
        if problem:
            return problem
        if isinstance(item, dict | list) and depth >= MAX_DEPTH:
            return f"{path or 'the body'} nests deeper than {MAX_DEPTH} levels; flatten it"
        if isinstance(item, dict):
            children = [(v, f"{path}.{k}" if path else str(k)) for k, v in item.items()]
        elif isinstance(item, list):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(item)]
        else:
            continue
        stack.extend((v, where, depth + 1) for v, where in reversed(children))
    return None


class RequestBody(BaseModel):
    """Base of every request body: unknown fields are refused, and so is anything unstorable."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # Before field validation: `data` and `result` are free-form JSON the fields do not check.
        problem = unstorable(data)
        if problem:
            # The problem as context, not as the template: key names may contain braces.
            raise PydanticCustomError("unstorable", "{problem}", {"problem": problem})
        return data


def no_nul_in_url(request: Request) -> None:
    """Router dependency: 422 when a path or query parameter (name or value) holds a NUL."""
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in params:
        if NUL in name or NUL in str(value):
            raise ValidationFailed(
                f"The parameter {name.replace(NUL, '')!r} contains the NUL character (%00); {NUL_ADVICE}."
            )


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "instant_out_of_range", "the instant falls outside the years 1-9999 in UTC"
        ) from None


# An aware instant, normalised to UTC (how it is stored); the edges of the calendar are a 422.
UTCInstant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
