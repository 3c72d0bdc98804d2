"""Per-file analysis: everything that needs no other file.

This is the part of validation that runs in worker processes: read, decode,
load, classify by kind, check against the kind's schema, and run the rules
that look at one document alone. Cross-document work happens in
:mod:`wfctl.resolve`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from wfctl import rules
from wfctl.diagnostics import Diagnostic
from wfctl.errors import USAGE, WfError
from wfctl.loader import SourceMap, YamlDocument, decode, load_text, read_file
from wfctl.model import API_VERSION, COMPONENT, KINDS, TEMPLATE, WORKFLOW, Document, WorkflowView
from wfctl.rules import dag, schedule
from wfctl.rules import schema as schema_rule

MARKER = b"wfctl/"


@dataclass
class FileAnalysis:
    """What one file holds; ``wfctl`` is False for YAML files that are not ours.
    ``unchanged``: the file still has the ``digest`` the validation cache knows, and
    was not loaded (the cache has the rest)."""

    file: str
    documents: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    wfctl: bool = True
    digest: str = ""
    unchanged: bool = False


def analyze_file(root: Path, rel: str, known: str = "") -> FileAnalysis:
    """Never raises for bad content: every problem becomes a diagnostic. ``known`` is
    the digest the validation cache holds for the file, if any."""
    try:
        data, problems = read_file(root, rel)
    except OSError as exc:
        return FileAnalysis(rel, [], [rules.ENCODING.at(rel, (1, 1), f"cannot read file: {exc.strerror}",
                                                         "check the file's permissions")])
    if data is None:
        return FileAnalysis(rel, [], problems)
    digest = hashlib.sha256(data).hexdigest()
    if digest == known:
        return FileAnalysis(rel, digest=digest, unchanged=True)
    text, problems = decode(rel, data)
    if text is None:
        return FileAnalysis(rel, [], problems, digest=digest)
    return analyze_text(rel, text, digest)


def analyze_text(rel: str, text: str, digest: str = "") -> FileAnalysis:
    if MARKER.decode() not in text:  # cheap: most foreign YAML never gets parsed
        return FileAnalysis(rel, wfctl=False, digest=digest)
    loaded = load_text(rel, text)
    result = FileAnalysis(rel, [], list(loaded.diagnostics), digest=digest)
    ours = [d for d in loaded.documents if _is_wfctl(d.data)]
    if not ours and not loaded.diagnostics:
        return FileAnalysis(rel, wfctl=False, digest=digest)
    for doc in loaded.documents:
        result.diagnostics += _classify(doc, result.documents, digest)
    return result


class Reloader:
    """Loads deferred documents from their files when first needed, each file once,
    and only if its bytes are still those that were analysed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, dict[int, YamlDocument]] = {}

    def defer(self, doc: Document) -> Document:
        """``doc`` without its data, which will load from its file (``doc.digest`` is required)."""
        return defer(doc, self.loader(doc.file, doc.digest, doc.index))

    def loader(self, rel: str, digest: str, index: int) -> Callable[[], tuple[dict[str, Any], SourceMap]]:
        return partial(self._load, rel, digest, index)

    def _load(self, rel: str, digest: str, index: int) -> tuple[dict[str, Any], SourceMap]:
        if rel not in self._files:
            self._files[rel] = reload(self.root, rel, digest)
        doc = self._files[rel][index]
        return doc.data, doc.sourcemap


def defer(doc: Document, load: Callable[[], tuple[dict[str, Any], SourceMap]] | None) -> Document:
    """A deferred copy of ``doc`` (``load=None``: one that can travel between processes)."""
    return Document(doc.kind, doc.name, doc.file, doc.index, None, None, schema_ok=doc.schema_ok, digest=doc.digest,
                    load=load, references=doc.references)


def reload(root: Path, rel: str, digest: str) -> dict[int, YamlDocument]:
    """The documents of a file, loaded now that they are needed; the file must be unchanged."""
    try:
        data, _ = read_file(root, rel)
    except OSError:
        data = None
    text = decode(rel, data)[0] if data is not None and hashlib.sha256(data).hexdigest() == digest else None
    if text is None:
        raise WfError(USAGE, f"{rel} changed while wfctl was reading the repository", "run the command again")
    return {doc.index: doc for doc in load_text(rel, text).documents}


def _is_wfctl(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("apiVersion"), str) and data["apiVersion"].startswith("wfctl/")


def _classify(ydoc: YamlDocument, documents: list[Document], digest: str) -> list[Diagnostic]:
    data, sm, rel = ydoc.data, ydoc.sourcemap, ydoc.file
    if data is None:  # an empty document, e.g. a trailing `---`
        return []
    if not _is_wfctl(data):
        return [rules.UNKNOWN_KIND.at(rel, sm.value(()), "document has no `apiVersion: wfctl/v1` in a file of wfctl documents",
                                      "add apiVersion and kind, or move the document to a file of its own")]
    kind = data.get("kind")
    if data["apiVersion"] != API_VERSION:
        return [rules.UNKNOWN_KIND.at(rel, sm.value(("apiVersion",)), f"unknown apiVersion {data['apiVersion']!r}",
                                      f"use `apiVersion: {API_VERSION}`")]
    if kind not in KINDS:
        return [rules.UNKNOWN_KIND.at(rel, sm.value(("kind",)), f"unknown kind {kind!r}",
                                      f"use one of: {', '.join(KINDS)}")]
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    templated = kind == WORKFLOW and isinstance(data.get("spec"), dict) and "template" in data["spec"]
    doc = Document(kind, name if isinstance(name, str) else "", rel, ydoc.index, data, sm, digest=digest)
    found = schema_rule.check(kind, data, doc.locate, lambda p: sm.raw.get(p), partial_spec=templated)
    doc.schema_ok = not found
    documents.append(doc)
    return found + _document_rules(doc)


def _document_rules(doc: Document) -> list[Diagnostic]:
    """Rules that need this document alone (template-based workflows wait for
    expansion). They tolerate schema-invalid shapes, so one run reports all."""
    if doc.kind == WORKFLOW and "template" not in doc.spec:
        view = WorkflowView(doc.name, doc.data, doc.locate)
        return dag.check(view) + schedule.check(view)
    if doc.kind == COMPONENT:
        return _schema_is_valid(doc, ("spec", "inputs"))
    if doc.kind == TEMPLATE:
        return _schema_is_valid(doc, ("spec", "parameters"))
    return []


def _schema_is_valid(doc: Document, path: tuple[str, ...]) -> list[Diagnostic]:
    """WF405: a schema the user wrote must itself be a valid JSON Schema."""
    value = doc.spec.get(path[-1])
    if value is None:
        return []
    import jsonschema  # lazy: only components and templates need it

    try:
        jsonschema.Draft202012Validator.check_schema(value)
    except jsonschema.SchemaError as exc:
        where = (*path, *exc.path)
        file, pos = doc.locate(where)
        message = f"{'.'.join(map(str, where))} is not a valid JSON Schema: {exc.message}"
        hint = "fix the schema (JSON Schema draft 2020-12); see https://json-schema.org/understanding-json-schema/"
        return [rules.INVALID_INPUTS_SCHEMA.at(file, pos, message, hint)]
    return []
