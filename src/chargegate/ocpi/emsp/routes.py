"""Every route of our eMSP role, for app.py to include at once."""

from __future__ import annotations

from fastapi import APIRouter

from . import cdrs, credentials, results, sessions, versions

router = APIRouter()
for module in (versions, credentials, results, sessions, cdrs):
    router.include_router(module.router)
