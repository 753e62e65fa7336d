"""Function keys (admin only)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Response

from task_queue_api.deps import AdminDep, ContextDep
from task_queue_api.schemas.base import no_nul_in_url
from task_queue_api.schemas.keys import KeyCreate, KeyCreated, KeyList, KeyPublic

router = APIRouter(prefix="/api/keys", tags=["keys"], dependencies=[Depends(no_nul_in_url)])


@router.post("", status_code=201, response_model=KeyCreated, operation_id="create_key")
def create_key(body: KeyCreate, ctx: ContextDep, admin: AdminDep) -> KeyCreated:
    """Create a key. The plaintext `key` is in this response only; it is stored hashed."""
    info, plaintext = ctx.keys.create(body.name, body.role, body.task_types, admin.name)
    return KeyCreated(**asdict(info), key=plaintext)


@router.get("", response_model=KeyList, operation_id="list_keys")
def list_keys(ctx: ContextDep, _: AdminDep) -> KeyList:
    """Every key, revoked ones included; never their secrets."""
    return KeyList(items=[KeyPublic(**asdict(k)) for k in ctx.keys.list()])


@router.delete("/{name}", status_code=204, response_class=Response, operation_id="revoke_key")
def revoke_key(name: str, ctx: ContextDep, _: AdminDep) -> Response:
    """Revoke a key; it is refused from the next request on."""
    ctx.keys.revoke(name)
    return Response(status_code=204)
