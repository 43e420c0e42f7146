"""Shared parts of crm-hub's Singer targets: HTTP retries, rejections and the STATE contract.

Public names: ``DestinationHttp``, ``RetryPolicy``, ``DestinationAuthError``,
``DestinationUnavailable`` (``http``); ``BatchReporter``, ``BatchOutcome``, ``Rejection``,
``record_key``, ``jsonable``, ``STATE_KEY`` (``report``); ``TargetParts``, ``parts_of``
(``parts``); ``common_properties``, ``rejections_property`` (``settings``).
"""

from __future__ import annotations

from connectors.target_common.http import (
    DestinationAuthError,
    DestinationHttp,
    DestinationUnavailable,
    RetryPolicy,
    describe_error,
    http_reason,
)
from connectors.target_common.parts import TargetParts, batch_size, parts_of
from connectors.target_common.report import (
    STATE_KEY,
    BatchOutcome,
    BatchReporter,
    Rejection,
    jsonable,
    record_key,
)
from connectors.target_common.settings import common_properties, rejections_property

__all__ = [
    "STATE_KEY",
    "BatchOutcome",
    "BatchReporter",
    "DestinationAuthError",
    "DestinationHttp",
    "DestinationUnavailable",
    "Rejection",
    "RetryPolicy",
    "TargetParts",
    "batch_size",
    "common_properties",
    "rejections_property",
    "describe_error",
    "http_reason",
    "jsonable",
    "parts_of",
    "record_key",
]
