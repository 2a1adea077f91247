"""HTTP routers, one per resource; each is an ``APIRouter`` included by ``create_app``."""

from lumenrec.serving import dashboard
from lumenrec.serving.routers import admin, controls, feedback, health, items, recommend, users

__all__ = ["ROUTERS"]

ROUTERS = (
    recommend.router,
    feedback.router,
    items.router,
    users.router,
    controls.router,
    admin.router,
    health.router,
    dashboard.router,
)
