"""HTTP routers, one per resource; each is an ``APIRouter`` included by ``create_app``."""

from lumenrec.serving.routers import admin, feedback, health, items, recommend, users

__all__ = ["ROUTERS"]

ROUTERS = (
    recommend.router,
    feedback.router,
    items.router,
    users.router,
    admin.router,
    health.router,
)
