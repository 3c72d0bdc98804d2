"""Shared fixtures and builders for the validation tests.

Test modules import the plain helpers (``from conftest import ...``) for use in
``parametrize`` lists, and take the repo/CLI runners as fixtures.

* ``make_repo(files, config=None)`` writes ``{relative_path: text}`` into a fresh
  folder (plus ``wfctl.yaml`` when ``config`` is given) and returns its root.
* ``run_validate(root, *focus)`` runs :func:`wfctl.validate.validate` on it and
  returns the :class:`~wfctl.diagnostics.Report`.
* ``run_cli(root, *args)`` runs ``wfctl --repo ROOT --no-color validate -o json ARGS``
  through click's ``CliRunner`` and returns ``(exit_code, parsed_json)``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from wfctl import config as config_mod
from wfctl import validate as validate_mod
from wfctl.diagnostics import Diagnostic, Report

REPO_ROOT = Path(__file__).resolve().parent.parent

# A standard valid Component: tasks must give `command` (a string); `env` is an object.
BASH_COMPONENT = """\
apiVersion: wfctl/v1
kind: Component
metadata:
  name: bash
  description: Run a shell command.
spec:
  type: bash
  inputs:
    type: object
    required: [command]
    properties:
      command: {type: string}
      env: {type: object}
    additionalProperties: false
"""

# The tasks of the default workflow: one bash task.
DEFAULT_SPEC = """\
tasks:
  - name: hello
    component: bash
    with: {command: "echo hello"}
"""


def workflow(name: str = "demo", spec: str = DEFAULT_SPEC, *, owner: str | None = "data-team",
             metadata: str = "") -> str:
    """A Workflow document; ``spec`` and ``metadata`` are YAML blocks written at column 1
    (they are indented under their keys here). ``owner=None`` leaves the owner out.

    Lines 1-5 are always apiVersion, kind, metadata, name, owner (when given)."""
    lines = ["apiVersion: wfctl/v1", "kind: Workflow", "metadata:", f"  name: {name}"]
    if owner is not None:
        lines.append(f"  owner: {owner}")
    lines += [textwrap.indent(line, "  ") for line in textwrap.dedent(metadata).strip("\n").splitlines()]
    lines.append("spec:")
    lines += [textwrap.indent(line, "  ") if line else line for line in textwrap.dedent(spec).strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def component(name: str, spec: str) -> str:
    """A Component document with ``spec`` (a YAML block written at column 1)."""
    body = textwrap.indent(textwrap.dedent(spec), "  ")
    return f"apiVersion: wfctl/v1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n{body}"


def template(name: str, spec: str) -> str:
    """A WorkflowTemplate document with ``spec`` (a YAML block written at column 1)."""
    body = textwrap.indent(textwrap.dedent(spec), "  ")
    return f"apiVersion: wfctl/v1\nkind: WorkflowTemplate\nmetadata:\n  name: {name}\nspec:\n{body}"


def pos_of(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the ``occurrence``-th ``needle`` in ``text``."""
    at = -1
    for _ in range(occurrence):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def only(report: Report, rule: str) -> list[Diagnostic]:
    """The diagnostics of one rule."""
    return [d for d in report.diagnostics if d.rule == rule]


def where(diagnostics: Iterable[Diagnostic]) -> list[tuple[str, int, int, str, str]]:
    """(file, line, column, rule, severity) of each diagnostic, for exact comparisons."""
    return [(d.file, d.line, d.column, d.rule, d.severity) for d in diagnostics]


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))  # no newline translation: positions stay exact


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """``make_repo(files, config=None, bash=False)``: write a repo, return its root.

    ``config`` is the text of ``wfctl.yaml``; ``bash=True`` adds
    ``components/bash.yaml`` (the standard bash Component)."""
    counter = iter(range(1_000_000))

    def make(files: dict[str, str | bytes], config: str | None = None, *, bash: bool = False) -> Path:
        root = tmp_path / f"repo{next(counter)}"
        root.mkdir()
        if bash:
            files = {"components/bash.yaml": BASH_COMPONENT, **files}
        if config is not None:
            files = {**files, "wfctl.yaml": config}
        _write(root, files)
        return root

    return make


def validate_repo(root: Path, *focus: str) -> Report:
    """Validate the repo at ``root``; ``focus`` (repo-relative files) narrows the report."""
    result = validate_mod.validate(config_mod.load(root), list(focus) if focus else None)
    return result.report


@pytest.fixture
def run_validate() -> Callable[..., Report]:
    return validate_repo


def wfctl(*args: str) -> Result:
    """Run ``wfctl ARGS`` in-process (stdout and stderr kept apart)."""
    from wfctl.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def invoke_cli(root: Path, *args: str) -> tuple[int, Any]:
    """``wfctl --repo ROOT --no-color validate -o json ARGS``: (exit code, parsed JSON).

    The JSON is ``None`` when stdout is not JSON (e.g. a usage error)."""
    result = wfctl("--repo", str(root), "--no-color", "validate", "-o", "json", *args)
    try:
        data = json.loads(result.stdout)
    except ValueError:
        data = None
    return result.exit_code, data


@pytest.fixture
def run_cli() -> Callable[..., tuple[int, Any]]:
    return invoke_cli


@pytest.fixture(autouse=True)
def _no_wfctl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's WFCTL_* variables or CI's step summary must not leak into tests."""
    for var in [*config_mod.ENV.values(), "GITHUB_STEP_SUMMARY", "NO_COLOR"]:
        monkeypatch.delenv(var, raising=False)
