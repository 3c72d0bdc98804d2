"""Every validation rule (wfctl.rules.RULES): a failing document that yields the
diagnostic at the exact file, line and column, and the same document fixed,
which validates clean.

Most rules share one shape and are table-driven (``CASES``); the loader limits
(WF103 alias expansion, WF104 size, WF105 encoding, WF106 depth, WF107 document
count) need bytes, monkeypatched limits or huge inputs and have tests of their own.
"""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass

import pytest
from conftest import BASH_COMPONENT, component, only, pos_of, template, where, workflow

import wfctl.loader
import wfctl.validate
from wfctl.rules import RULES

W = "workflows/demo.yaml"
T = "templates/table-refresh.yaml"


# --- builders -------------------------------------------------------------------------


def task(name: str, deps: list[str] | None = None, *, comp: str = "bash", with_: str = '{command: "echo"}') -> str:
    """One task as a block sequence item (at column 1)."""
    lines = [f"- name: {name}", f"  component: {comp}", f"  with: {with_}"]
    if deps is not None:
        lines.append(f"  depends_on: [{', '.join(deps)}]")
    return "\n".join(lines) + "\n"


def tasks(*items: str) -> str:
    return "tasks:\n" + "".join(textwrap.indent(item, "  ") for item in items)


def scheduled(schedule: str) -> str:
    """A one-task workflow with ``schedule: <schedule>`` (a flow mapping)."""
    return workflow(spec=f"schedule: {schedule}\n" + tasks(task("hello")))


TEMPLATE = template("table-refresh", """
parameters:
  type: object
  required: [table]
  properties:
    table: {type: string}
    conn_id: {type: string, default: warehouse}
  additionalProperties: false
workflow:
  tasks:
    - name: copy
      component: bash
      with: {command: "refresh ${{ values.table }} on ${{ values.conn_id }} for {{ ds }}"}
""")


CYCLIC_TEMPLATE = template("table-refresh", """
parameters: {type: object, properties: {table: {type: string}}}
workflow:
  tasks:
    - name: copy
      component: bash
      depends_on: [check]
      with: {command: "copy ${{ values.table }}"}
    - name: check
      component: bash
      depends_on: [copy]
      with: {command: "check ${{ values.table }}"}
""")


def from_template(values: str = "{table: customers}", name: str = "table-refresh") -> str:
    return workflow(spec=f"template: {name}\nvalues: {values}\n")


PYTHON_COMPONENT = component("py", "type: python\ninputs: {type: object}\n")

GROUP_SPEC = """
groups:
  - name: prep
    tasks:
      - name: extract
        component: bash
        with: {command: "echo"}
tasks:
  - name: load
    component: bash
    depends_on: [prep]
    with: {command: "echo"}
"""
GROUPED = workflow(spec=GROUP_SPEC)


# --- the table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """``files`` (the standard bash Component is added) fail with ``rule`` at each
    ``at`` place: (file, needle, occurrence) where the needle starts at the expected
    line:column. ``fix``, (file, old, new) replacements or whole files, makes the repo clean."""

    id: str
    rule: str
    files: dict[str, str]
    at: list[tuple[str, str, int]]
    fix: list[tuple[str, str, str]] | dict[str, str]
    message: str | None = None  # the exact message, when it is part of the contract
    hint: str | None = None  # a substring every diagnostic's hint contains


CASES = [
    # WF100: YAML syntax
    Case("mapping-in-plain-value", "WF100", {W: workflow(metadata="description: run at: 5pm")},
         [(W, ": 5pm", 1)], [(W, "run at: 5pm", '"run at: 5pm"')], hint="quote"),
    Case("tab-indentation", "WF100", {W: workflow(spec="tasks:\n\t- name: hello\n")},
         [(W, "\t", 1)], {W: workflow()}, hint="tab"),
    # WF101: duplicate keys, block and flow
    Case("duplicate-block-key", "WF101", {W: workflow(metadata="owner: other-team")},
         [(W, "owner", 2)], [(W, "  owner: other-team\n", "")], message="duplicate key 'owner' (first defined at line 5)"),
    Case("duplicate-flow-key", "WF101", {W: workflow(spec=tasks(task("hello", with_='{command: "a", command: "b"}')))},
         [(W, "command", 2)], [(W, ', command: "b"', "")]),
    # WF102: YAML 1.1 surprises where the schema wants a string
    Case("bool-owner", "WF102", {W: workflow(owner="yes")}, [(W, "yes", 1)], [(W, "owner: yes", 'owner: "yes"')],
         hint='quote it: "yes"'),
    Case("octal-description", "WF102", {W: workflow(metadata="description: 012")}, [(W, "012", 1)],
         [(W, "012", '"012"')], hint='quote it: "012"'),
    Case("sexagesimal-description", "WF102", {W: workflow(metadata="description: 1:30")}, [(W, "1:30", 1)],
         [(W, "1:30", "'1:30'")], hint='quote it: "1:30"'),
    Case("bool-with-command", "WF102", {W: workflow(spec=tasks(task("hello", with_="{command: on}")))},
         [(W, "on}", 1)], [(W, "{command: on}", '{command: "on"}')], hint='quote it: "on"'),
    Case("bool-in-template", "WF102",
         {T: TEMPLATE.replace('"refresh ${{ values.table }} on ${{ values.conn_id }} for {{ ds }}"', "yes"),
          W: from_template()},
         [(T, "yes}", 1)], [(T, "{command: yes}", '{command: "yes"}')], hint="quote"),
    # WF108: unknown apiVersion / kind
    Case("api-version", "WF108", {W: workflow().replace("wfctl/v1", "wfctl/v9")}, [(W, "wfctl/v9", 1)],
         [(W, "wfctl/v9", "wfctl/v1")], message="unknown apiVersion 'wfctl/v9'"),
    Case("kind", "WF108", {W: workflow().replace("kind: Workflow", "kind: Pipeline")}, [(W, "Pipeline", 1)],
         [(W, "Pipeline", "Workflow")], message="unknown kind 'Pipeline'"),
    Case("foreign-document-in-wfctl-file", "WF108", {W: workflow() + "---\nname: other\non: push\n"},
         [(W, "name: other", 1)], [(W, "---\nname: other\non: push\n", "")]),
    # WF109: tags
    Case("binary-tag", "WF109", {W: workflow(metadata="description: !!binary aGVsbG8=")}, [(W, "!!binary", 1)],
         [(W, "!!binary aGVsbG8=", "hello")]),
    Case("custom-tag", "WF109", {W: workflow(metadata="tags: !custom [a]")}, [(W, "!custom", 1)],
         [(W, "!custom ", "")]),
    # WF200: schema, at the node that is wrong
    Case("missing-owner", "WF200", {W: workflow(owner=None)}, [(W, "metadata:", 1)],
         [(W, "metadata:\n", "metadata:\n  owner: data-team\n")], message="metadata: missing required key 'owner'"),
    Case("unknown-task-key", "WF200", {W: workflow(spec=tasks(task("hello") + "  retires: 3\n"))},
         [(W, "retires", 1)], [(W, "retires: 3", "retry: {max_retries: 3}")], hint="did you mean 'retry'?"),
    Case("unknown-metadata-key", "WF200", {W: workflow(metadata="descripton: x")}, [(W, "descripton", 1)],
         [(W, "descripton", "description")], hint="did you mean 'description'?"),
    Case("wrong-type", "WF200", {W: workflow(spec=tasks(task("hello") + "  timeout_seconds: soon\n"))},
         [(W, "soon", 1)], [(W, "soon", "60")], hint="number"),
    Case("enum", "WF200", {W: workflow(spec=tasks(task("hello") + "  on_failure: explode\n"))},
         [(W, "explode", 1)], [(W, "explode", "skip")], hint="fail, skip"),
    Case("upper-case-name", "WF200", {W: workflow(name="Bad_Name")}, [(W, "Bad_Name", 1)],
         [(W, "Bad_Name", "bad_name")]),
    Case("double-dot-name", "WF200", {W: workflow(name="a..b")}, [(W, "a..b", 1)], [(W, "a..b", "a.b")]),
    Case("task-name-pattern", "WF200", {W: workflow(spec=tasks(task("Hello")))}, [(W, "Hello", 1)],
         [(W, "Hello", "hello")]),
    # WF300-WF305: the DAG
    Case("unknown-dependency", "WF300", {W: workflow(spec=tasks(task("extract"), task("load", ["extrct"])))},
         [(W, "extrct", 1)], [(W, "extrct", "extract")], hint="did you mean 'extract'?"),
    Case("unknown-dependency-of-a-group", "WF300",
         {W: workflow(spec=GROUP_SPEC.replace("- name: prep\n", "- name: prep\n    depends_on: [lod]\n"))},
         [(W, "lod]", 1)], {W: GROUPED}, hint="did you mean 'load'?"),
    Case("self-dependency", "WF301", {W: workflow(spec=tasks(task("extract", ["extract"])))},
         [(W, "extract]", 1)], [(W, "depends_on: [extract]", "depends_on: []")]),
    Case("task-on-own-group", "WF301",
         {W: workflow(spec=GROUP_SPEC.replace('"echo"}\ntasks:', '"echo"}\n        depends_on: [prep]\ntasks:'))},
         [(W, "prep]", 1)], {W: GROUPED}, message="'extract' depends on 'prep', which contains it or is part of it"),
    Case("group-on-own-task", "WF301",
         {W: workflow(spec=GROUP_SPEC.replace("- name: prep\n", "- name: prep\n    depends_on: [extract]\n"))},
         [(W, "extract]", 1)], {W: GROUPED}),
    Case("duplicate-edge", "WF302", {W: workflow(spec=tasks(task("extract"), task("load", ["extract", "extract"])))},
         [(W, "extract]", 1)], [(W, "[extract, extract]", "[extract]")]),
    Case("cycle", "WF303", {W: workflow(spec=tasks(task("c", ["b"]), task("a", ["c"]), task("b", ["a"])))},
         [(W, "depends_on: [c]", 1)], [(W, "depends_on: [b]", "depends_on: []")],
         message="dependency cycle: a -> b -> c -> a"),
    Case("cycle-in-run-order", "WF303",
         {W: workflow(spec=tasks(task("load", ["extract"]), task("extract", ["report"]), task("report", ["transform"]),
                                 task("transform", ["load"])))},
         [(W, "depends_on: [report]", 1)], [(W, "depends_on: [report]", "depends_on: []")],
         message="dependency cycle: extract -> load -> transform -> report -> extract"),
    Case("cycle-in-template", "WF303", {T: CYCLIC_TEMPLATE, W: from_template()},
         [(T, "depends_on: [copy]", 1)], [(T, "depends_on: [copy]", "depends_on: []")],
         message="dependency cycle: check -> copy -> check"),
    Case("duplicate-task", "WF304", {W: workflow(spec=tasks(task("extract"), task("extract")))},
         [(W, "extract", 2)], [(W, "name: extract", "name: first")],
         message="name 'extract' is already used at line 8 (tasks and groups share one namespace)"),
    Case("task-named-like-group", "WF304", {W: workflow(spec=GROUP_SPEC + tasks(task("prep")).removeprefix("tasks:\n"))},
         [(W, "prep", 3)], {W: GROUPED}),
    Case("empty-workflow", "WF305", {W: workflow(spec="tasks: []")}, [(W, "spec:", 1)], {W: workflow()},
         message="workflow 'demo' has no tasks"),
    # WF400-WF406: references
    Case("unknown-component", "WF400", {W: workflow(spec=tasks(task("hello", comp="bsh")))}, [(W, "bsh", 1)],
         [(W, "bsh", "bash")], message="task 'hello' uses unknown component 'bsh'", hint="did you mean 'bash'?"),
    Case("unknown-template", "WF401", {T: TEMPLATE, W: from_template(name="table-refrsh")}, [(W, "table-refrsh", 1)],
         [(W, "table-refrsh", "table-refresh")], message="unknown template 'table-refrsh'",
         hint="did you mean 'table-refresh'?"),
    Case("template-values-missing-and-extra", "WF402", {T: TEMPLATE, W: from_template("\n  tabel: customers")},
         [(W, "values:", 1), (W, "tabel", 1)], [(W, "tabel", "table")]),
    Case("template-values-type", "WF402", {T: TEMPLATE, W: from_template("{table: [customers]}")},
         [(W, "[customers]", 1)], [(W, "[customers]", "customers")], hint="parameters of template 'table-refresh'"),
    Case("with-missing-and-extra", "WF403", {W: workflow(spec=tasks(task("hello", with_='{comand: "echo"}')))},
         [(W, "with:", 1), (W, "comand", 1)], [(W, "comand", "command")], hint="inputs of component 'bash'"),
    Case("with-type", "WF403", {W: workflow(spec=tasks(task("hello", with_='{command: "echo", env: [A]}')))},
         [(W, "[A]", 1)], [(W, "[A]", "{A: b}")]),
    Case("unresolved-placeholder", "WF404",
         {T: TEMPLATE.replace("${{ values.conn_id }}", "${{ values.nope }}"), W: from_template()},
         [(T, '"refresh', 1)], [(T, "values.nope", "values.conn_id")], hint="Airflow's {{ ... }} needs no $"),
    Case("invalid-inputs-schema", "WF405", {"components/odd.yaml": component("odd", "type: bash\ninputs: {type: 12}\n")},
         [("components/odd.yaml", "12", 1)], [("components/odd.yaml", "{type: 12}", "{type: object}")]),
    Case("invalid-inputs-schema-of-a-used-component", "WF405",
         {"components/odd.yaml": component("odd", "type: bash\ninputs: {type: 12}\n"),
          W: workflow(spec=tasks(task("hello", comp="odd")))},
         [("components/odd.yaml", "12", 1)], [("components/odd.yaml", "{type: 12}", "{type: object}")]),
    Case("invalid-parameters-schema", "WF405",
         {T: TEMPLATE.replace("table: {type: string}", "table: {type: text}"), W: from_template()},
         [(T, "text", 1)], [(T, "{type: text}", "{type: string}")]),
    Case("not-a-callable", "WF406",
         {"components/py.yaml": PYTHON_COMPONENT,
          W: workflow(spec=tasks(task("run", comp="py", with_="{callable: not-a-callable}")))},
         [(W, "not-a-callable", 1)], [(W, "not-a-callable", '"acme_tasks.sales:load"')],
         message="callable 'not-a-callable' is not written as module:function"),
    Case("no-airflow-operator", "WF407",
         {"components/spark.yaml": component("spark", "type: spark\n"),
          W: workflow(spec=tasks(task("submit", comp="spark", with_="{app: x.py}")))},
         [(W, "spark", 1)],
         [("components/spark.yaml", "type: spark", "type: spark\n  implementation: {python_callable: 'acme.spark:submit'}")]),
    Case("scheduled-param-without-default", "WF407",
         {W: workflow(spec='schedule: {cron: "0 2 * * *"}\nparams:\n  region: {type: string}\n' + tasks(task("hello")))},
         [(W, "region", 1)], [(W, "{type: string}", "{type: string, default: kr}")]),
    # WF500-WF503: schedules
    Case("cron-out-of-range", "WF500", {W: scheduled('{cron: "61 * * * *"}')}, [(W, '"61', 1)], [(W, '"61', '"59')]),
    Case("cron-six-fields", "WF500", {W: scheduled('{cron: "0 0 2 * * *"}')}, [(W, '"0 0 2', 1)],
         [(W, '"0 0 2 * * *"', '"0 2 * * *"')], hint="5 fields"),
    Case("cron-unknown-preset", "WF500", {W: scheduled('{cron: "@fortnightly"}')}, [(W, '"@fortnightly"', 1)],
         [(W, "@fortnightly", "@weekly")]),
    Case("cron-in-template", "WF500", {T: TEMPLATE.replace("workflow:\n", 'workflow:\n    schedule: {cron: "0 3 * *"}\n'),
                                        W: from_template()},
         [(T, '"0 3', 1)], [(T, '"0 3 * *"', '"0 3 * * *"')]),
    Case("cron-override-next-to-template", "WF500",
         {T: TEMPLATE.replace("workflow:\n", 'workflow:\n    schedule: {cron: "0 3 * * *"}\n'),
          W: from_template() + '  schedule: {cron: "0 3 * *"}\n'},
         [(W, '"0 3', 1)], [(W, '"0 3 * *"', '"0 4 * * *"')]),
    Case("timezone", "WF501", {W: scheduled('{cron: "@daily", timezone: Mars/Olympus}')}, [(W, "Mars/Olympus", 1)],
         [(W, "Mars/Olympus", "Europe/Berlin")], message="unknown timezone 'Mars/Olympus'"),
    Case("end-before-start", "WF502", {W: scheduled('{cron: "@daily", start_date: 2025-05-01, end_date: 2025-04-30}')},
         [(W, "2025-04-30", 1)], [(W, "2025-04-30", "2025-05-01")],
         message="end_date 2025-04-30 is before start_date 2025-05-01"),
    Case("non-existent-date", "WF502", {W: scheduled('{cron: "@daily", start_date: 2025-02-30}')},
         [(W, "2025-02-30", 1)], [(W, "2025-02-30", "2025-02-28")], message="start_date '2025-02-30' is not a real date"),
    Case("every-minute", "WF503", {W: scheduled('{cron: "*/1 * * * *"}')}, [(W, '"*/1', 1)], [(W, "*/1", "*/5")]),
    # WF600: one diagnostic at each location
    Case("duplicate-workflow-name", "WF600", {W: workflow(), "workflows/copy.yaml": "# a copy\n" + workflow()},
         [(W, "demo", 1), ("workflows/copy.yaml", "demo", 1)], [("workflows/copy.yaml", "name: demo", "name: demo-copy")]),
    Case("duplicate-component-name", "WF600", {"lib/bash.yaml": BASH_COMPONENT},
         [("components/bash.yaml", "bash", 1), ("lib/bash.yaml", "bash", 1)], [("lib/bash.yaml", "name: bash", "name: sh")]),
]

# Rules whose cases need limits, bytes or huge inputs: tested below.
SPECIAL = {"WF103", "WF104", "WF105", "WF106", "WF107", "WF110"}


def test_every_rule_has_a_case() -> None:
    assert {case.rule for case in CASES} | SPECIAL == set(RULES)


def expected(case: Case) -> list[tuple[str, int, int, str, str]]:
    severity = RULES[case.rule].severity
    files = {"components/bash.yaml": BASH_COMPONENT, **case.files}
    return sorted((file, *pos_of(files[file], needle, n), case.rule, severity) for file, needle, n in case.at)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.rule}-{c.id}")
def test_rule_reports_the_wrong_node(case: Case, make_repo, run_validate) -> None:
    report = run_validate(make_repo(case.files, bash=True))
    found = only(report, case.rule)
    assert where(found) == expected(case), report.diagnostics
    for diagnostic in found:
        if case.message is not None:
            assert diagnostic.message == case.message
        if case.hint is not None:
            assert case.hint in diagnostic.hint
        assert diagnostic.hint  # every diagnostic says how to fix it


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.rule}-{c.id}")
def test_fixed_document_is_clean(case: Case, make_repo, run_validate) -> None:
    files = dict(case.files)
    if isinstance(case.fix, dict):
        files.update(case.fix)
    for file, old, new in case.fix if isinstance(case.fix, list) else []:
        assert old in files[file], (file, old)
        files[file] = files[file].replace(old, new, 1)
    report = run_validate(make_repo(files, bash=True))
    assert report.diagnostics == []


def test_warnings_do_not_fail_the_run_but_strict_does(make_repo, run_validate) -> None:
    report = run_validate(make_repo({W: scheduled('{cron: "* * * * *"}')}, bash=True))
    assert [d.rule for d in report.diagnostics] == ["WF503"]
    assert (report.errors, report.warnings) == (0, 1)
    assert report.ok() is True
    assert report.ok(strict=True) is False


@pytest.mark.parametrize("cron", ["*/5 * * * *", "@hourly", "0 2 * * *", "0,30 * * * *"])
def test_schedules_every_five_minutes_or_less_often_are_fine(cron: str, make_repo, run_validate) -> None:
    report = run_validate(make_repo({W: scheduled(f'{{cron: "{cron}"}}')}, bash=True))
    assert report.diagnostics == []


# --- one run reports everything -----------------------------------------------------------


def test_all_problems_of_a_document_are_reported_in_one_run(make_repo, run_validate) -> None:
    doc = workflow(owner="yes", metadata="retires: 3", spec=f"""
schedule: {{cron: "0 25 * * *"}}
{tasks(task("extract", comp="bsh"), task("load", ["extrct"]))}""")
    report = run_validate(make_repo({W: doc}, bash=True))
    assert where(report.diagnostics) == [
        (W, *pos_of(doc, "yes"), "WF102", "error"),
        (W, *pos_of(doc, "retires"), "WF200", "error"),
        (W, *pos_of(doc, '"0 25'), "WF500", "error"),
        (W, *pos_of(doc, "bsh"), "WF400", "error"),
        (W, *pos_of(doc, "extrct"), "WF300", "error"),
    ]


def test_problems_in_several_files_are_all_reported(make_repo, run_validate) -> None:
    files = {f"workflows/w{i}.yaml": workflow(f"w{i}", spec=tasks(task("hello", comp=f"missing{i}"))) for i in range(5)}
    report = run_validate(make_repo(files, bash=True))
    assert [(d.file, d.rule) for d in report.diagnostics] == [(f"workflows/w{i}.yaml", "WF400") for i in range(5)]


# --- groups: no false positives ----------------------------------------------------------------


def test_group_dependencies_and_tasks_depending_on_groups_are_valid(make_repo, run_validate) -> None:
    doc = workflow(spec="""
groups:
  - name: prepare
    tasks:
      - name: fetch
        component: bash
        with: {command: "echo"}
      - name: check
        component: bash
        depends_on: [fetch]
        with: {command: "echo"}
  - name: publish
    depends_on: [prepare, start]
    tasks:
      - name: push
        component: bash
        with: {command: "echo"}
tasks:
  - name: start
    component: bash
    with: {command: "echo"}
  - name: report
    component: bash
    depends_on: [publish, check]
    with: {command: "echo"}
""")
    assert run_validate(make_repo({W: doc}, bash=True)).diagnostics == []


def test_cycle_through_a_group_dependency(make_repo, run_validate) -> None:
    doc = workflow(spec="""
groups:
  - name: prepare
    depends_on: [report]
    tasks:
      - name: fetch
        component: bash
        with: {command: "echo"}
tasks:
  - name: report
    component: bash
    depends_on: [prepare]
    with: {command: "echo"}
""")
    found = only(run_validate(make_repo({W: doc}, bash=True)), "WF303")
    assert [d.message for d in found] == ["dependency cycle: fetch -> report -> fetch"]


def test_same_name_in_different_kinds_is_not_a_duplicate(make_repo, run_validate) -> None:
    report = run_validate(make_repo({W: workflow(name="bash")}, bash=True))
    assert report.diagnostics == []


# --- loader limits -------------------------------------------------------------------------


def laughs(levels: int) -> str:
    """A "billion laughs" under a bash task's ``with.env``: 10**levels strings."""
    names = "abcdefghijklmnop"[:levels]
    rows = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    rows += [f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in itertools.pairwise(names)]
    env = textwrap.indent("\n".join(rows), "      ")
    return workflow(spec=tasks(task("hello", with_="\n    command: echo\n    env:\n" + env)))


def test_billion_laughs_is_rejected_quickly(make_repo, run_validate) -> None:
    doc = laughs(9)  # 10**9 strings if expanded
    report = run_validate(make_repo({W: doc}, bash=True))
    # Aliases keep no position of their own in PyYAML's node tree, so the diagnostic
    # stands on the anchored content at which the node budget ran out: one of the
    # strings of `a`, on its line (which one depends on the traversal order).
    [found] = report.diagnostics
    strings = [pos_of(doc, '"lol"', n) for n in range(1, 11)]
    assert (found.file, found.line, found.rule, found.severity) == (W, strings[0][0], "WF103", "error")
    assert (found.line, found.column) in strings
    assert "100,000 nodes" in report.diagnostics[0].message


def test_a_few_aliases_are_fine(make_repo, run_validate) -> None:
    assert run_validate(make_repo({W: laughs(3)}, bash=True)).diagnostics == []


def test_file_too_large(make_repo, run_validate, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = workflow(metadata="description: " + "x" * 2000)  # larger than the bash component
    root = make_repo({W: doc}, bash=True)
    monkeypatch.setattr(wfctl.loader, "MAX_FILE_BYTES", len(doc) - 1)
    report = run_validate(root)
    assert where(report.diagnostics) == [(W, 1, 1, "WF104", "error")]
    assert f"{len(doc):,} bytes" in report.diagnostics[0].message
    monkeypatch.setattr(wfctl.loader, "MAX_FILE_BYTES", len(doc))  # exactly at the limit: fine
    assert run_validate(root).diagnostics == []


def menu(word: str) -> bytes:
    return workflow(metadata=f'description: "{word} menu"').encode()


@pytest.mark.parametrize("word", ["cafe", "caf\u00e9"], ids=["ascii-before", "multibyte-before"])
@pytest.mark.parametrize("bad", [b"m\0nu", b"m\xe9nu", b"m\xffnu"], ids=["nul", "latin-1", "invalid-byte"])
def test_encoding_problems_point_at_the_byte(word: str, bad: bytes, make_repo, run_validate) -> None:
    good = menu(word)
    report = run_validate(make_repo({W: good.replace(b"menu", bad)}, bash=True))
    line, column = pos_of(good.decode(), "menu")  # the bad byte stands for the "e": columns count characters
    assert where(report.diagnostics) == [(W, line, column + 1, "WF105", "error")]
    assert report.diagnostics[0].hint


@pytest.mark.parametrize("word", ["cafe", "caf\u00e9"])
def test_encoding_fixed_is_clean(word: str, make_repo, run_validate) -> None:
    assert run_validate(make_repo({W: menu(word)}, bash=True)).diagnostics == []


# A comment full of brackets makes the loader's cheap depth bound exceed the C
# composer's safe depth, so the same document goes through the event-based check.
EVENT_PATH = "# " + "[" * 20_000 + "\n"


@pytest.mark.parametrize("prefix", ["", EVENT_PATH], ids=["composer", "events"])
@pytest.mark.parametrize("levels", [5_000, 101])
def test_deep_flow_nesting(levels: int, prefix: str, make_repo, run_validate) -> None:
    # root mapping (level 1) > metadata (2) > description: [ (3) ... the 99th bracket is level 101
    doc = prefix + workflow(metadata="description: " + "[" * (levels - 2) + "]" * (levels - 2))
    report = run_validate(make_repo({W: doc}, bash=True))
    line, column = pos_of(doc, "description: [")
    assert where(report.diagnostics) == [(W, line, column + len("description: ") + 98, "WF106", "error")]


@pytest.mark.parametrize("prefix", ["", EVENT_PATH], ids=["composer", "events"])
def test_one_hundred_levels_are_fine(prefix: str, make_repo, run_validate) -> None:
    doc = prefix + workflow(metadata="description: " + "[" * 98 + "]" * 98)
    report = run_validate(make_repo({W: doc}, bash=True))
    assert [d.rule for d in report.diagnostics] == ["WF200"]  # a list is no description; but not too deep


def block_nesting(levels: int) -> str:
    """``levels`` nested block mappings under a bash task's ``with.env``."""
    keys = [" " * (2 * i) + f"k{i}:" for i in range(levels)]
    keys[-1] += " deep"
    env = textwrap.indent("\n".join(keys), "      ")
    return workflow(spec=tasks(task("hello", with_="\n    command: echo\n    env:\n" + env)))


@pytest.mark.parametrize("prefix", ["", EVENT_PATH], ids=["composer", "events"])
def test_deep_block_nesting(prefix: str, make_repo, run_validate) -> None:
    doc = prefix + block_nesting(150)
    report = run_validate(make_repo({W: doc}, bash=True))
    # root (1) > spec (2) > tasks (3) > task (4) > with (5) > env (6) > k0's mapping (7) ... level 101 holds k95
    assert where(report.diagnostics) == [(W, *pos_of(doc, "k95:"), "WF106", "error")]


def test_moderate_block_nesting_is_fine(make_repo, run_validate) -> None:
    assert run_validate(make_repo({W: block_nesting(30)}, bash=True)).diagnostics == []


def test_repo_size_limit(make_repo, run_validate, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_repo({W: workflow("big"), "workflows/other.yaml": workflow("other")}, bash=True)
    sizes = sorted((p.stat().st_size, p.relative_to(root).as_posix()) for p in root.rglob("*.yaml"))
    total = sum(size for size, _ in sizes)
    monkeypatch.setattr(wfctl.validate, "MAX_REPO_BYTES", total - 1)
    report = run_validate(root)
    assert [(d.line, d.column, d.rule, d.severity) for d in report.diagnostics] == [(1, 1, "WF110", "error")]
    assert report.diagnostics[0].file == "workflows/other.yaml"  # the file at which the total passed the limit
    assert "paths:" in report.diagnostics[0].hint
    monkeypatch.setattr(wfctl.validate, "MAX_REPO_BYTES", total)
    assert run_validate(root).diagnostics == []


def test_too_many_documents(make_repo, run_validate, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [workflow(f"w{i}") for i in range(3)]
    text = "---\n".join(docs)
    root = make_repo({W: text}, bash=True)
    monkeypatch.setenv("WFCTL_CACHE", "0")  # the cache's fingerprint covers wfctl's code, not a patched limit
    monkeypatch.setattr(wfctl.loader, "MAX_DOCUMENTS", 2)
    report = run_validate(root)
    assert where(report.diagnostics) == [(W, *pos_of(text, "apiVersion", 3), "WF107", "error")]
    assert report.diagnostics[0].message == "more than 2 documents in one file"
    monkeypatch.setattr(wfctl.loader, "MAX_DOCUMENTS", 3)
    assert run_validate(root).diagnostics == []


def test_merge_key_expansion_is_limited_too(make_repo, run_validate) -> None:
    """``<<`` merges multiply work like aliases do: 10**6 merged pairs exceed the node budget."""
    rows = ["m0: &m0 {LANG: C}"] + [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}" for i in range(1, 7)]
    env = textwrap.indent("\n".join(rows), "      ")
    doc = workflow(spec=tasks(task("hello", with_="\n    command: echo\n    env:\n" + env)))
    report = run_validate(make_repo({W: doc}, bash=True))
    assert [(d.file, d.rule, d.severity) for d in report.diagnostics] == [(W, "WF103", "error")]


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "7up", '"0"', "daily-sales", "http_get", "v1.2", "a" * 128])
def test_valid_resource_names(name: str, make_repo, run_validate) -> None:
    assert run_validate(make_repo({W: workflow(name=name)}, bash=True)).diagnostics == []


@pytest.mark.parametrize("name", ["Bad_Name", "a..b", "-a", "a-", ".a", "a.", "a/b", "caf\u00e9", '"a b"', '""', "a" * 129])
def test_invalid_resource_names(name: str, make_repo, run_validate) -> None:
    doc = workflow(name=name)
    report = run_validate(make_repo({W: doc}, bash=True))
    assert report.diagnostics  # a name can break several constraints at once: all are reported at the name
    assert set(where(report.diagnostics)) == {(W, 4, len("  name: ") + 1, "WF200", "error")}


@pytest.mark.parametrize("name", ["a", "a_1", "load_2025", "a" * 64])
def test_valid_task_names(name: str, make_repo, run_validate) -> None:
    assert run_validate(make_repo({W: workflow(spec=tasks(task(name)))}, bash=True)).diagnostics == []


@pytest.mark.parametrize("name", ["1a", "_a", "a-b", "Load", "a.b", "a" * 65])
def test_invalid_task_names(name: str, make_repo, run_validate) -> None:
    doc = workflow(spec=tasks(task(name)))
    report = run_validate(make_repo({W: doc}, bash=True))
    line, column = pos_of(doc, f"name: {name}")
    assert where(report.diagnostics) == [(W, line, column + len("name: "), "WF200", "error")]
