"""Property-based robustness tests: whatever the input, validation returns a report.

* the example documents of ``workflows/``, mutated at random (lines deleted, duplicated,
  swapped, re-indented, truncated; characters, control characters and YAML tokens
  inserted), validated in-process beside the other, unmutated examples;
* generated documents: arbitrary JSON-like trees as the metadata and spec of each kind;
* the loader on arbitrary text and on YAML token soup;
* the CLI (click's runner) on a few mutated repos.

Every diagnostic must be well formed: a rule id from ``wfctl.rules.RULES`` with its
severity, a 1-based line and column inside the file, a non-empty message and hint.

Hypothesis settings: ``deadline=None`` (one validation of the whole example repo takes
tens of milliseconds, more on a loaded machine, and timing is not the property under
test); ``print_blob=True`` so any failure prints a ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from text_mutations import mutate

from wfctl import config as config_mod
from wfctl import validate as validate_mod
from wfctl.cli import cli
from wfctl.diagnostics import Diagnostic, Report
from wfctl.loader import load_text
from wfctl.rules import RULES

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES: dict[str, str] = {
    path.relative_to(REPO_ROOT).as_posix(): path.read_text("utf-8")
    for path in sorted((REPO_ROOT / "workflows").rglob("*.y*ml"))
}

# No health check is suppressed: the repos are module-scoped fixtures (function-scoped
# tmp_path would not reset between examples) and every example restores what it changed.
FUZZ = settings(deadline=None, print_blob=True, derandomize=False)

# --- well-formed reports -------------------------------------------------------------


def check_diagnostic(d: Diagnostic, line_counts: dict[str, int | None]) -> None:
    """``line_counts``: the number of lines of each file (None: not text), filled as needed."""
    assert isinstance(d, Diagnostic), d
    assert d.rule in RULES, d
    assert d.severity == RULES[d.rule].severity, d
    assert isinstance(d.line, int) and d.line >= 1, d
    assert isinstance(d.column, int) and d.column >= 1, d
    assert isinstance(d.message, str) and d.message.strip(), d
    assert isinstance(d.hint, str) and d.hint.strip(), d
    assert d.file in line_counts, f"{d.file} is no file of the repo: {d}"
    count = line_counts[d.file]
    if count is not None:  # libyaml may point just past the last line break, never further
        assert d.line <= count + 1, f"line {d.line} is past the end of {d.file} ({count} lines): {d}"


def check_report(report: Report, root: Path) -> None:
    assert isinstance(report, Report), report
    counts: dict[str, int | None] = {}
    for path in root.rglob("*.y*ml"):
        data = path.read_bytes()
        counts[path.relative_to(root).as_posix()] = None if b"\0" in data else len(data.decode("utf-8", "replace").splitlines())
    for d in report.diagnostics:
        check_diagnostic(d, counts)
    assert report.errors + report.warnings == len(report.diagnostics)


def validate(root: Path) -> Report:
    report = validate_mod.validate(config_mod.load(root)).report
    check_report(report, root)
    return report


# --- mutations of the example documents ----------------------------------------------

YAML_TOKENS = [
    "on", "off", "yes", "no", "y", "~", "null", "true", "012", "0o17", "0x1F", "1:30", "1e3", ".inf", "-.inf", ".nan",
    "[", "]", "{", "}", "[]", "{}", ",", "&a", "*a", "&a [*a]", "<<: *a", "!!binary", "!!str", "!!int", "!!float", "!!bool",
    "!!null", "!!timestamp", "!!map", "!!seq", "!foo",
    "!!python/object:os.system", "? ", "- ", ": ", "|", ">-", "#", "'", '"', "''", '""', "---", "...", "%YAML 1.1",
    "@", "`", "\t", "2025-13-45", "2025-01-01", "0000-00-00", "${{ values.x }}", "${{", "{{ ds }}", "\\u0000",
    "- - -", "*/1 * * * *", "@hourly", "America", "UTC", "9" * 30,
]
# Printable text, other planes, and the control characters YAML forbids or treats specially.
CHARS = st.characters(codec="utf-8") | st.sampled_from(
    ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "\ufffe", "\r", "\n", "\t", "\u00a0"])
INDEX = st.integers(min_value=0, max_value=1_000)

MUTATION = st.one_of(
    st.tuples(st.just("delete"), INDEX),
    st.tuples(st.just("duplicate"), INDEX),
    st.tuples(st.just("swap"), INDEX, INDEX),
    st.tuples(st.just("insert"), INDEX, INDEX, st.text(CHARS, min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=10_000)),
    st.tuples(st.just("indent"), INDEX, st.integers(min_value=-6, max_value=6)),
    st.tuples(st.just("token"), INDEX, st.sampled_from(YAML_TOKENS)),
    st.tuples(st.just("line"), INDEX, st.sampled_from(YAML_TOKENS), st.integers(min_value=0, max_value=8)),
)


@pytest.fixture(scope="module")
def examples_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("examples")
    shutil.copytree(REPO_ROOT / "workflows", root / "workflows")
    (root / "wfctl.yaml").write_text("paths: [workflows]\n", "utf-8")
    return root


def test_examples_are_valid(examples_repo: Path) -> None:
    """The baseline the mutations start from."""
    assert len(EXAMPLES) >= 5
    assert validate(examples_repo).diagnostics == []


@contextmanager
def replaced(path: Path, content: str | bytes) -> Iterator[Path]:
    """``content`` at ``path`` for the block; then the original file again (or none)."""
    original = path.read_bytes() if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    try:
        yield path
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_bytes(original)


@settings(FUZZ, max_examples=150)
@given(example=st.sampled_from(sorted(EXAMPLES)), mutations=st.lists(MUTATION, min_size=1, max_size=5))
def test_mutated_examples_validate_without_raising(examples_repo: Path, example: str, mutations: list[tuple[Any, ...]]) -> None:
    with replaced(examples_repo / example, mutate(EXAMPLES[example], mutations)):
        validate(examples_repo)


@settings(FUZZ, max_examples=40)
@given(first=st.sampled_from(sorted(EXAMPLES)), second=st.sampled_from(sorted(EXAMPLES)),
       mutations=st.lists(MUTATION, min_size=1, max_size=4), more=st.lists(MUTATION, min_size=1, max_size=4))
def test_two_mutated_files_validate_without_raising(examples_repo: Path, first: str, second: str,
                                                    mutations: list[tuple[Any, ...]], more: list[tuple[Any, ...]]) -> None:
    """Mutations in two files at once reach cross-file rules (references, templates, names)."""
    with (replaced(examples_repo / first, mutate(EXAMPLES[first], mutations)),
          replaced(examples_repo / second, mutate((examples_repo / second).read_text("utf-8", "replace"), more))):
        validate(examples_repo)


# --- generated documents -------------------------------------------------------------

SCHEMA_KEYS = [
    "apiVersion", "backoff_multiplier", "catchup", "component", "cron", "dataset", "default", "defaults", "delay_seconds",
    "depends_on", "description", "end_date", "enum", "groups", "implementation", "inputs", "kind", "maxLength",
    "max_delay_seconds", "max_retries", "maximum", "metadata", "minLength", "minimum", "name", "on_failure", "owner",
    "parameters", "params", "pattern", "pool", "priority", "python_callable", "properties", "required", "retry",
    "schedule", "spec", "start_date", "tags", "tasks", "template", "timeout_seconds", "timezone", "trigger_rule", "type",
    "values", "with", "workflow", "additionalProperties", "items", "$ref", "<<",
]
NAMES = ["c", "t", "w", "a", "b", "bash", "http_get", "table-refresh", "sql_query"]
LEAVES = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
          | st.sampled_from([*NAMES, *YAML_TOKENS, "object", "string", "integer", "array", "0 2 * * *", "UTC", "^[a-z]+$",
                             "${{ values.table }}", "${{ values.nope }}", "mod:func", "2025-01-01", "2024-01-01"]))
KEYS = st.sampled_from(SCHEMA_KEYS) | st.text(max_size=10)
TREES = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=30,
)


# The small repo's own documents are c0/t0/w0; generated documents take the names its
# workflows reference (c, t), so generated components and templates get resolved too.
REFERENCED = ["c", "t", "c0", "t0", "a", "b"]
SCHEMA_WORDS = ["type", "properties", "required", "pattern", "items", "enum", "minimum", "maximum", "default",
                "additionalProperties", "$ref", "format", "const", "minLength", "description"]
USER_SCHEMAS = st.dictionaries(st.sampled_from(SCHEMA_WORDS), TREES, max_size=4) | st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(st.sampled_from(["command", "cmd", "x"]),
                                                              st.dictionaries(st.sampled_from(SCHEMA_WORDS), TREES, max_size=3)
                                                              | TREES, max_size=3)})


TASK_KEYS = ["retry", "timeout_seconds", "depends_on", "with", "on_failure", "pool", "priority", "trigger_rule",
             "description", "max_retries", "delay_seconds"]
# Task settings (and workflow defaults): the right keys, any values.
SETTINGS = st.dictionaries(st.sampled_from(TASK_KEYS), TREES, max_size=3) | st.dictionaries(KEYS, TREES, max_size=2)
WORKFLOW_KEYS = ["defaults", "schedule", "groups", "params", "tasks", "values", "template"]


@st.composite
def tasks(draw: st.DrawFn) -> list[Any]:
    """Task lists close enough to valid that resolution (components, defaults, DAG) runs on them."""
    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        task: dict[str, Any] = {"name": draw(st.sampled_from(NAMES) | TREES),
                                "component": draw(st.sampled_from(REFERENCED) | TREES)}
        task.update(draw(SETTINGS))
        out.append(task)
    return out


def often(draw: st.DrawFn) -> bool:
    """True three times in four: steer towards near-valid documents, keep the odd wild one."""
    return draw(st.integers(min_value=0, max_value=3)) > 0


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Workflow", "Component", "WorkflowTemplate"])) if often(draw) else draw(TREES)
    name = draw(st.sampled_from(["c", "t"]) if often(draw) else st.sampled_from(REFERENCED))
    metadata = {"name": name, "owner": "x"} if often(draw) else draw(TREES)
    spec = draw(TREES)
    if not often(draw):
        pass
    elif kind == "Component":
        spec = {"type": draw(st.sampled_from(["bash", "python", "http"])), "inputs": draw(USER_SCHEMAS)}
    elif kind == "WorkflowTemplate":
        workflow = {"tasks": draw(tasks()), **draw(st.dictionaries(st.sampled_from(WORKFLOW_KEYS) | KEYS, TREES, max_size=2))}
        spec = {"parameters": draw(USER_SCHEMAS), "workflow": workflow}
    elif draw(st.booleans()):
        spec = {"template": draw(st.sampled_from(REFERENCED)), "values": draw(TREES)}
    else:
        spec = {"tasks": draw(tasks()), "defaults": draw(SETTINGS | TREES)}
        if draw(st.booleans()):
            spec["groups"] = [{"name": draw(st.sampled_from(NAMES)), "tasks": draw(tasks()), **draw(SETTINGS)}
                              for _ in range(draw(st.integers(min_value=0, max_value=2)))]
    if isinstance(spec, dict) and not often(draw):
        spec.update(draw(st.dictionaries(st.sampled_from(WORKFLOW_KEYS) | KEYS, TREES, max_size=2)))
    return {"apiVersion": "wfctl/v1", "kind": kind, "metadata": metadata, "spec": spec}


SMALL_REPO = {
    "c0.yaml": "apiVersion: wfctl/v1\nkind: Component\nmetadata: {name: c0, owner: x}\n"
               "spec: {type: bash, inputs: {type: object, properties: {command: {type: string}}}}\n",
    "t0.yaml": "apiVersion: wfctl/v1\nkind: WorkflowTemplate\nmetadata: {name: t0, owner: x}\n"
               "spec: {parameters: {type: object, properties: {cmd: {type: string, default: hi}}},\n"
               "       workflow: {tasks: [{name: a, component: c0, with: {command: '${{ values.cmd }}'}}]}}\n",
    "w0.yaml": "apiVersion: wfctl/v1\nkind: Workflow\nmetadata: {name: w0, owner: x}\n"
               "spec: {tasks: [{name: a, component: c0, with: {command: hi}}, {name: b, component: c, with: {command: hi}}]}\n"
               "---\napiVersion: wfctl/v1\nkind: Workflow\nmetadata: {name: from-t0, owner: x}\nspec: {template: t0}\n"
               "---\napiVersion: wfctl/v1\nkind: Workflow\nmetadata: {name: from-t, owner: x}\n"
               "spec: {template: t, values: {cmd: hi, table: t}}\n",
}
# What the generated file holds when it is valid: the c and t the workflows above use.
VALID_GENERATED = SMALL_REPO["c0.yaml"].replace("c0", "c") + "---\n" + SMALL_REPO["t0.yaml"].replace("t0", "t")


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    for rel, text in SMALL_REPO.items():
        (root / rel).write_text(text, "utf-8")
    return root


def test_small_repo_is_valid(small_repo: Path) -> None:
    with replaced(small_repo / "generated.yaml", VALID_GENERATED):
        assert validate(small_repo).diagnostics == []


@settings(FUZZ, max_examples=250)
@given(docs=st.lists(documents(), min_size=1, max_size=3), flow=st.booleans(), unicode=st.booleans())
def test_generated_documents_validate_without_raising(small_repo: Path, docs: list[dict[str, Any]], flow: bool,
                                                       unicode: bool) -> None:
    text = yaml.safe_dump_all(docs, default_flow_style=flow, allow_unicode=unicode, sort_keys=False)
    with replaced(small_repo / "generated.yaml", text):
        validate(small_repo)


# --- the loader alone ----------------------------------------------------------------

SOUP = st.lists(st.sampled_from([*YAML_TOKENS, "\n", "\n  ", "\n    ", "\n- ", "a", "b: ", "apiVersion: wfctl/v1"])
                | st.text(max_size=4), max_size=40).map("".join)


def check_loaded(text: str) -> None:
    loaded = load_text("x.yaml", text)
    lines = text.splitlines()
    for d in loaded.diagnostics:
        assert d.file == "x.yaml" and d.rule in RULES and d.line >= 1 and d.column >= 1, d
        assert d.message.strip() and d.hint.strip(), d
        assert d.line <= len(lines) + 1, d
    for doc in loaded.documents:
        json.dumps(doc.data, allow_nan=True)  # plain JSON-like data, nothing exotic


@settings(FUZZ, max_examples=300)
@given(text=st.text())
def test_loader_never_raises_on_text(text: str) -> None:
    check_loaded(text)


@settings(FUZZ, max_examples=300)
@given(text=SOUP)
def test_loader_never_raises_on_yaml_token_soup(text: str) -> None:
    check_loaded(text)


# --- the command line ----------------------------------------------------------------


@settings(FUZZ, max_examples=25)
@given(example=st.sampled_from(sorted(EXAMPLES)), mutations=st.lists(MUTATION, min_size=1, max_size=5),
       output=st.sampled_from(["json", "json", "text", "github", "sarif", "junit"]))
def test_cli_on_mutated_repo(examples_repo: Path, example: str, mutations: list[tuple[Any, ...]], output: str) -> None:
    """Every output format renders whatever the diagnostics point at (the text format
    quotes the source line under a caret)."""
    with replaced(examples_repo / example, mutate(EXAMPLES[example], mutations)):
        result = CliRunner().invoke(cli, ["--repo", str(examples_repo), "--no-color", "validate", "-o", output])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    assert "internal error" not in result.stderr, result.stderr
    assert result.stdout.strip()
    if output == "json":
        report = json.loads(result.stdout)
        assert "error" not in report, f"internal error instead of diagnostics: {report}"
        assert report["ok"] is (report["summary"]["errors"] == 0)
        assert result.exit_code == (0 if report["ok"] else 1)
        for d in report["diagnostics"]:
            assert d["rule"] in RULES and d["line"] >= 1 and d["column"] >= 1 and d["message"] and d["hint"], d
