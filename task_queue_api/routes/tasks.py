"""Routes of /api/tasks (being built)."""

from fastapi import APIRouter

router = APIRouter()
