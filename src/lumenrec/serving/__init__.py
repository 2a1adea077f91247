"""The HTTP service (``lumenrec[serve]``): app factory, SQLite event store, model registry, auth.

Import :func:`create_app` and :class:`ServiceSettings` from here; FastAPI is only imported
when this package is.
"""

from lumenrec.serving.app import create_app
from lumenrec.serving.registry import ModelRegistry
from lumenrec.serving.settings import ServiceSettings
from lumenrec.serving.store import EventStore

__all__ = ["EventStore", "ModelRegistry", "ServiceSettings", "create_app"]
