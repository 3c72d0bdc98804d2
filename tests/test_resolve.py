"""Resolution (wfctl.resolve): the deployable definition of each workflow.

Templates expanded, defaults applied (task > workflow defaults > component
defaults > built-in, retry merged field by field), component input defaults
filled in, group names in depends_on expanded, canonical JSON and sha256.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import BASH_COMPONENT, REPO_ROOT, component, pos_of, template, where, workflow

from wfctl import config, validate
from wfctl.model import canonical_json

W = "workflows/demo.yaml"


def resolve(root: Path) -> validate.Validation:
    result = validate.validate(config.load(root))
    assert result.report.diagnostics == []
    return result


def definition(make_repo, files: dict[str, str], name: str = "demo") -> dict:
    return resolve(make_repo(files, bash=True)).workflows[name].definition


GROUPED = workflow(metadata="description: Daily load\ntags: [sales]\ndataset: warehouse.sales", spec="""
schedule: {cron: "0 2 * * *", timezone: Asia/Seoul, start_date: 2025-01-01}
params:
  region: {type: string, default: kr}
groups:
  - name: prepare
    description: Fetch and check
    tasks:
      - name: fetch
        component: bash
        with: {command: "fetch {{ ds }}"}
      - name: check
        component: bash
        depends_on: [fetch]
        with: {command: "check"}
  - name: publish
    depends_on: [prepare]
    tasks:
      - name: push
        component: bash
        with: {command: "push"}
tasks:
  - name: start
    component: bash
    with: {command: "start"}
  - name: report
    description: Tell people
    component: bash
    depends_on: [publish, start]
    with: {command: "report"}
""")


def bash_task(group: str | None, command: str, depends_on: list[str], description: str = "") -> dict:
    return {
        "group": group,
        "description": description,
        "component": {"name": "bash", "type": "bash", "implementation": None},
        "with": {"command": command},
        "depends_on": depends_on,
        "retry": {"max_retries": 0, "delay_seconds": 300, "backoff_multiplier": 1, "max_delay_seconds": None},
        "timeout_seconds": None,
        "on_failure": "fail",
        "pool": None,
        "priority": None,
        "trigger_rule": "all_success",
    }


def test_resolved_definition_of_a_workflow_with_groups(make_repo) -> None:
    assert definition(make_repo, {W: GROUPED}) == {
        "apiVersion": "wfctl/v1",
        "kind": "Workflow",
        "metadata": {
            "name": "demo",
            "owner": "data-team",
            "description": "Daily load",
            "tags": ["sales"],
            "dataset": "warehouse.sales",
        },
        "spec": {
            "schedule": {"cron": "0 2 * * *", "timezone": "Asia/Seoul", "start_date": "2025-01-01",
                         "end_date": None, "catchup": False},
            "params": {"region": {"type": "string", "default": "kr"}},
            "groups": {
                "prepare": {"description": "Fetch and check", "tasks": ["fetch", "check"]},
                "publish": {"description": "", "tasks": ["push"]},
            },
            "tasks": {
                "fetch": bash_task("prepare", "fetch {{ ds }}", []),
                "check": bash_task("prepare", "check", ["fetch"]),
                "push": bash_task("publish", "push", ["fetch", "check"]),
                "start": bash_task(None, "start", []),
                "report": bash_task(None, "report", ["push", "start"], "Tell people"),
            },
        },
    }


def test_group_names_in_depends_on_expand_to_their_tasks(make_repo) -> None:
    tasks = definition(make_repo, {W: GROUPED})["spec"]["tasks"]
    assert tasks["report"]["depends_on"] == ["push", "start"]  # `publish` is the group of push


def test_group_depends_on_applies_to_each_of_its_tasks(make_repo) -> None:
    tasks = definition(make_repo, {W: GROUPED})["spec"]["tasks"]
    assert tasks["push"]["depends_on"] == ["fetch", "check"]  # from `publish: depends_on: [prepare]`


def test_a_task_s_own_and_its_group_s_dependencies_combine(make_repo) -> None:
    doc = GROUPED.replace('with: {command: "push"}', 'depends_on: [start]\n          with: {command: "push"}')
    tasks = definition(make_repo, {W: doc})["spec"]["tasks"]
    assert tasks["push"]["depends_on"] == ["start", "fetch", "check"]


# --- defaults ---------------------------------------------------------------------------


def layered(task: str, defaults: str, component_defaults: str) -> dict[str, str]:
    """A component and a one-task workflow, each layer with the given settings (flow mappings)."""
    comp = component("tuned", f"""
type: bash
inputs: {{type: object}}
defaults: {component_defaults}
""")
    doc = workflow(spec=f"""
defaults: {defaults}
tasks:
  - {{name: hello, component: tuned, with: {{command: echo}}{', ' + task if task else ''}}}
""")
    return {"components/tuned.yaml": comp, W: doc}


SETTINGS = [
    ("timeout_seconds", 10, 20, 30, None),
    ("pool", "task_pool", "workflow_pool", "component_pool", None),
    ("priority", 9, 5, 2, None),
    ("on_failure", "skip", "fail", "skip", "fail"),
    ("trigger_rule", "all_done", "one_success", "none_failed", "all_success"),
]


@pytest.mark.parametrize(("key", "task", "wf", "comp", "builtin"), SETTINGS, ids=[s[0] for s in SETTINGS])
@pytest.mark.parametrize("layers", ["task+workflow+component", "workflow+component", "component", "none"])
def test_defaults_precedence(key: str, task, wf, comp, builtin, layers: str, make_repo) -> None:
    def setting(value, layer: str) -> str:
        return f"{key}: {value}" if layer in layers.split("+") else ""

    files = layered(setting(task, "task"), "{" + setting(wf, "workflow") + "}", "{" + setting(comp, "component") + "}")
    resolved = definition(make_repo, files)["spec"]["tasks"]["hello"]
    expected = {"task+workflow+component": task, "workflow+component": wf, "component": comp, "none": builtin}[layers]
    assert resolved[key] == expected


def test_retry_is_merged_field_by_field(make_repo) -> None:
    files = layered("retry: {delay_seconds: 5}",
                    "{retry: {max_retries: 3, delay_seconds: 60}}",
                    "{retry: {max_retries: 1, backoff_multiplier: 2}}")
    assert definition(make_repo, files)["spec"]["tasks"]["hello"]["retry"] == {
        "max_retries": 3,  # workflow beats component
        "delay_seconds": 5,  # task beats workflow
        "backoff_multiplier": 2,  # only the component sets it
        "max_delay_seconds": None,  # built-in
    }


HTTP = component("http_get", """
type: http
inputs:
  type: object
  required: [url]
  properties:
    url: {type: string}
    method: {enum: [GET, POST], default: GET}
    headers: {type: object, default: {Accept: application/json}}
  additionalProperties: false
""")


@pytest.mark.parametrize(("with_", "expected"), [
    ('{url: "https://x"}', {"url": "https://x", "method": "GET", "headers": {"Accept": "application/json"}}),
    ('{url: "https://x", method: POST, headers: {}}', {"url": "https://x", "method": "POST", "headers": {}}),
])
def test_component_input_defaults_fill_with(with_: str, expected: dict, make_repo) -> None:
    doc = workflow(spec=f"tasks:\n  - {{name: get, component: http_get, with: {with_}}}\n")
    assert definition(make_repo, {"components/http.yaml": HTTP, W: doc})["spec"]["tasks"]["get"]["with"] == expected


def test_component_input_defaults_are_checked_too(make_repo, run_validate) -> None:
    """Defaults are filled in before ``with:`` is checked against ``inputs``."""
    bad = HTTP.replace("default: GET", "default: PATCH")
    doc = workflow(spec='tasks:\n  - {name: get, component: http_get, with: {url: "https://x"}}\n')
    report = run_validate(make_repo({"components/http.yaml": bad, W: doc}, bash=True))
    assert [d.rule for d in report.diagnostics] == ["WF403"]


def test_implementation_is_carried_into_the_task(make_repo) -> None:
    comp = component("loader", 'type: python\nimplementation: {python_callable: "acme.load:run"}\ninputs: {type: object}\n')
    doc = workflow(spec="tasks:\n  - {name: load, component: loader, with: {table: t}}\n")
    task = definition(make_repo, {"components/loader.yaml": comp, W: doc})["spec"]["tasks"]["load"]
    assert task["component"] == {"name": "loader", "type": "python", "implementation": {"python_callable": "acme.load:run"}}
    assert task["with"] == {"table": "t"}


# --- templates ----------------------------------------------------------------------------


TEMPLATE = template("table-refresh", """
parameters:
  type: object
  required: [table, retries]
  properties:
    table: {type: string}
    retries: {type: integer}
    conn_id: {type: string, default: warehouse}
    full: {type: boolean, default: false}
workflow:
  schedule: {cron: "0 3 * * *", timezone: UTC, start_date: 2025-01-01, catchup: false}
  params:
    full_refresh: {type: boolean, default: "${{ values.full }}"}
  defaults:
    retry: {max_retries: "${{ values.retries }}", delay_seconds: 300}
    pool: "${{ values.conn_id }}_pool"
  tasks:
    - name: stage
      component: bash
      with:
        command: "stage ${{ values.table }} x${{ values.retries }} on ${{values.conn_id}} for {{ ds }} {{ params.full_refresh }}"
    - name: publish
      component: bash
      depends_on: [stage]
      with: {command: "publish ${{ values.table }}", env: {RUN: "{{ run_id }}", TABLE: "${{ values.table }}"}}
""")


def templated(overrides: str = "") -> dict[str, str]:
    doc = workflow(spec="template: table-refresh\nvalues: {table: customers, retries: 3}\n" + textwrap.dedent(overrides))
    return {"templates/table-refresh.yaml": TEMPLATE, W: doc}


def test_lone_placeholder_keeps_the_value_type(make_repo) -> None:
    spec = definition(make_repo, templated())["spec"]
    assert spec["tasks"]["stage"]["retry"]["max_retries"] == 3
    assert isinstance(spec["tasks"]["stage"]["retry"]["max_retries"], int)
    assert spec["params"]["full_refresh"]["default"] is False  # a parameter default, as a boolean


def test_embedded_placeholders_are_interpolated_and_airflow_jinja_passes_through(make_repo) -> None:
    tasks = definition(make_repo, templated())["spec"]["tasks"]
    assert tasks["stage"]["with"]["command"] == "stage customers x3 on warehouse for {{ ds }} {{ params.full_refresh }}"
    assert tasks["publish"]["with"] == {"command": "publish customers", "env": {"RUN": "{{ run_id }}", "TABLE": "customers"}}
    assert tasks["stage"]["pool"] == "warehouse_pool"
    assert tasks["publish"]["depends_on"] == ["stage"]


def test_template_origin_is_recorded(make_repo) -> None:
    assert definition(make_repo, templated())["template"] == {
        "name": "table-refresh", "values": {"table": "customers", "retries": 3}}


def test_workflow_overrides_next_to_template_deep_merge(make_repo) -> None:
    spec = definition(make_repo, templated("""
        schedule: {cron: "0 5 * * 1-5", timezone: America/New_York}
        defaults:
          retry: {delay_seconds: 10}
          timeout_seconds: 60
    """))["spec"]
    assert spec["schedule"] == {"cron": "0 5 * * 1-5", "timezone": "America/New_York", "start_date": "2025-01-01",
                                "end_date": None, "catchup": False}
    stage = spec["tasks"]["stage"]
    assert stage["retry"] == {"max_retries": 3, "delay_seconds": 10, "backoff_multiplier": 1, "max_delay_seconds": None}
    assert (stage["timeout_seconds"], stage["pool"]) == (60, "warehouse_pool")


def test_partial_schedule_override_keeps_the_template_cron(make_repo) -> None:
    """Overriding only the timezone is a deep merge too: the cron still comes from the template."""
    schedule = definition(make_repo, templated("schedule: {timezone: Europe/Berlin}\n"))["spec"]["schedule"]
    assert schedule == {"cron": "0 3 * * *", "timezone": "Europe/Berlin", "start_date": "2025-01-01",
                        "end_date": None, "catchup": False}


def test_template_expansion_is_checked_against_the_workflow_schema(make_repo, run_validate) -> None:
    """A value of the wrong type for its place is reported where the template put it."""
    files = templated()
    bad = TEMPLATE.replace('max_retries: "${{ values.retries }}"', 'max_retries: "${{ values.table }}"')
    files["templates/table-refresh.yaml"] = bad
    report = run_validate(make_repo(files, bash=True))
    assert where(report.diagnostics) == [
        ("templates/table-refresh.yaml", *pos_of(bad, '"${{ values.table }}"'), "WF200", "error")]


def test_two_workflows_from_one_template_are_independent(make_repo) -> None:
    files = templated()
    files["workflows/other.yaml"] = workflow("other", spec="template: table-refresh\nvalues: {table: orders, retries: 1}\n")
    workflows = resolve(make_repo(files, bash=True)).workflows
    assert workflows["demo"].definition["spec"]["tasks"]["publish"]["with"]["command"] == "publish customers"
    assert workflows["other"].definition["spec"]["tasks"]["publish"]["with"]["command"] == "publish orders"
    assert workflows["other"].definition["spec"]["tasks"]["stage"]["retry"]["max_retries"] == 1


# --- canonical JSON and sha256 ---------------------------------------------------------------


REORDERED = """\
spec:
  tasks:
    - with: {command: "report", }
      depends_on: [publish, start]
      component: bash
      description: Tell people
      name: report
    - {with: {command: "start"}, component: bash, name: start}
  groups:
    - tasks:
        - {with: {command: "fetch {{ ds }}"}, component: bash, name: fetch}
        - name: check
          with: {command: "check"}
          depends_on: [fetch]
          component: bash
      description: Fetch and check
      name: prepare
    - name: publish
      tasks: [{name: push, component: bash, with: {command: "push"}}]
      depends_on: [prepare]
  params: {region: {default: kr, type: string}}
  schedule: {start_date: 2025-01-01, timezone: Asia/Seoul, cron: "0 2 * * *"}
metadata:
  dataset: warehouse.sales
  tags: [sales]
  description: Daily load
  owner: data-team
  name: demo
kind: Workflow
apiVersion: wfctl/v1
"""


def test_sha256_is_stable_across_runs_and_key_order(make_repo) -> None:
    first = resolve(make_repo({W: GROUPED}, bash=True)).workflows["demo"]
    again = resolve(make_repo({W: GROUPED}, bash=True)).workflows["demo"]
    reordered = resolve(make_repo({W: REORDERED}, bash=True)).workflows["demo"]
    assert first.sha256 == again.sha256 == reordered.sha256
    assert first.canonical == reordered.canonical


def test_canonical_json_is_sorted_compact_utf8(make_repo) -> None:
    doc = GROUPED.replace("Daily load", "Tägliche Ladung")
    resolved = resolve(make_repo({W: doc}, bash=True)).workflows["demo"]
    expected = json.dumps(resolved.definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert resolved.canonical == expected == canonical_json(resolved.definition)
    assert "Tägliche".encode() in resolved.canonical
    assert resolved.sha256 == hashlib.sha256(expected).hexdigest()


def test_sha256_changes_with_content(make_repo) -> None:
    first = resolve(make_repo({W: GROUPED}, bash=True)).workflows["demo"]
    changed = resolve(make_repo({W: GROUPED.replace('"push"', '"push --force"')}, bash=True)).workflows["demo"]
    assert first.sha256 != changed.sha256


def test_sha256_changes_when_a_used_component_changes(make_repo) -> None:
    first = resolve(make_repo({W: GROUPED}, bash=True)).workflows["demo"]
    tuned = BASH_COMPONENT + "  defaults: {timeout_seconds: 300}\n"
    changed = resolve(make_repo({W: GROUPED, "components/bash.yaml": tuned})).workflows["demo"]
    assert first.sha256 != changed.sha256


# --- what is (not) resolved ----------------------------------------------------------------


def test_a_broken_workflow_is_left_out_but_others_resolve(make_repo) -> None:
    root = make_repo({W: GROUPED, "workflows/broken.yaml": workflow("broken", spec="tasks:\n  - {name: x, component: nope}\n")},
                     bash=True)
    result = validate.validate(config.load(root))
    assert [d.rule for d in result.report.diagnostics] == ["WF400"]
    assert set(result.workflows) == {"demo"}


# --- the bundled example repo ------------------------------------------------------------------


def example_workflow_names() -> set[str]:
    names = set()
    for path in (REPO_ROOT / "workflows").rglob("*.y*ml"):
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "Workflow":
                names.add(doc["metadata"]["name"])
    return names


def test_the_example_repo_resolves_clean() -> None:
    result = validate.validate(config.load(REPO_ROOT))
    assert result.report.diagnostics == []
    names = example_workflow_names()
    assert names  # the example repo has workflows
    assert set(result.workflows) == names
    for resolved in result.workflows.values():
        assert resolved.source_path.startswith("workflows/")
        assert resolved.definition["spec"]["tasks"]
        assert len(resolved.sha256) == 64
