"""The JSON Schemas of the document kinds, loaded once per process."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

from wfctl.model import COMPONENT, TEMPLATE, WORKFLOW

SCHEMA_FILES = {
    WORKFLOW: "workflow.schema.json",
    COMPONENT: "component.schema.json",
    TEMPLATE: "workflowtemplate.schema.json",
}



def schema_dir() -> Path:
    """Installed wheels carry the schemas as ``wfctl/_schemas``; a source checkout
    (and an editable install) reads the repo's ``schemas/`` folder itself."""
    packaged = Path(__file__).with_name("_schemas")
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "schemas"


@cache
def schema(kind: str) -> dict[str, Any]:
    text = (schema_dir() / SCHEMA_FILES[kind]).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def validator(kind: str) -> Any:
    """A compiled jsonschema-rs validator: ~100x faster than pure-Python jsonschema."""
    return jsonschema_rs.validator_for(schema(kind))


def fingerprint() -> str:
    """Changes whenever a schema changes; part of every cache key."""
    return "|".join(json.dumps(schema(kind), sort_keys=True) for kind in SCHEMA_FILES)
