"""Cross-document resolution: the repo's documents become deployable workflows.

Templates are expanded (``${{ values.x }}``; Airflow's ``{{ }}`` passes
through), defaults are applied (task > workflow defaults > component defaults >
built-in), components are inlined, and ``depends_on`` group names are expanded
to tasks. The result, :class:`ResolvedWorkflow`, is what plan, publish and
rendering consume; the diagnostics found on the way are returned beside it.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any, Protocol

import jsonschema_rs

from wfctl import rules
from wfctl.diagnostics import Diagnostic
from wfctl.graph import TaskGraph, build
from wfctl.loader import Path_, Pos, SourceMap
from wfctl.model import COMPONENT, TEMPLATE, WORKFLOW, Document, Locator, Reference, ResolvedWorkflow, WorkflowView
from wfctl.rules import dag, schedule
from wfctl.rules import schema as schema_rule

PLACEHOLDER = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
VALUE_REF = re.compile(r"values\.([A-Za-z_][A-Za-z0-9_]*)")
CALLABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")
TASK_FIELDS = ("retry", "timeout_seconds", "on_failure", "pool", "priority", "trigger_rule")
BUILTIN_DEFAULTS: dict[str, Any] = {
    "retry": {"max_retries": 0, "delay_seconds": 300, "backoff_multiplier": 1, "max_delay_seconds": None},
    "timeout_seconds": None,
    "on_failure": "fail",
    "pool": None,
    "priority": None,
    "trigger_rule": "all_success",
}


@dataclass
class Catalog:
    """The repo's documents by kind and name (the first of a duplicated name wins)."""

    by_kind: dict[str, dict[str, Document]] = field(default_factory=lambda: {WORKFLOW: {}, COMPONENT: {}, TEMPLATE: {}})

    def get(self, kind: str, name: str) -> Document | None:
        return self.by_kind[kind].get(name)

    def names(self, kind: str) -> list[str]:
        return sorted(self.by_kind[kind])


class RecordingCatalog(Catalog):
    """The catalog as one workflow's resolution saw it: every lookup and the content
    key it found ("" for nothing; None for a document without one, which cannot be memoised)."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog.by_kind)
        self.lookups: dict[Reference, str | None] = {}

    def get(self, kind: str, name: str) -> Document | None:
        found = super().get(kind, name)
        self.lookups[(kind, name)] = (found.key or None) if found else ""
        return found


@dataclass(frozen=True)
class Settled:
    """What one workflow's resolution came to, without its definition: small enough
    to remember in the cache or send back from a worker process."""

    sha256: str | None  # None: it did not resolve (see diagnostics)
    owner: str
    schedule: str | None
    diagnostics: list[Diagnostic]
    lookups: dict[Reference, str | None]
    canonical: bytes | None = None  # from a worker: bytes travel cheaply, and publish needs them all

    @property
    def memoisable(self) -> bool:
        return self.sha256 is not None and not self.diagnostics and None not in self.lookups.values()

    def workflow(self, doc: Document, rebuild: Callable[[], dict[str, Any]]) -> ResolvedWorkflow | None:
        if self.sha256 is None:
            return None
        return ResolvedWorkflow.cached(doc.name, doc.file, self.sha256, self.owner, self.schedule, rebuild,
                                       self.canonical)


class Memo(Protocol):
    """Remembers resolutions across runs (:class:`wfctl.cache.ValidationCache`)."""

    def recall(self, doc: Document, catalog: Catalog) -> Settled | None:
        """The resolution of the same content, if every lookup it made still finds the same."""

    def keep(self, doc: Document, settled: Settled) -> None:
        """Remember a clean resolution."""


@dataclass
class Resolution:
    catalog: Catalog
    workflows: dict[str, ResolvedWorkflow]
    diagnostics: list[Diagnostic]


def index(documents: Iterable[Document]) -> tuple[Catalog, list[Diagnostic]]:
    """WF600: names are unique per kind across the repo; both places are reported."""
    catalog = Catalog()
    out: list[Diagnostic] = []
    for doc in documents:
        if not doc.name:
            continue
        table = catalog.by_kind[doc.kind]
        first = table.get(doc.name)
        if first is None:
            table[doc.name] = doc
            continue
        for here, there in ((doc, first), (first, doc)):
            file, pos = here.locate(("metadata", "name"))
            out.append(rules.DUPLICATE_NAME.at(
                file, pos, f"{doc.kind} name {doc.name!r} is also defined in {there.file}:{there.pos(('metadata', 'name'))[0]}",
                "rename one of them: names are unique per kind across the repository"))
    return catalog, out


def resolve(documents: list[Document], memo: Memo | None = None,
            settled: Mapping[tuple[str, int], Settled] | None = None) -> Resolution:
    """Resolve every workflow, unless ``settled`` (by file and index: worker processes)
    or ``memo`` (the cache) already did. A workflow resolved here keeps its definition;
    one settled elsewhere rebuilds it only if something asks."""
    catalog, out = index(documents)
    workflows: dict[str, ResolvedWorkflow] = {}
    for name, doc in catalog.by_kind[WORKFLOW].items():
        done = (settled or {}).get((doc.file, doc.index)) or (memo.recall(doc, catalog) if memo else None)
        if done is None:
            resolved, done = settle(doc, catalog)
        else:
            resolved = done.workflow(doc, partial(_rebuild, doc, catalog))
        out += done.diagnostics
        if resolved is not None:
            workflows[name] = resolved
        if memo and done.memoisable:
            memo.keep(doc, done)
    return Resolution(catalog, workflows, out)


def settle(doc: Document, catalog: Catalog) -> tuple[ResolvedWorkflow | None, Settled]:
    """Resolve one workflow, recording what it looked up."""
    recording = RecordingCatalog(catalog)
    resolved, problems = resolve_workflow(doc, recording)
    if resolved is None:
        return None, Settled(None, "", None, problems, recording.lookups)
    return resolved, Settled(resolved.sha256, resolved.owner, resolved.schedule, problems, recording.lookups,
                             resolved.canonical)


def _rebuild(doc: Document, catalog: Catalog) -> dict[str, Any]:
    """The definition of a workflow the memo vouched for, when something needs more than its digest."""
    resolved, problems = resolve_workflow(doc, catalog)
    if resolved is None:
        raise RuntimeError(f"{doc.ref} no longer resolves: {problems}")  # the memo's lookups guarantee it does
    return resolved.definition


def resolve_workflow(doc: Document, catalog: Catalog) -> tuple[ResolvedWorkflow | None, list[Diagnostic]]:
    """Expand, check and build one workflow; ``None`` when it cannot be built."""
    view, out = _expand(doc, catalog)
    if view is None:
        return None, out
    valid = doc.schema_ok and not any(d.rule == rules.SCHEMA.id for d in out)
    graph = build(view.spec)
    tasks: dict[str, Any] = {}
    for name in graph.tasks:
        task, problems = _resolve_task(view, graph, name, catalog, settle=valid)
        out += problems
        tasks[name] = task
    if out or not valid:
        return None, out
    definition = _definition(view, graph, tasks, doc)
    out += _renderable(view, graph, definition)
    if out:
        return None, out
    return ResolvedWorkflow(doc.name, doc.file, definition), out


def _renderable(view: WorkflowView, graph: TaskGraph, definition: dict[str, Any]) -> list[Diagnostic]:
    """WF407: every deployed workflow becomes an Airflow DAG, so find out now, not at deploy."""
    from wfctl.airflow_render import RenderError, dag_data

    try:
        dag_data(definition, source="CODE", version=None, sha256="", trusted=True)
    except RenderError as exc:
        kind, name = exc.where or ("", "")
        node = graph.tasks.get(name) if kind == "task" else None
        path = (*node.path, "component") if node else ("spec", "params", name) if kind == "param" else ("metadata", "name")
        file, pos = view.locate(path, key=kind == "param")
        return [rules.AIRFLOW_RENDER.at(file, pos, exc.message, exc.hint)]
    return []


# --- templates -------------------------------------------------------------


def _expand(doc: Document, catalog: Catalog) -> tuple[WorkflowView | None, list[Diagnostic]]:
    """The workflow to check: itself, or its template expanded with its values."""
    template_name = doc.spec.get("template")
    if template_name is None:
        return WorkflowView(doc.name, doc.data, doc.locate, lambda p: doc.sourcemap.raw.get(p)), []
    if not isinstance(template_name, str) or not doc.schema_ok:
        return None, []
    template = catalog.get(TEMPLATE, template_name)
    if template is None or not template.schema_ok:
        if template is not None:
            return None, []  # its own diagnostics already say what is wrong
        file, pos = doc.locate(("spec", "template"))
        close = difflib.get_close_matches(template_name, catalog.names(TEMPLATE), n=1)
        return None, [rules.UNKNOWN_TEMPLATE.at(
            file, pos, f"unknown template {template_name!r}",
            (f"did you mean {close[0]!r}? " if close else "") + "define a WorkflowTemplate with this name, or fix the name")]
    values, out = _template_values(doc, template)
    if out:  # wrong values would only cause follow-on errors blamed on the template
        return None, out
    body, out = _substitute(template.spec.get("workflow", {}), values, template, ("spec", "workflow"))
    overrides = {k: v for k, v in doc.spec.items() if k not in ("template", "values")}
    data = {**doc.data, "spec": _merge(body, overrides)}
    locate, raw = _template_locator(doc, template)
    view = WorkflowView(doc.name, data, locate, raw)
    out += schema_rule.check(WORKFLOW, data, view.locate, raw)
    if not out:
        out += dag.check(view) + schedule.check(view)
    return view, out


def _template_values(doc: Document, template: Document) -> tuple[dict[str, Any], list[Diagnostic]]:
    """WF402: the workflow's values against the template's parameters, defaults filled in."""
    values = dict(doc.spec.get("values") or {})
    parameters = template.spec.get("parameters")
    if not isinstance(parameters, dict):
        return values, []
    for key, default in _property_defaults(parameters).items():
        values.setdefault(key, default)
    errors = _errors(parameters, values)
    about = f" (parameters of template {template.name!r}, {template.file}:{template.pos(('spec', 'parameters'))[0]})"
    out = schema_rule.diagnose(rules.TEMPLATE_VALUES, parameters, errors, ("spec", "values"), doc.locate,
                               lambda p: doc.sourcemap.raw.get(p), about)
    return values, out


def _substitute(value: Any, values: dict[str, Any], template: Document, path: Path_) -> tuple[Any, list[Diagnostic]]:
    """Replace ``${{ values.x }}`` everywhere; a lone placeholder keeps the value's type."""
    out: list[Diagnostic] = []

    def walk(node: Any, at: Path_) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*at, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*at, i)) for i, v in enumerate(node)]
        if not isinstance(node, str) or "${{" not in node:
            return node
        whole = PLACEHOLDER.fullmatch(node)
        if whole:
            return lookup(whole, at)
        return PLACEHOLDER.sub(lambda m: _as_text(lookup(m, at)), node)

    def lookup(match: re.Match[str], at: Path_) -> Any:
        ref = VALUE_REF.fullmatch(match.group(1))
        if ref and ref.group(1) in values:
            return values[ref.group(1)]
        file, pos = template.locate(at)
        known = ", ".join(sorted(values)) or "none"
        out.append(rules.UNRESOLVED_PLACEHOLDER.at(
            file, pos, f"placeholder {match.group(0)!r} names no value (known values: {known})",
            "write ${{ values.NAME }} with a NAME the workflow's values (or the parameter defaults) define; "
            "Airflow's {{ ... }} needs no $"))
        return match.group(0)

    return walk(value, path), out


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else in the override replaces the base."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def _template_locator(doc: Document, template: Document) -> tuple[Locator, Callable[[Path_], str | None]]:
    """Point into whichever file supplied the node: the workflow's override or the
    template (for positions and for the raw text of unquoted scalars alike)."""

    def owner(path: Path_) -> tuple[Document, Path_]:
        if len(path) > 1 and path[0] == "spec":
            inner = ("spec", "workflow", *path[1:])
            if _depth(template.sourcemap, inner) - 1 > _depth(doc.sourcemap, path):
                return template, inner
        return doc, path

    def locate(path: Path_, key: bool = False) -> tuple[str, Pos]:
        source, where = owner(path)
        return source.locate(where, key)

    def raw(path: Path_) -> str | None:
        source, where = owner(path)
        return source.sourcemap.raw.get(where)

    return locate, raw


def _depth(sm: SourceMap, path: Path_) -> int:
    while path and path not in sm.values:
        path = path[:-1]
    return len(path)


# --- tasks -------------------------------------------------------------------


def _resolve_task(view: WorkflowView, graph: TaskGraph, name: str, catalog: Catalog,
                  settle: bool) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Check a task's references; with ``settle`` (the workflow matched its schema,
    so every type is right) also build its resolved form."""
    node = graph.tasks[name]
    body = node.body
    if not isinstance(body.get("component"), str) or not isinstance(body.get("with", {}), dict):
        return {}, []  # the schema diagnostics say what is wrong
    component = catalog.get(COMPONENT, body["component"])
    if component is None:
        file, pos = view.locate((*node.path, "component"))
        close = difflib.get_close_matches(body["component"], catalog.names(COMPONENT), n=1)
        return {}, [rules.UNKNOWN_COMPONENT.at(
            file, pos, f"task {name!r} uses unknown component {body['component']!r}",
            (f"did you mean {close[0]!r}? " if close else "") + "define a Component with this name, or fix the name")]
    if not component.schema_ok:
        return {}, []
    inputs = component.spec.get("inputs")
    with_ = _with_defaults(body.get("with") or {}, inputs)
    out = _check_inputs(view, node.path, component, with_)
    out += _check_callable(view, node.path, component, with_)
    if not settle:
        return {}, out
    task = {
        "group": node.group,
        "description": body.get("description", ""),
        "component": {
            "name": component.name,
            "type": component.spec["type"],
            "implementation": component.spec.get("implementation"),
        },
        "with": with_,
        "depends_on": graph.upstream(name),
        **_task_settings(body, view.spec.get("defaults") or {}, component.spec.get("defaults") or {}),
    }
    return task, out


def _task_settings(task: dict[str, Any], workflow: dict[str, Any], component: dict[str, Any]) -> dict[str, Any]:
    """Each setting from the most specific layer that sets it; retry merges field by field."""
    layers = (task, workflow, component)
    settings: dict[str, Any] = {}
    for key in TASK_FIELDS:
        if key == "retry":
            retry = dict(BUILTIN_DEFAULTS["retry"])
            for layer in reversed(layers):
                retry.update(layer.get("retry") or {})
            settings["retry"] = retry
        else:
            settings[key] = next((layer[key] for layer in layers if key in layer), BUILTIN_DEFAULTS[key])
    return settings


def _with_defaults(with_: dict[str, Any], inputs: Any) -> dict[str, Any]:
    """Fill top-level ``default``s of the component's inputs schema into ``with:``
    (a new mapping; nested values are shared with the loaded document, which
    nothing mutates)."""
    result = dict(with_)
    for key, default in _property_defaults(inputs).items():
        result.setdefault(key, default)
    return result


def _property_defaults(schema: Any) -> dict[str, Any]:
    """The ``default`` of each top-level property of a user-written schema (any shape);
    copies, so that no two resolved workflows share a mutable default."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return {}
    return {key: copy.deepcopy(prop["default"]) for key, prop in properties.items()
            if isinstance(prop, dict) and "default" in prop}


def _check_inputs(view: WorkflowView, path: Path_, component: Document, with_: dict[str, Any]) -> list[Diagnostic]:
    """WF403: ``with:`` against the component's inputs schema."""
    inputs = component.spec.get("inputs")
    if not isinstance(inputs, dict):
        return []
    errors = _errors(inputs, with_)
    about = f" (inputs of component {component.name!r}, {component.file}:{component.pos(('spec', 'inputs'))[0]})"
    return schema_rule.diagnose(rules.COMPONENT_INPUTS, inputs, errors, (*path, "with"), view.locate, view.raw, about)


def _check_callable(view: WorkflowView, path: Path_, component: Document, with_: dict[str, Any]) -> list[Diagnostic]:
    """WF406: a python task without an implementation calls ``with.callable``."""
    if component.spec["type"] != "python" or component.spec.get("implementation"):
        return []
    value = with_.get("callable")
    if isinstance(value, str) and CALLABLE.match(value):
        return []
    file, pos = view.locate((*path, "with", "callable"))
    problem = "the task needs with.callable" if value is None else f"callable {value!r} is not written as module:function"
    return [rules.INVALID_CALLABLE.at(file, pos, problem, f"component {component.name!r} calls with.callable: write it like "
                                      "`acme_tasks.sales:load` (a module path, a colon, a function name)")]


def _key(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True)


@cache
def _validator(schema_json: str) -> Any:
    """User schemas compiled once per distinct schema (components are reused by many
    tasks); None for a schema that does not compile (WF405 already reports it)."""
    try:
        return jsonschema_rs.validator_for(json.loads(schema_json))
    except (jsonschema_rs.ValidationError, ValueError, TypeError):
        return None


_COMPILED: dict[int, tuple[dict[str, Any], Any]] = {}


def _errors(schema: dict[str, Any], instance: Any) -> list[Any]:
    """Errors of ``instance``; the schema's compiled validator is found by identity
    first (one component's inputs serve all its tasks), by content second."""
    hit = _COMPILED.get(id(schema))
    if hit is None or hit[0] is not schema:
        hit = _COMPILED[id(schema)] = (schema, _validator(_key(schema)))
    validator = hit[1]
    return list(validator.iter_errors(instance)) if validator else []


# --- the resolved document ---------------------------------------------------


def _definition(view: WorkflowView, graph: TaskGraph, tasks: dict[str, Any], doc: Document) -> dict[str, Any]:
    metadata = view.data["metadata"]
    spec = view.spec
    definition: dict[str, Any] = {
        "apiVersion": view.data["apiVersion"],
        "kind": WORKFLOW,
        "metadata": {
            "name": metadata["name"],
            "owner": metadata["owner"],
            "description": metadata.get("description", ""),
            "tags": list(metadata.get("tags", [])),
            "dataset": metadata.get("dataset"),
        },
        "spec": {
            "schedule": _schedule(spec.get("schedule")),
            "params": spec.get("params") or {},
            "groups": {
                name: {"description": node.body.get("description", ""), "tasks": list(node.members)}
                for name, node in graph.groups.items()
            },
            "tasks": tasks,
        },
    }
    if "template" in doc.spec:
        definition["template"] = {"name": doc.spec["template"], "values": doc.spec.get("values") or {}}
    return definition


def _schedule(schedule: dict[str, Any] | None) -> dict[str, Any] | None:
    if schedule is None:
        return None
    return {
        "cron": schedule["cron"],
        "timezone": schedule.get("timezone", "UTC"),
        "start_date": schedule.get("start_date"),
        "end_date": schedule.get("end_date"),
        "catchup": schedule.get("catchup", False),
    }
