"""The store: schema, engine, migrations and the repositories the stages use."""

from crm_hub.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
