"""The JSON Schemas of the document kinds, loaded once per process."""

from __future__ import annotations

import hashlib
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
    """The SHA-256 of every schema file's bytes: part of the validation cache's fingerprint."""
    digest = hashlib.sha256()
    for file_name in sorted(SCHEMA_FILES.values()):
        digest.update(file_name.encode() + b"\0" + (schema_dir() / file_name).read_bytes())
    return digest.hexdigest()


def kind_named(name: str) -> str:
    """``workflow`` -> ``Workflow``: the CLI spells kinds in lower case."""
    return {k.lower(): k for k in SCHEMA_FILES}[name.lower()]


def write_all(folder: Path) -> list[Path]:
    """Copy the schemas into a folder (editors resolve them by path)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, file_name in SCHEMA_FILES.items():
        target = folder / file_name
        target.write_text(json.dumps(schema(kind), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written
