"""Stage publish: push what changed to the destinations of hub.yaml (re-exports only).

The names below are imported on first use, and with them the drivers register: Singer targets
(mailchimp, hubspot, webhook, singer), file drops and SQL tables. Lazy because the recorder
(:mod:`crm_hub.publish.recorder`), started for every Singer push, lives in this package and
must not pay for importing the whole stage before its target can start.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_hub.publish import files, singer_target, sql
    from crm_hub.publish.driver import DRIVERS, register_driver
    from crm_hub.publish.payload import erasure_hash
    from crm_hub.publish.stage import PublishResult, publish, publish_destination

_LAZY = {
    "DRIVERS": "crm_hub.publish.driver",
    "register_driver": "crm_hub.publish.driver",
    "erasure_hash": "crm_hub.publish.payload",
    "PublishResult": "crm_hub.publish.stage",
    "publish": "crm_hub.publish.stage",
    "publish_destination": "crm_hub.publish.stage",
}
_DRIVER_MODULES = ("files", "singer_target", "sql")  # importing one registers its drivers


def __getattr__(name: str) -> Any:
    if name not in _LAZY and name not in _DRIVER_MODULES:
        raise AttributeError(f"module 'crm_hub.publish' has no attribute {name!r}")
    import importlib

    for module in _DRIVER_MODULES:  # any name of the stage needs every driver registered
        importlib.import_module(f"crm_hub.publish.{module}")
    value = globals().get(name)  # a driver module just imported is set as an attribute
    if value is None:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
    return value


__all__ = [
    "DRIVERS",
    "PublishResult",
    "erasure_hash",
    "files",
    "publish",
    "publish_destination",
    "register_driver",
    "singer_target",
    "sql",
]
