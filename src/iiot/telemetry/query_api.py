"""Routes (filled in by this domain's issue)."""

from fastapi import APIRouter

router = APIRouter()
