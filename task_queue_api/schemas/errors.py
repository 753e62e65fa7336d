"""The one error body, and the OpenAPI description of the errors a route can answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorBody(BaseModel):
    """Every error: a stable code and a sentence that says what to do."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str


def error_responses(**codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error statuses, e.g. `error_responses(r404="No such task")`."""
    return {int(k[1:]): {"model": ErrorBody, "description": v} for k, v in codes.items()}
