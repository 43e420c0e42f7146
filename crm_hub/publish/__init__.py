"""Stage publish: push what changed to the destinations of hub.yaml (re-exports only).

Importing the package registers the drivers: Singer targets (mailchimp, hubspot, webhook,
singer), file drops and SQL tables.
"""

from crm_hub.publish import files, singer_target, sql
from crm_hub.publish.driver import DRIVERS, register_driver
from crm_hub.publish.payload import erasure_hash
from crm_hub.publish.stage import PublishResult, publish, publish_destination

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
