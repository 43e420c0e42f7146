"""The read API (FastAPI): ``create_app(store)``; served by ``crm-hub serve``."""

from crm_hub.api.app import create_app

__all__ = ["create_app"]
