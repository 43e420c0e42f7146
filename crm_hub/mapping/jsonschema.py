"""The JSON Schema of mapping files, for editors (``# yaml-language-server: $schema=...``).

Built from the pydantic models, then adjusted to the YAML's short forms: a field may be a bare
path string, and a transform is a name or ``{name: {options}}`` from the closed registry.
"""

from __future__ import annotations

from typing import Any

from crm_hub.mapping.fields import FIELDS, LINE_FIELDS
from crm_hub.mapping.spec import MappingSpec
from crm_hub.mapping.transforms import TRANSFORMS

__all__ = ["mapping_json_schema"]


def _transform_schema() -> dict[str, Any]:
    bare = sorted(
        name
        for name, t in TRANSFORMS.items()
        if t.args is None or not any(f.is_required() for f in t.args.model_fields.values())
    )
    with_options = [
        {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {name: t.args.model_json_schema()},
            "required": [name],
            "description": t.doc.strip(),
        }
        for name, t in sorted(TRANSFORMS.items())
        if t.args is not None
    ]
    return {"anyOf": [{"enum": bare}, *with_options]}


def mapping_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``mappings/<source>.yaml``, version 1."""
    schema = MappingSpec.model_json_schema()
    defs = schema["$defs"]
    defs.pop("TransformCall", None)
    defs["Transform"] = _transform_schema()
    defs["FieldSpec"]["properties"]["transforms"]["items"] = {"$ref": "#/$defs/Transform"}
    field_or_path = {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/FieldSpec"}]}
    stream = defs["StreamSpec"]["properties"]
    stream["id"] = {**field_or_path, "description": stream["id"].get("description", "")}
    names = sorted({name for fields in FIELDS.values() for name in fields})
    stream["fields"]["additionalProperties"] = field_or_path
    stream["fields"]["propertyNames"] = {
        "anyOf": [{"enum": names}, {"pattern": r"^(attributes|consent)\.[A-Za-z0-9_]+$"}]
    }
    lines = defs["LinesSpec"]["properties"]["fields"]
    lines["additionalProperties"] = field_or_path
    lines["propertyNames"] = {
        "anyOf": [{"enum": sorted(LINE_FIELDS)}, {"pattern": r"^attributes\.[A-Za-z0-9_]+$"}]
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "crm-hub mapping file, version 1"
    return schema
