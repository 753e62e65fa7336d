"""Transport boxes (operator role): register boxes, follow them, move them by hand."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from backoffice.warehouse.box_store import Box, TransportBoxStore
from task_queue_api.deps import ContextDep, OperatorDep
from task_queue_api.schemas.base import no_nul_in_url
from task_queue_api.schemas.transport_boxes import (
    BOX_CODE_PATTERN,
    BoxState,
    TransportBoxCreate,
    TransportBoxList,
    TransportBoxPublic,
    TransportBoxStateUpdate,
)

router = APIRouter(
    prefix="/api/transport-boxes", tags=["transport-boxes"], dependencies=[Depends(no_nul_in_url)]
)

BoxCodePath = Annotated[str, Path(max_length=64, pattern=BOX_CODE_PATTERN, description="The box's code")]


def get_store(ctx: ContextDep) -> TransportBoxStore:
    """The app's box store."""
    return ctx.boxes


StoreDep = Annotated[TransportBoxStore, Depends(get_store)]


def _public(box: Box) -> TransportBoxPublic:
    return TransportBoxPublic.model_validate(asdict(box))


@router.post("", status_code=201, response_model=TransportBoxPublic, operation_id="create_box")
def create_box(
    body: TransportBoxCreate, store: StoreDep, operator: OperatorDep, response: Response
) -> TransportBoxPublic:
    """Register a box with its product lines. A box created (or later moved) `Received` is stocked
    into Shoptet by the Finish_Transport job within minutes. 409 `already_exists` for a taken code."""
    items = [(item.product_code, item.amount) for item in body.items]
    box = store.create(body.code, body.state, items, operator.name)
    response.headers["Location"] = f"{router.prefix}/{box.code}"
    return _public(box)


@router.get("", response_model=TransportBoxList, operation_id="list_boxes")
def list_boxes(
    store: StoreDep,
    _: OperatorDep,
    state: Annotated[BoxState | None, Query(description="Only boxes in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TransportBoxList:
    """Boxes, optionally in one state (e.g. `Error` for those needing a person), oldest change first."""
    return TransportBoxList(items=[_public(b) for b in store.list(state, limit)])


@router.get("/{code}", response_model=TransportBoxPublic, operation_id="get_box")
def get_box(code: BoxCodePath, store: StoreDep, _: OperatorDep) -> TransportBoxPublic:
    """One box with each item's movement state (`pending`, `sent`, `stocked`, `unknown`)."""
    return _public(store.get(code))


@router.put("/{code}/state", response_model=TransportBoxPublic, operation_id="change_box_state")
def change_state(
    code: BoxCodePath, body: TransportBoxStateUpdate, store: StoreDep, operator: OperatorDep
) -> TransportBoxPublic:
    """Move a box by hand: e.g. to `Received` when it arrives, or out of `Error` once checked.

    Leaving `Error` for `Received` when some movement's outcome is unknown needs `unknown_items`
    (`stocked` or `not_stocked`); without it the answer is 409 `unknown_movements`. A transition
    the box does not allow is 409 `invalid_transition`; a stale `version` is 409 `version_conflict`.
    """
    box = store.change_state(
        code,
        body.state,
        operator.name,
        expected_version=body.version,
        unknown_items=body.unknown_items,
    )
    return _public(box)
