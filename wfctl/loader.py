"""Safe, position-keeping YAML loading.

PyYAML's C composer (``CSafeLoader``) builds a node tree that keeps the start
mark of every node. We turn that tree into plain JSON-like data ourselves,
iteratively, so that we can

* record the line and column of every mapping key and value and sequence item
  (a :class:`SourceMap`), so every later diagnostic points at the wrong node;
* refuse duplicate keys (PyYAML silently keeps the last one);
* remember the raw text of unquoted non-string scalars, so a schema error on
  ``on`` or ``012`` can say "YAML 1.1 read this as a boolean: quote it";
* count nodes as aliases expand and stop a "billion laughs" early;
* bound nesting depth before the C composer (which recurses on the C stack and
  crashes around 30,000 levels) ever sees the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from wfctl import rules
from wfctl.diagnostics import Diagnostic
from wfctl.rules import Rule

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's C loader is ~5x faster


_RESOLVER = _Base("")  # only its implicit-resolver tables are used


@lru_cache(maxsize=65_536)
def _resolve_tag(kind: Any, value: Any, implicit: Any) -> Any:
    return _Base.resolve(_RESOLVER, kind, value, implicit)


class _Loader(_Base):  # type: ignore[misc]
    """The safe loader with a memo in front of the implicit-tag resolver.

    The composer asks for the tag of every node; keys and many values repeat
    (``name``, ``component``, ``true``), and the regex walk was ~15% of loading.
    A C-level cache (not a Python method) keeps the per-node call cheap too.
    """

    resolve = staticmethod(_resolve_tag)

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        """No path resolvers are registered: skip the bookkeeping."""

    def ascend_resolver(self) -> None:
        """No path resolvers are registered: skip the bookkeeping."""

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DOCUMENTS = 1000
MAX_NODES = 100_000
MAX_DEPTH = 100
# The C composer recurses once per nesting level; far below where it overflows.
_COMPOSER_SAFE_DEPTH = 10_000

Path_ = tuple[str | int, ...]
Pos = tuple[int, int]

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_SCALARS = {
    "tag:yaml.org,2002:int": SafeConstructor.construct_yaml_int,
    "tag:yaml.org,2002:float": SafeConstructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": SafeConstructor.construct_yaml_bool,
    "tag:yaml.org,2002:null": SafeConstructor.construct_yaml_null,
}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_CONSTRUCTOR = SafeConstructor()
_INDENT = re.compile("[\n\r\x85\u2028\u2029]( *)")


@dataclass
class SourceMap:
    """Where each node of one document stands in its file.

    Paths are tuples of mapping keys and sequence indexes from the document
    root. Lookups fall back to the nearest recorded ancestor, so any path a
    validator produces resolves to a real place.
    """

    values: dict[Path_, Pos] = field(default_factory=dict)
    keys: dict[Path_, Pos] = field(default_factory=dict)
    raw: dict[Path_, str] = field(default_factory=dict)

    def value(self, path: Path_) -> Pos:
        return _nearest(self.values, path)

    def key(self, path: Path_) -> Pos:
        """The position of the key that holds ``path`` (or of the item itself)."""
        while path:
            if path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))


def _nearest(table: dict[Path_, Pos], path: Path_) -> Pos:
    while path and path not in table:
        path = path[:-1]
    return table.get(path, (1, 1))


@dataclass
class YamlDocument:
    """One YAML document of a file: plain data plus where each node came from."""

    file: str
    index: int
    data: Any
    sourcemap: SourceMap


@dataclass
class LoadedFile:
    documents: list[YamlDocument]
    diagnostics: list[Diagnostic]
    lines: list[str] = field(default_factory=list)


class _Stop(Exception):
    """A limit was hit: the document cannot be loaded further."""

    def __init__(self, rule: Rule, pos: Pos, message: str, hint: str) -> None:
        super().__init__(message)
        self.rule, self.pos, self.message, self.hint = rule, pos, message, hint


def _pos(node: Node) -> Pos:
    return node.start_mark.line + 1, node.start_mark.column + 1


def read_file(root: Path, rel: str) -> tuple[bytes | None, list[Diagnostic]]:
    """A file's bytes within the size limit, or say why not (raises OSError)."""
    path = root / rel
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return None, [rules.FILE_TOO_LARGE.at(
            rel, (1, 1), f"file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}",
            "split it into several files (a file may hold many documents, each file at most 4 MiB)")]
    return path.read_bytes(), []


def decode(rel: str, data: bytes) -> tuple[str | None, list[Diagnostic]]:
    """Decode strictly as UTF-8 (a BOM is allowed); NUL bytes mean a binary file."""
    if b"\0" in data:
        offset = data.index(b"\0")
        return None, [rules.ENCODING.at(
            rel, _offset_pos(data, offset), "file contains NUL bytes: it looks binary, not YAML text",
            "remove the file from the configured paths, or save it as UTF-8 text")]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        return None, [rules.ENCODING.at(
            rel, _offset_pos(data, exc.start), f"file is not valid UTF-8 ({exc.reason} at byte {exc.start})",
            "re-save the file as UTF-8 (most editors: 'Save with encoding')")]


def _offset_pos(data: bytes, offset: int) -> Pos:
    """Line and column (in characters, as editors count) of a byte offset."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def load_text(rel: str, text: str) -> LoadedFile:
    """Load every document of ``text``; problems become diagnostics, never exceptions."""
    result = LoadedFile([], [], text.splitlines())
    try:
        if _depth_bound(text) > _COMPOSER_SAFE_DEPTH:
            _check_depth_by_events(text)
        for index, node in enumerate(_compose_all(text)):
            if index >= MAX_DOCUMENTS:
                raise _Stop(rules.TOO_MANY_DOCUMENTS, _pos(node), f"more than {MAX_DOCUMENTS} documents in one file",
                            "split the file into several files")
            result.documents.append(_build(rel, index, node, result.diagnostics))
    except _Stop as stop:
        result.diagnostics.append(stop.rule.at(rel, stop.pos, stop.message, stop.hint))
    except yaml.MarkedYAMLError as exc:
        result.diagnostics.append(_syntax_diagnostic(rel, exc, result.lines))
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        result.diagnostics.append(rules.YAML_SYNTAX.at(rel, (1, 1), str(exc).splitlines()[0],
                                                       "fix the YAML syntax; a YAML linter shows the exact spot"))
    except RecursionError:
        result.diagnostics.append(rules.TOO_DEEP.at(rel, (1, 1), "nesting is too deep to load",
                                                    f"keep nesting under {MAX_DEPTH} levels"))
    return result


def _compose_all(text: str) -> Iterator[Node]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node
    finally:
        loader.dispose()


def _syntax_diagnostic(rel: str, exc: yaml.MarkedYAMLError, lines: list[str]) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    pos = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    hint = "fix the YAML syntax at this spot"
    line = lines[pos[0] - 1] if 0 < pos[0] <= len(lines) else ""
    if "\t" in line[: pos[1]]:
        hint = "YAML indentation must use spaces, not tabs"
    elif "mapping values are not allowed" in problem:
        hint = "quote the value: it contains ': ' which YAML reads as a nested mapping"
    return rules.YAML_SYNTAX.at(rel, pos, f"{problem}{context}", hint)


def _depth_bound(text: str) -> int:
    """A cheap upper bound of the nesting depth. Each level needs a flow bracket,
    a block indicator (``-`` or ``?``, several may share a line) or more
    indentation after a line break, so counting those bounds it."""
    indents = _INDENT.findall(text)
    deepest = max((len(i) for i in indents), default=0)
    indicators = sum(text.count(c) for c in "[{-?")
    return indicators + 2 * deepest + 2


def _check_depth_by_events(text: str) -> None:
    """Walk parser events (libyaml keeps its own stack) to find over-deep nesting."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise _too_deep((mark.line + 1, mark.column + 1) if mark else (1, 1))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _too_deep(pos: Pos) -> _Stop:
    return _Stop(rules.TOO_DEEP, pos, f"collections are nested more than {MAX_DEPTH} levels deep",
                 "flatten the structure; no workflow field needs this much nesting")


class _Budget:
    """Nodes a document may expand to, counting every alias and ``<<`` merge visit."""

    def __init__(self) -> None:
        self.left = MAX_NODES

    def spend(self, node: Node) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Stop(rules.ALIAS_LIMIT, _pos(node), f"the document expands to more than {MAX_NODES:,} nodes",
                        "anchors, aliases and << merges multiply content; write it out or use fewer aliases")


def _build(rel: str, index: int, root: Node, diagnostics: list[Diagnostic]) -> YamlDocument:
    """Turn a node tree into data, iteratively, recording positions as we go.

    Depth counts collections only, the root collection being level 1 (the same
    count the event-based check uses for files too large to compose safely).
    """
    sm = SourceMap()
    values = sm.values
    holder: dict[str, Any] = {}
    stack: list[tuple[Node, Path_, Any, Any, int]] = [(root, (), holder, "root", 1)]
    budget = _Budget()
    while stack:  # the hot loop of loading
        node, path, parent, slot, depth = stack.pop()
        budget.spend(node)
        mark = node.start_mark
        values[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, ScalarNode):
            parent[slot] = node.value if node.tag == _STR else _scalar(rel, node, path, sm, diagnostics)
            continue
        if depth > MAX_DEPTH:
            raise _too_deep(_pos(node))
        if isinstance(node, SequenceNode):
            _check_tag(node, _SEQ)
            items: list[Any] = [None] * len(node.value)
            parent[slot] = items
            for i in range(len(node.value) - 1, -1, -1):
                stack.append((node.value[i], (*path, i), items, i, depth + 1))
        else:
            assert isinstance(node, MappingNode)
            _check_tag(node, _MAP)
            mapping: dict[str, Any] = {}
            parent[slot] = mapping
            pairs = _mapping_pairs(rel, node, path, sm, diagnostics, budget)
            for key, value_node in reversed(pairs):
                stack.append((value_node, (*path, key), mapping, key, depth + 1))
    return YamlDocument(rel, index, holder["root"], sm)


def _check_tag(node: Node, expected: str) -> None:
    if node.tag != expected:
        raise _Stop(rules.UNSUPPORTED_TAG, _pos(node), f"unsupported YAML tag {node.tag!r}",
                    "remove the tag: wfctl documents hold plain mappings, lists and scalars")


def _scalar(rel: str, node: ScalarNode, path: Path_, sm: SourceMap, diagnostics: list[Diagnostic]) -> Any:
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag == _TIMESTAMP:  # dates stay ISO strings, as the schema expects them
        sm.raw[path] = node.value
        return node.value
    construct = _SCALARS.get(tag)
    if construct is None:
        raise _Stop(rules.UNSUPPORTED_TAG, _pos(node), f"unsupported YAML tag {tag!r}",
                    "remove the tag or quote the value")
    if not node.style:  # plain: '' from the C loader, None from the Python one
        sm.raw[path] = node.value
    try:
        return construct(_CONSTRUCTOR, node)
    except Exception as exc:  # PyYAML raises several types for `!!int ''`, `!!bool maybe`, ...
        raise _Stop(rules.UNSUPPORTED_TAG, _pos(node), f"cannot read {node.value!r} as {tag}: {exc}",
                    "quote the value or remove the tag") from None


def _mapping_pairs(rel: str, node: MappingNode, path: Path_, sm: SourceMap,
                   diagnostics: list[Diagnostic], budget: _Budget) -> list[tuple[str, Node]]:
    """Key/value pairs with ``<<`` merges applied; explicit keys beat merged ones."""
    if "<<" not in [k.value for k, _ in node.value] or not any(k.tag == _MERGE for k, _ in node.value):
        return _plain_pairs(rel, node, path, sm, diagnostics)  # the common case, kept cheap
    entries: Iterable[tuple[Node, Node, bool]] = _flatten(node)
    seen: dict[str, bool] = {}
    pairs: dict[str, Node] = {}
    keys = sm.keys
    for key_node, value_node, merged in entries:
        if merged:
            budget.spend(key_node)
        if not isinstance(key_node, ScalarNode):
            raise _not_scalar_key(key_node)
        key = key_node.value  # the key as written: `on:` stays "on", never True
        if key in seen:
            if merged:
                continue
            if not seen[key]:
                diagnostics.append(_duplicate_key(rel, key_node, keys[(*path, key)][0]))
                continue
        seen[key] = merged
        pairs[key] = value_node
        mark = key_node.start_mark
        keys[(*path, key)] = (mark.line + 1, mark.column + 1)
    return list(pairs.items())


def _plain_pairs(rel: str, node: MappingNode, path: Path_, sm: SourceMap,
                 diagnostics: list[Diagnostic]) -> list[tuple[str, Node]]:
    """:func:`_mapping_pairs` of a mapping without ``<<`` merges."""
    pairs: dict[str, Node] = {}
    keys = sm.keys
    for key_node, value_node in node.value:
        if type(key_node) is not ScalarNode:
            raise _not_scalar_key(key_node)
        key = key_node.value  # the key as written: `on:` stays "on", never True
        if key in pairs:
            diagnostics.append(_duplicate_key(rel, key_node, keys[(*path, key)][0]))
            continue
        pairs[key] = value_node
        mark = key_node.start_mark
        keys[(*path, key)] = (mark.line + 1, mark.column + 1)
    return list(pairs.items())


def _not_scalar_key(key_node: Node) -> _Stop:
    return _Stop(rules.UNSUPPORTED_TAG, _pos(key_node), "mapping keys must be plain scalars", "use a string key")


def _duplicate_key(rel: str, key_node: Node, first_line: int) -> Diagnostic:
    return rules.DUPLICATE_KEY.at(rel, _pos(key_node), f"duplicate key {key_node.value!r} (first defined at line {first_line})",
                                  "remove one of the two; YAML parsers would silently keep only the last")


def _flatten(node: MappingNode, depth: int = 0) -> Iterator[tuple[Node, Node, bool]]:
    """Yield merged pairs (flagged) before the mapping's own pairs."""
    own: list[tuple[Node, Node, bool]] = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE:
            own.append((key_node, value_node, False))
            continue
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, MappingNode) or depth > MAX_DEPTH:
                raise _Stop(rules.YAML_SYNTAX, _pos(source), "a << merge needs a mapping or a list of mappings",
                            "point the merge key at an anchored mapping (<<: *defaults)")
            for key, value, _ in _flatten(source, depth + 1):
                yield key, value, True
    yield from own
