"""Many changed files are analysed and resolved in forked workers that send back
summaries; the report, the digests and the definitions must be exactly those of the
in-line path, whatever the repo holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import BASH_COMPONENT, component, template, workflow

from wfctl import config as config_mod
from wfctl import validate as validate_mod
from wfctl import workers as workers_mod

pytestmark = pytest.mark.skipif(not workers_mod.FORK, reason="the worker path needs fork")

COUNT = validate_mod.PARALLEL_THRESHOLD + 40
TEMPLATE = template("nightly", """
parameters: {type: object, properties: {table: {type: string}}, required: [table]}
workflow:
  schedule: {cron: "0 3 * * *", timezone: UTC}
  tasks:
    - {name: load, component: bash, with: {command: "load ${{ values.table }}"}}
""")
# A component whose kind is spelt with a YAML escape: a byte pre-scan cannot see it.
HIDDEN = 'apiVersion: wfctl/v1\nkind: "Compon\\x65nt"\nmetadata: {name: hidden}\nspec: {type: bash}\n'


def body(i: int) -> str:
    """Workflow number i: mostly clean, some broken in each way that resolution or a rule reports."""
    kind = i % 9
    if kind == 1:
        return workflow(f"w{i}", spec="tasks:\n  - {name: a, component: bash, with: {command: x}, depends_on: [a]}\n")
    if kind == 2:
        return workflow(f"w{i}", spec="tasks:\n  - {name: a, component: nope, with: {command: x}}\n")
    if kind == 3:
        return workflow(f"w{i}", spec=f"template: nightly\nvalues: {{table: t{i}}}\n")
    if kind == 4:
        return workflow(f"w{i}", spec="schedule: {cron: '* * * * *', timezone: UTC}\n"
                                       "tasks:\n  - {name: a, component: bash, with: {command: x}}\n")
    if kind == 5:
        return workflow(f"w{i}", spec="tasks:\n  - {name: a, component: bash, with: {command: x}, retry: {max_retries: many}}\n")
    if kind == 6:
        return workflow(f"w{i}", spec="tasks:\n  - {name: a, component: hidden}\n")
    if kind == 7:
        return workflow(f"w{i - 1}")  # a duplicate name in another file
    return workflow(f"w{i}", spec=f"tasks:\n  - {{name: a, component: bash, with: {{command: 'echo {i}'}}}}\n")


def make(root: Path, hidden: bool) -> Path:
    files = {"components/bash.yaml": BASH_COMPONENT, "templates/nightly.yaml": TEMPLATE,
             "mixed/both.yaml": component("local", "type: bash\n") + "---\n" + workflow("mixed"),
             **{f"workflows/w{i:04}.yaml": body(i) for i in range(COUNT)}}
    if hidden:
        files["zz/hidden.yaml"] = HIDDEN
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(root: Path, jobs: int, cache: bool = False) -> validate_mod.Validation:
    return validate_mod.validate(config_mod.load(root, {"cache": cache}), jobs=jobs)


def outcome(result: validate_mod.Validation) -> tuple[Any, ...]:
    report = result.report
    return (report.diagnostics, report.files, report.documents, result.skipped,
            {name: (w.sha256, w.source_path, w.owner, w.schedule) for name, w in result.workflows.items()})


@pytest.mark.parametrize("hidden", [False, True], ids=["pre-scan-sees-all", "pre-scan-misses-one"])
def test_workers_report_exactly_what_in_line_does(tmp_path: Path, hidden: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path, hidden)
    inline = run(root, jobs=1)
    calls: list[str] = []
    for module, name in ((workers_mod, "analyze"), (validate_mod, "resolve")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    parallel = run(root, jobs=2)
    # a catalog document the pre-scan missed is caught, and everything is resolved again here
    assert calls == (["analyze", "resolve", "resolve"] if hidden else ["analyze", "resolve"])
    assert outcome(parallel) == outcome(inline)
    rules = {d.rule for d in inline.report.diagnostics}
    assert {"WF301", "WF400", "WF503", "WF200", "WF600"} <= rules
    assert any(d.rule == "WF400" and "'hidden'" in d.message for d in inline.report.diagnostics) != hidden
    # the definitions a worker only summarised are rebuilt here, identical
    for name in ("w0", "w3", "mixed"):
        assert parallel.workflows[name].definition == inline.workflows[name].definition


def test_workers_use_and_fill_the_cache(tmp_path: Path) -> None:
    root = make(tmp_path, hidden=False)
    cold = run(root, jobs=2, cache=True)
    (root / "components/bash.yaml").write_text(BASH_COMPONENT.replace("Run a shell command.", "Edited."))
    for i in range(0, COUNT, 3):  # enough changed files to take the worker path again
        path = root / f"workflows/w{i:04}.yaml"
        path.write_text(path.read_text() + "# edited\n")
    warm = run(root, jobs=2, cache=True)
    assert outcome(warm) == outcome(run(root, jobs=1))
    assert outcome(cold)[0] == outcome(warm)[0]
