"""Custom components of these manifests: a record extractor for plain key paths, and the
pagination of QuickBooks change data capture.

airbyte-cdk's ``DpathExtractor`` finds ``field_path`` with ``dpath.get``, which visits every node
of the decoded page to match one path: on a page of 1,000 orders that is some 60,000 nodes, and it
was a third of the CPU of a full read (3,200 records/s without this class, 4,500 with it, for
Square on the 100k-people sandbox). Same semantics: the list at the path is yielded record by
record, a mapping as one record, a missing key as nothing; a number indexes a list; ``*`` paths
fall back to dpath.

``ParseOnceErrorHandler`` and ``ParseOnceJsonDecoder``: airbyte-cdk decodes each page up to
three times: the error handler's response filters (``predicate``, ``error_message``) call
``requests``' ``Response.json()`` (simplejson, the slowest of the three), then the record selector
and the paginator decode it again. The handler parses a 2xx body once with orjson and hands that
result to the filters, the decoder and the paginator: the same values, a third of the work (the
JSON was half of a full read's CPU). A body that is not JSON is left to ``Response.json()``, so the
filters see exactly what they saw before (the manifests retry such a page).

``PartitionFields``: copies values of the stream slice (its partition and the parent's
``extra_fields``) onto each record, as an ``AddFields`` of ``{{ stream_partition.x }}`` values
would, without rendering a Jinja template per field per record (a tenth of a Mailchimp read).

``CdcPagination``: QuickBooks' ``/cdc`` answers at most 1,000 objects and has no pages; a full
answer is continued from the newest ``LastUpdatedTime`` in it (the objects of that second are
read again, which an upsert on Id absorbs). A full answer inside one second cannot be paged: it
goes on from the next second with a warning (deletions among the objects not returned are missed).

The same file sits beside each crm-hub source manifest (a manifest-only connector carries its own
``components.py``); keep the copies identical.
"""

import gzip
import logging
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import InitVar, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import requests
from airbyte_cdk.sources.declarative.decoders.json_decoder import JsonDecoder
from airbyte_cdk.sources.declarative.extractors.dpath_extractor import DpathExtractor
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.streams.http.error_handlers import ErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution

_LOGGER = logging.getLogger("airbyte")
_PARSED = "_crm_hub_parsed_body"
_NOT_JSON = object()


@dataclass
class KeyPathExtractor(DpathExtractor):
    """``DpathExtractor`` without dpath for literal key paths, e.g. ``[QueryResponse, Invoice]``."""

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        """Yield the records at ``field_path`` of each decoded body."""
        path = [part.eval(self.config) for part in self._field_path]
        if "*" in path:
            yield from super().extract_records(response)
            return
        for body in self.decoder.decode(response):
            node: Any = body
            for key in path:
                node = _child(node, key)
            items = node if isinstance(node, list) else [node] if node else []
            for item in items:
                if self.record_expander is None:
                    yield item
                else:
                    yield from self.record_expander.expand_record(item)


def _child(node: Any, key: Any) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    index = key if isinstance(key, int) else int(key) if str(key).isdigit() else None
    if isinstance(node, list) and index is not None and index < len(node):
        return node[index]
    return None


@dataclass
class CdcPagination(PaginationStrategy):
    """Continues a full ``/cdc`` answer from the newest ``LastUpdatedTime`` in it."""

    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]
    entity: str = ""
    max_objects: int = 1000

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._entity = InterpolatedString.create(self.entity, parameters=parameters)

    @property
    def initial_token(self) -> Any | None:
        """The first request starts at the slice's start (no token)."""
        return None

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Any | None,
        last_page_token_value: Any | None,
        page_size_override: int | None = None,
    ) -> Any | None:
        """The newest change time of a full answer, as UTC; None when the answer was not full."""
        entity = self._entity.eval(self.config)
        body = response.json()
        blocks = _child(_child(_child(body, "CDCResponse"), "0"), "QueryResponse") or []
        objects = [o for block in blocks for o in (_child(block, entity) or [])]
        if len(objects) < self.max_objects:
            return None
        newest = max(_utc(o["MetaData"]["LastUpdatedTime"]) for o in objects)
        text = newest.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        if text == last_page_token_value:
            # A whole answer of one second: CDC cannot page inside it. Go on from the next
            # second, saying so; a deletion among the objects not returned is missed.
            text = (newest + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            _LOGGER.warning(
                "QuickBooks changed %s or more %s objects in the second %s; change data "
                "capture cannot page inside one second, so deletions among the ones not "
                "returned are missed (re-read the stream in full to be sure)",
                self.max_objects,
                entity,
                newest.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        return text

    def get_page_size(self) -> int | None:
        """CDC has no page size parameter."""
        return None


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _parsed_body(response: requests.Response) -> Any:
    """The body parsed once (orjson), kept on the response; ``_NOT_JSON`` when it is not JSON."""
    body = response.__dict__.get(_PARSED)
    if body is None:
        content = response.content or b""
        try:
            if content[:2] == b"\x1f\x8b":  # a gzip body without Content-Encoding
                content = gzip.decompress(content)
            body = orjson.loads(content) if content else _NOT_JSON
        except (orjson.JSONDecodeError, OSError, EOFError):
            body = _NOT_JSON
        response.__dict__[_PARSED] = body
        if body is not _NOT_JSON:
            # requests' own json() (what the response filters call) answers the same object.
            response.__dict__["json"] = lambda **_kwargs: body
    return body


@dataclass
class ParseOnceErrorHandler(ErrorHandler):
    """The manifest's ``DefaultErrorHandler`` (``handler``), reading a body parsed only once."""

    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]
    handler: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.backoff_strategies = self.handler.backoff_strategies

    @property
    def max_retries(self) -> int | None:
        """As the wrapped handler."""
        return self.handler.max_retries

    @property
    def max_time(self) -> int | None:
        """As the wrapped handler."""
        return self.handler.max_time

    def interpret_response(
        self, response_or_exception: requests.Response | Exception | None = None
    ) -> ErrorResolution:
        """Parse a successful body once, then let the wrapped handler decide."""
        if isinstance(response_or_exception, requests.Response) and response_or_exception.ok:
            _parsed_body(response_or_exception)
        return self.handler.interpret_response(response_or_exception)


class ParseOnceJsonDecoder(JsonDecoder):
    """``JsonDecoder`` over the body ``ParseOnceErrorHandler`` parsed: a list yields its items,
    anything else (an empty or broken body too) one mapping, ``{}`` when there is none. (A
    ``JsonDecoder`` subclass: the CDK's paginators accept no other kind.)"""

    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        super().__init__(parameters or {})

    def decode(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        """The parsed body's mappings."""
        body = _parsed_body(response)
        if isinstance(body, list):
            yield from (body or [{}])
        elif isinstance(body, dict):
            yield body
        else:
            yield {}


@dataclass
class PartitionFields(RecordTransformation):
    """Sets ``record[field] = slice value`` for each ``field: name`` of ``fields``: the name is
    looked up in the slice's partition, then in its ``extra_fields`` (missing: null)."""

    fields: Mapping[str, str]

    def transform(
        self,
        record: dict[str, Any],
        config: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
        stream_slice: Any | None = None,
    ) -> None:
        """Copy the slice's values onto the record."""
        partition = getattr(stream_slice, "partition", None) or {}
        extra = getattr(stream_slice, "extra_fields", None) or {}
        for field, name in self.fields.items():
            record[field] = partition[name] if name in partition else extra.get(name)
