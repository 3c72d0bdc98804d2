"""The data model between loading and everything downstream.

``Document`` is a loaded wfctl document that still knows where it came from;
``ResolvedWorkflow`` is what plan, publish, the store and rendering consume:
templates expanded, defaults applied, components inlined, in canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, partial
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


Reference = tuple[str, str]  # (kind, name) of a component or template a document uses


class Document:
    """A wfctl document (one YAML document of one file) with its source map.

    A document from the validation cache is *deferred*: it knows its kind, name and
    references, and loads its data and source map from its file only when resolution
    or a diagnostic needs them. ``digest`` is the SHA-256 of the file's bytes ("" when
    the document did not come from a file), which makes ``key`` a content key.
    """

    def __init__(self, kind: str, name: str, file: str, index: int, data: dict[str, Any] | None,
                 sourcemap: SourceMap | None, *, schema_ok: bool = True, digest: str = "",
                 load: Callable[[], tuple[dict[str, Any], SourceMap]] | None = None,
                 references: list[Reference] | None = None) -> None:
        self.kind, self.name, self.file, self.index = kind, name, file, index
        self.schema_ok, self.digest = schema_ok, digest
        self._data, self._sourcemap, self._load = data, sourcemap, load
        if references is not None:  # known without the data (a deferred document)
            self.__dict__["references"] = references

    def __repr__(self) -> str:
        return f"Document({self.ref})"

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._fill()
        assert self._data is not None
        return self._data

    @property
    def sourcemap(self) -> SourceMap:
        if self._sourcemap is None:
            self._fill()
        assert self._sourcemap is not None
        return self._sourcemap

    def _fill(self) -> None:
        if self._load is None:
            raise RuntimeError(f"{self.ref} has neither data nor a way to load it")
        self._data, self._sourcemap = self._load()

    @property
    def key(self) -> str:
        """Same key, same bytes in the same place: what the validation cache trusts."""
        return f"{self.file}\0{self.digest}\0{self.index}" if self.digest else ""

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

    @cached_property
    def references(self) -> list[Reference]:
        """Every component and template the document names (as written: a templated
        name such as ``${{ values.x }}`` is only known after expansion)."""
        spec = self.spec
        out: list[Reference] = []
        if isinstance(spec.get("template"), str):
            out.append((TEMPLATE, spec["template"]))
        body = spec.get("workflow") if self.kind == TEMPLATE else spec
        if not isinstance(body, dict):
            return out
        tasks = _list(body.get("tasks"))
        for group in _list(body.get("groups")):
            if isinstance(group, dict):
                tasks += _list(group.get("tasks"))
        out += [(COMPONENT, task["component"]) for task in tasks
                if isinstance(task, dict) and isinstance(task.get("component"), str)]
        return out


def _list(value: object) -> list[object]:
    """A list from a document that may hold anything where a list belongs."""
    return list(value) if isinstance(value, list) else []


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


class ResolvedWorkflow:
    """A workflow ready to deploy: the unit that is hashed, stored, diffed and rendered.

    Built from its definition by resolution, or from the validation cache with only
    its digest and listing fields: plan and publish compare digests, so an unchanged
    workflow's definition is rebuilt (and checked against the digest) only if asked.
    """

    _rebuild: Callable[[], dict[str, Any]]

    def __init__(self, name: str, source_path: str, definition: dict[str, Any]) -> None:
        self.name = name
        self.source_path = source_path
        self.__dict__["definition"] = definition

    @classmethod
    def cached(cls, name: str, source_path: str, sha256: str, owner: str, schedule: str | None,
               rebuild: Callable[[], dict[str, Any]], canonical: bytes | None = None) -> ResolvedWorkflow:
        """A workflow known by its digest (and perhaps its canonical bytes); the definition
        comes from ``canonical`` or, failing that, from ``rebuild``."""
        workflow = cls.__new__(cls)
        workflow.name, workflow.source_path = name, source_path
        workflow._rebuild = rebuild if canonical is None else partial(json.loads, canonical)
        workflow.__dict__.update(sha256=sha256, owner=owner, schedule=schedule)
        if canonical is not None:
            workflow.__dict__["canonical"] = canonical
        return workflow

    def __repr__(self) -> str:
        return f"ResolvedWorkflow({self.name!r}, {self.source_path!r})"

    @cached_property
    def definition(self) -> dict[str, Any]:
        definition = self._rebuild()
        if hashlib.sha256(canonical_json(definition)).hexdigest() != self.sha256:
            raise RuntimeError(f"workflow {self.name!r} no longer matches its cached digest")  # a bug, not user error
        return definition

    @cached_property
    def canonical(self) -> bytes:
        return canonical_json(self.definition)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical).hexdigest()

    @cached_property
    def owner(self) -> str:
        owner: str = self.definition["metadata"]["owner"]
        return owner

    @cached_property
    def schedule(self) -> str | None:
        """``"cron (timezone)"``: manifests carry it so listings need no object reads."""
        schedule = self.definition["spec"].get("schedule")
        return f"{schedule['cron']} ({schedule['timezone']})" if schedule else None


class Payloads(Mapping[str, bytes]):
    """Digest -> canonical bytes of workflows, built only for the digests asked for
    (a publish uploads only what the store lacks)."""

    def __init__(self, workflows: Iterable[ResolvedWorkflow]) -> None:
        self._by_digest = {w.sha256: w for w in workflows}

    def __getitem__(self, digest: str) -> bytes:
        return self._by_digest[digest].canonical

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_digest)

    def __len__(self) -> int:
        return len(self._by_digest)
