"""The segments stage: declarative segment definitions compiled to SQL, with membership history."""

from crm_hub.segments.compile import FIELDS, check_segments, compile_segments
from crm_hub.segments.preview import SegmentPreview, preview_segment
from crm_hub.segments.spec import LoadedSegments, load_segments
from crm_hub.segments.stage import (
    SegmentOutcome,
    SegmentsResult,
    evaluate_segments,
    load_definitions,
)

__all__ = [
    "FIELDS",
    "LoadedSegments",
    "SegmentOutcome",
    "SegmentPreview",
    "SegmentsResult",
    "check_segments",
    "compile_segments",
    "evaluate_segments",
    "load_definitions",
    "load_segments",
    "preview_segment",
]
