"""Bodies of /api/transport-boxes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from task_queue_api.schemas.base import RequestBody

BoxState = Literal["New", "Opened", "InTransit", "Received", "InSwap", "Stocked", "Closed", "Error"]
CreateState = Literal["New", "Opened", "InTransit", "Received", "InSwap"]
MovementState = Literal["pending", "sent", "stocked", "unknown"]
# Box codes travel in URL paths, so no slashes or spaces.
BOX_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
BoxCode = Annotated[str, Field(min_length=1, max_length=64, pattern=BOX_CODE_PATTERN)]
# Shoptet product codes: anything printable, no surrounding spaces, no control characters (which
# PostgreSQL text refuses).
ProductCode = Annotated[
    str,
    Field(
        min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
    ),
]


class TransportBoxItemCreate(RequestBody):
    """A product line: Shoptet product code and the number of pieces in the box."""

    product_code: ProductCode
    amount: int = Field(gt=0, le=1_000_000, strict=True)


class TransportBoxCreate(RequestBody):
    """A new box. Create it `Received` (with its items) to have Finish_Transport stock it."""

    code: BoxCode
    state: CreateState = "New"
    items: list[TransportBoxItemCreate] = Field(default_factory=list, max_length=1000)


class TransportBoxStateUpdate(RequestBody):
    """Move a box. From `Error` to `Received`, say what happened to movements of unknown outcome."""

    state: BoxState
    version: int | None = Field(
        default=None, description="The version you saw; the change is refused (409) if the box moved on."
    )
    unknown_items: Literal["stocked", "not_stocked"] | None = Field(
        default=None,
        description="For items whose stock movement has an unknown outcome: 'stocked' when Shoptet shows "
        "the stock was added, 'not_stocked' to have the job send it again.",
    )


class TransportBoxItemPublic(BaseModel):
    """A product line and how far its stock movement got."""

    product_code: str
    amount: int
    movement_state: MovementState
    sent_at: datetime | None
    stocked_at: datetime | None
    last_error: str | None


class TransportBoxPublic(BaseModel):
    """A transport box with its items."""

    code: str
    state: BoxState
    error_reason: str | None
    items: list[TransportBoxItemPublic]
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    version: int


class TransportBoxList(BaseModel):
    """Boxes, the longest unchanged first."""

    items: list[TransportBoxPublic]
