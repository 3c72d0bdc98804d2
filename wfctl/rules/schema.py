"""WF200/WF102: a document against the JSON Schema of its kind.

jsonschema-rs finds the errors; this module turns each into a diagnostic at
the YAML node that is wrong, with a hint drawn from the schema itself (the
property's description, the allowed keys, the allowed values). Template values
(WF402) and component inputs (WF403) are reported through the same path.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from wfctl import rules
from wfctl.diagnostics import Diagnostic
from wfctl.loader import Path_
from wfctl.model import Locator
from wfctl.rules import Rule
from wfctl.schemas import schema, validator

RawLookup = Callable[[Path_], "str | None"]
_FORMAT_KEYWORDS = ("pattern", "not", "minLength", "maxLength")  # one message per malformed string
_YAML_TYPES = {bool: "a boolean", int: "an integer", float: "a number", type(None): "null"}


def check(kind: str, data: Any, locate: Locator, raw: RawLookup, partial_spec: bool = False) -> list[Diagnostic]:
    """Every schema error of a whole document against its kind's schema.

    ``partial_spec``: the spec is completed by a template later, so keys missing
    inside it are not errors yet (the expanded workflow is checked in full).
    """
    errors = validator(kind).iter_errors(data)
    if partial_spec:
        errors = (e for e in errors if not (e.kind.name == "required" and len(e.instance_path) >= 2
                                            and e.instance_path[0] == "spec"))
    return diagnose(rules.SCHEMA, schema(kind), errors, (), locate, raw)


def diagnose(rule: Rule, root: dict[str, Any], errors: Iterable[Any], prefix: Path_, locate: Locator,
             raw: RawLookup, about: str = "") -> list[Diagnostic]:
    """Turn jsonschema-rs errors (about the node at ``prefix``) into diagnostics
    of ``rule``; ``about`` ends every hint (e.g. which component's inputs)."""
    out: list[Diagnostic] = []
    seen: set[tuple[Path_, str]] = set()
    for error in errors:
        path = (*prefix, *error.instance_path)
        keyword = error.kind.name
        group = "format" if keyword in _FORMAT_KEYWORDS else f"{keyword}:{error.message}"
        if (path, group) in seen:
            continue
        seen.add((path, group))
        for found in _diagnostics(rule, root, error, path, keyword, locate, raw):
            out.append(replace(found, hint=found.hint + about) if about else found)
    return out


def display(path: Path_) -> str:
    """``spec.tasks[2].retry`` for humans."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "document"


def _diagnostics(rule: Rule, root: dict[str, Any], error: Any, path: Path_, keyword: str,
                 locate: Locator, raw: RawLookup) -> list[Diagnostic]:
    node = _schema_node(root, list(error.schema_path)[:-1])
    if keyword == "additionalProperties":
        return [_unexpected_key(rule, node, path, key, locate) for key in error.kind.unexpected]
    if keyword == "required":
        return [_missing_key(rule, node, path, error.kind.property, locate)]
    if keyword == "type":
        surprise = _yaml_surprise(error, path, locate, raw)
        if surprise:
            return [surprise]
    file, pos = locate(path)
    return [rule.at(file, pos, f"{display(path)}: {error.message}", _hint(keyword, error, node))]


def _unexpected_key(rule: Rule, node: dict[str, Any], path: Path_, key: str, locate: Locator) -> Diagnostic:
    allowed = sorted(node.get("properties", {}))
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    hint += f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it"
    file, pos = locate((*path, key), key=True)
    return rule.at(file, pos, f"{display(path)}: unknown key {key!r}", hint)


def _missing_key(rule: Rule, node: dict[str, Any], path: Path_, key: str, locate: Locator) -> Diagnostic:
    prop = node.get("properties", {}).get(key, {})
    about = prop.get("description", "")
    hint = f"add `{key}:` to {display(path)}" + (f" ({about})" if about else "")
    file, pos = locate(path, key=True)
    return rule.at(file, pos, f"{display(path)}: missing required key {key!r}", hint)


def _yaml_surprise(error: Any, path: Path_, locate: Locator, raw: RawLookup) -> Diagnostic | None:
    """An unquoted ``on``/``012``/``1:30`` that YAML 1.1 turned into a non-string."""
    wanted = error.kind.types
    text = raw(path)
    if "string" not in wanted or text is None or isinstance(error.instance, str):
        return None
    read_as = _YAML_TYPES.get(type(error.instance), "a non-string")
    file, pos = locate(path)
    return rules.AMBIGUOUS_SCALAR.at(
        file, pos,
        f"{display(path)}: unquoted {text!r} is read by YAML 1.1 as {read_as} ({error.instance!r}), but a string is expected",
        f"quote it: \"{text}\"")


def _hint(keyword: str, error: Any, node: dict[str, Any]) -> str:
    about = node.get("description", "")
    if keyword == "enum":
        return "use one of: " + ", ".join(str(o) for o in error.kind.options)
    if keyword == "type":
        return f"write {' or '.join(error.kind.types)} here" + (f" ({about})" if about else "")
    return about or "see the schema for this field (wfctl schema)"


def _schema_node(root: dict[str, Any], schema_path: list[str | int]) -> dict[str, Any]:
    """The schema object at a schema path, following local ``$ref``s; keeps the
    last node that carried a description so hints have something to say."""
    node: Any = root
    described: dict[str, Any] = root
    for part in schema_path:
        if part == "$ref":
            node = _resolve_ref(root, node["$ref"])
        else:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return described
        if isinstance(node, dict):
            node = {**_resolve_ref(root, node["$ref"]), **node} if "$ref" in node else node
            if "description" in node or "properties" in node:
                described = node
    return node if isinstance(node, dict) else described


def _resolve_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}
