"""Routes of /api/jobs (being built)."""

from fastapi import APIRouter

router = APIRouter()
