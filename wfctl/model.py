"""The data model between loading and everything downstream.

``Document`` is a loaded wfctl document that still knows where it came from;
``ResolvedWorkflow`` is what plan, publish, the store and rendering consume:
templates expanded, defaults applied, components inlined, in canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from wfctl.loader import Path_, Pos, SourceMap

API_VERSION = "wfctl/v1"
WORKFLOW = "Workflow"
COMPONENT = "Component"
TEMPLATE = "WorkflowTemplate"
KINDS = (WORKFLOW, COMPONENT, TEMPLATE)

# Where a path (from the document root) stands: (file, (line, column)); ``key=True`` asks
# for the key that holds the node rather than the node's value.
Locator = Callable[..., tuple[str, Pos]]


@dataclass
class Document:
    """A wfctl document (one YAML document of one file) with its source map."""

    kind: str
    name: str
    file: str
    index: int
    data: dict[str, Any]
    sourcemap: SourceMap
    schema_ok: bool = True

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.data.get("spec")
        return spec if isinstance(spec, dict) else {}

    def pos(self, path: Path_, key: bool = False) -> Pos:
        return self.sourcemap.key(path) if key else self.sourcemap.value(path)

    def locate(self, path: Path_, key: bool = False) -> tuple[str, Pos]:
        """Locate a path given from the document root."""
        return self.file, self.pos(path, key)

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.name!r} ({self.file})"


@dataclass
class WorkflowView:
    """A whole workflow document to check, wherever its parts came from (file or template)."""

    name: str
    data: dict[str, Any]
    locate: Locator
    raw: Callable[[Path_], str | None] = lambda path: None  # unquoted scalar text, for YAML 1.1 hints

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.data.get("spec")
        return spec if isinstance(spec, dict) else {}


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: equal content, equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class ResolvedWorkflow:
    """A workflow ready to deploy: the unit that is hashed, stored, diffed and rendered."""

    name: str
    source_path: str
    definition: dict[str, Any] = field(hash=False, compare=False)

    @cached_property
    def canonical(self) -> bytes:
        return canonical_json(self.definition)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical).hexdigest()
