"""Routes of /api/transport-boxes (being built)."""

from fastapi import APIRouter

router = APIRouter()
