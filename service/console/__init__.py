"""The dispatcher's console (docs/console.md): JSON views for dispatchers and the pages that show them.

``service.app`` includes ``router`` (one line in ROUTERS)."""

from fastapi import APIRouter

from service.console import api, pages

router = APIRouter()
router.include_router(api.router)
router.include_router(pages.router)

__all__ = ["router"]
