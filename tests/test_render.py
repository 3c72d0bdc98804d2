"""Rendering workflows as Airflow DAG files (wfctl.airflow_render), checked in a real Airflow.

The first tests need no Airflow. The others run the Airflow of ``tests/airflow_env.py``
(``apache-airflow==3.3.2`` in its own venv) in subprocesses:

* one DagBag load of every rendered file (the example repo plus synthetic workflows),
  compared with what the definitions say;
* ``dag.test()`` of the bash-only ``hello-bash`` example (the golden end-to-end run);
* ``dag.test()`` of a synthetic workflow exercising ``on_failure: skip`` (a failing
  command, a failure after a retry, a timeout, an HTTP 404), the python, http and
  ``implementation.python_callable`` mappings, and Jinja in their inputs.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from airflow_env import AIRFLOW_VERSION, airflow_env, run_airflow
from conftest import BASH_COMPONENT, REPO_ROOT, _write, component, workflow

from wfctl import airflow_render
from wfctl import config as config_mod
from wfctl import validate as validate_mod
from wfctl.airflow_render import RenderError, dag_file_name, render_dag
from wfctl.errors import WfError

pytest_plugins = ("airflow_env",)  # its fixtures: airflow_python_path, airflow_home

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("WFCTL_UPDATE_GOLDEN") == "1"


# --- workflows to render ------------------------------------------------------------------


def resolve(root: Path) -> dict[str, Any]:
    """name -> ResolvedWorkflow of a repo that must validate cleanly."""
    result = validate_mod.validate(config_mod.load(root))
    errors = [d for d in result.report.diagnostics if d.severity == "error"]
    assert not errors, errors
    return dict(result.workflows)


def example_workflows() -> dict[str, Any]:
    return resolve(REPO_ROOT)


PYCALL = component("pycall", """
type: python
inputs:
  type: object
  required: [callable]
  properties: {callable: {type: string}, kwargs: {type: object}}
""")
HTTP = component("http_call", """
type: http
inputs:
  type: object
  required: [url]
  properties:
    url: {type: string}
    method: {enum: [GET, POST, PUT, DELETE], default: GET}
    path_params: {type: object}
    query_params: {type: object}
    request_body: {}
""")
CUSTOM = component("custom", """
type: custom
implementation: {python_callable: "builtins:dict"}
inputs: {type: object}
""")
SQL = component("warehouse-row-check", """
type: sql
inputs: {type: object, required: [sql], properties: {sql: {type: string}, conn_id: {type: string}}}
""")
UNMAPPED = component("spark_job", """
type: spark
inputs: {type: object}
""")

# Corner cases the examples do not have: a preset, a date-only end date, a date-time start
# without offset, an unscheduled workflow with a required param, a check by component name,
# templates-file look-alikes, an http timeout, and the on_failure: skip trigger-rule relaxation.
SYNTHETIC = {
    "w/corners.yaml": workflow("corners.v2", """
schedule: {cron: "@annually", timezone: Europe/Berlin, start_date: "2024-03-31T02:30:00", end_date: 2030-06-30, catchup: true}
params:
  label: {type: string, default: "{{ ds }}", minLength: 1}
defaults: {retry: {max_retries: 2, delay_seconds: 1.5, backoff_multiplier: 3}}
groups:
  - name: checks
    description: "Quotes ' and \\" and a {{ brace }}"
    depends_on: [flaky]
    tasks:
      - {name: rows, component: warehouse-row-check, with: {sql: "select 1 from t where d = '{{ ds }}'", conn_id: wh}}
      - {name: script, component: bash, with: {command: "echo run.sh"}, trigger_rule: one_success}
tasks:
  - {name: flaky, component: bash, on_failure: skip, with: {command: "exit 1"}, pool: tiny, priority: 10}
  - {name: after, component: bash, depends_on: [flaky, checks], trigger_rule: none_failed_min_one_success,
     with: {command: "echo after", env: {FILE: "x.sql"}}}
  - {name: always, component: bash, depends_on: [flaky], trigger_rule: all_done, with: {command: "echo always"}}
"""),
    "w/manual.yaml": workflow("manual-only", """
params:
  customer: {type: string, pattern: "^C-[0-9]+$", description: No default; required at trigger time}
  limit: {type: integer, default: 5, minimum: 1, maximum: 10}
tasks:
  - {name: call, component: pycall, with: {callable: "json:dumps", kwargs: {obj: "{{ params.customer }}"}}}
  - {name: impl, component: custom, depends_on: [call], with: {x: "{{ ds }}"}, timeout_seconds: 12.5}
  - {name: fetch, component: http_call, depends_on: [call], with: {url: "https://example.com/{id}", path_params: {id: 7}}}
""", metadata="description: A manual workflow\ntags: [b, a]"),
}


def synthetic_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    _write(root, {"components/bash.yaml": BASH_COMPONENT, "components/pycall.yaml": PYCALL,
                  "components/http.yaml": HTTP, "components/custom.yaml": CUSTOM, "components/sql.yaml": SQL,
                  "components/unmapped.yaml": UNMAPPED, **files})
    return root


def render(wf: Any, version: int | None = 7, source: str = "CODE") -> str:
    return render_dag(wf.definition, source=source, version=version, sha256=wf.sha256)


@pytest.fixture(scope="module")
def workflows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every example workflow plus the synthetic ones."""
    synthetic = resolve(synthetic_repo(tmp_path_factory.mktemp("synthetic"), SYNTHETIC))
    examples = example_workflows()
    assert len(examples) >= 5 and not set(examples) & set(synthetic)
    return {**examples, **synthetic}


@pytest.fixture(scope="module")
def dag_folder(workflows: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dags")
    for name, wf in workflows.items():
        (folder / dag_file_name(name)).write_text(render(wf), encoding="utf-8")
    return folder


# --- without Airflow ------------------------------------------------------------------------


def test_file_name_is_the_workflow_name() -> None:
    assert dag_file_name("daily-sales") == "daily-sales.py"
    assert dag_file_name("corners.v2") == "corners.v2.py"


def test_rendering_is_deterministic(workflows: dict[str, Any]) -> None:
    for wf in workflows.values():
        first = render(wf)
        assert render(wf) == first
        # the same content in another key order renders to the same bytes
        shuffled = json.loads(json.dumps(wf.definition), object_pairs_hook=lambda pairs: dict(reversed(pairs)))
        assert render_dag(shuffled, source="CODE", version=7, sha256=wf.sha256) == first


def test_header_names_airflow_dag_and_provenance(workflows: dict[str, Any]) -> None:
    wf = workflows["daily-sales"]
    text = render(wf, version=12, source="MANUAL")
    header = ast.get_docstring(ast.parse(text)) or ""
    assert "airflow" in header.lower() and "DAG" in header
    assert "generated by wfctl — do not edit" in header
    assert "source: MANUAL" in header and "version: 12" in header and f"sha256: {wf.sha256}" in header
    assert "version: none" in render(wf, version=None)


def test_file_is_valid_python_and_needs_no_wfctl(workflows: dict[str, Any]) -> None:
    for name, wf in workflows.items():
        tree = ast.parse(render(wf), filename=dag_file_name(name))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported <= {"__future__", "importlib", "json", "logging", "urllib", "datetime", "pendulum", "airflow"}


def test_embedded_data_reads_back_exactly(workflows: dict[str, Any]) -> None:
    for wf in workflows.values():
        text = render(wf)
        literal = text.split("\nWFCTL_DAG = ", 1)[1].split("\n\n\n", 1)[0]
        data = airflow_render.dag_data(wf.definition, source="CODE", version=7, sha256=wf.sha256)
        assert ast.literal_eval(literal) == data
        assert airflow_render.py_literal(data) == literal


def test_jinja_passes_through_untouched(workflows: dict[str, Any]) -> None:
    data = airflow_render.dag_data(workflows["daily-sales"].definition, source="CODE", version=1, sha256="x")
    assert data["tasks"]["fetch_source"]["args"]["request_body"]["date"] == "{{ ds }}"
    assert "{{ params.min_rows }}" in data["tasks"]["check_source"]["args"]["sql"]


def test_unknown_component_type_is_a_render_error(tmp_path: Path) -> None:
    wfs = resolve(synthetic_repo(tmp_path, {"w.yaml": workflow("no-operator", """
tasks:
  - {name: ok, component: bash, with: {command: "true"}}
  - {name: job, component: bash, with: {command: "true"}}
""")}))
    definition = copy.deepcopy(wfs["no-operator"].definition)
    definition["spec"]["tasks"]["job"]["component"] = {"name": "spark_job", "type": "spark", "implementation": None}
    with pytest.raises(RenderError) as caught:
        render_dag(definition, source="CODE", version=1, sha256="x")
    err = caught.value
    assert isinstance(err, WfError) and err.code == "WF815"
    assert "spark" in err.message and "'job'" in err.message
    assert err.hint == "give the component an implementation.python_callable, or use one of bash/python/sql/http"
    assert err.where == ("task", "job")


def test_scheduled_param_without_default_is_a_render_error(tmp_path: Path) -> None:
    wfs = resolve(synthetic_repo(tmp_path, {"w.yaml": workflow("needs-default", """
schedule: {cron: "0 1 * * *"}
params: {who: {type: string, default: me}}
tasks: [{name: a, component: bash, with: {command: "true"}}]
""")}))
    definition = copy.deepcopy(wfs["needs-default"].definition)
    del definition["spec"]["params"]["who"]["default"]
    with pytest.raises(RenderError, match="param 'who' has no default") as caught:
        render_dag(definition, source="CODE", version=1, sha256="x")
    assert caught.value.where == ("param", "who")


def test_dates_and_presets_are_normalised(workflows: dict[str, Any]) -> None:
    dag = airflow_render.dag_data(workflows["corners.v2"].definition, source="CODE", version=1, sha256="x")["dag"]
    assert (dag["cron"], dag["timezone"]) == ("@yearly", "Europe/Berlin")
    assert (dag["start_date"], dag["end_date"]) == ("2024-03-31T02:30:00", "2030-06-30T23:59:59.999999")
    manual = airflow_render.dag_data(workflows["manual-only"].definition, source="CODE", version=1, sha256="x")["dag"]
    assert (manual["cron"], manual["start_date"], manual["timezone"]) == (None, "2025-01-01", "UTC")


def test_golden_file(tmp_path: Path) -> None:
    """The whole text of one small rendering, so a change to the file format shows in review."""
    wfs = resolve(synthetic_repo(tmp_path, {"w.yaml": workflow("golden", """
schedule: {cron: "30 6 * * 1-5", timezone: Asia/Seoul, start_date: 2025-02-03}
params: {region: {type: string, default: kr, enum: [kr, jp]}}
defaults: {retry: {max_retries: 2, delay_seconds: 60, backoff_multiplier: 2, max_delay_seconds: 600}, timeout_seconds: 300}
groups:
  - {name: load, tasks: [{name: extract, component: bash, with: {command: "echo {{ ds }} {{ params.region }}"}}]}
tasks:
  - {name: notify, component: pycall, depends_on: [load], on_failure: skip,
     with: {callable: "acme.notify:send", kwargs: {text: "done {{ ds }}"}}}
""", metadata="description: The golden file")}))
    text = render(wfs["golden"], version=3)
    golden = GOLDEN / "golden.py.txt"
    if UPDATE_GOLDEN:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), "rendering changed: WFCTL_UPDATE_GOLDEN=1 rewrites the golden file"


# --- a real Airflow: DagBag ---------------------------------------------------------------

PROBE = r'''
import importlib.util, json, sys
from airflow.dag_processing.dagbag import DagBag

def seconds(value):
    return None if value is None else value.total_seconds()

bag = DagBag(dag_folder=sys.argv[1], safe_mode=True)
out = {"wfctl_importable": importlib.util.find_spec("wfctl") is not None,
       "import_errors": dict(bag.import_errors), "dags": {}}
for dag_id, dag in sorted(bag.dags.items()):
    tt = dag.timetable
    tasks = {}
    for t in dag.tasks:
        tasks[t.task_id] = {
            "operator": type(t).__name__,
            "skip_on_failure": any(c.__name__ == "_WfctlSkipOnFinalFailure" for c in type(t).__mro__),
            "upstream": sorted(t.upstream_task_ids),
            "retries": t.retries,
            "retry_delay": seconds(t.retry_delay),
            "retry_exponential_backoff": t.retry_exponential_backoff,
            "max_retry_delay": seconds(t.max_retry_delay),
            "execution_timeout": seconds(t.execution_timeout),
            "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
            "pool": t.pool,
            "priority_weight": t.priority_weight,
            "weight_rule": str(getattr(t.weight_rule, "value", t.weight_rule)),
            "owner": t.owner,
            "template_ext": list(t.template_ext),
            "fields": {f: getattr(t, f) for f in t.template_fields},
        }
    out["dags"][dag_id] = {
        "fileloc": dag.fileloc,
        "description": dag.description,
        "doc_md": dag.doc_md,
        "tags": sorted(dag.tags),
        "timetable": type(tt).__name__,
        "cron": getattr(tt, "expression", None),
        "timetable_timezone": str(getattr(tt, "timezone", None)),
        "timezone": str(dag.timezone),
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "end_date": dag.end_date.isoformat() if dag.end_date else None,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "params": {k: {"value": p.value, "schema": p.schema, "description": p.description}
                   for k, p in dag.params.items()},
        "tasks": tasks,
    }
with open(sys.argv[2], "w") as fh:
    json.dump(out, fh, default=lambda o: repr(o))
'''


@pytest.fixture(scope="module")
def dagbag(airflow_python_path: Path, dag_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One DagBag load of every rendered file, as JSON (the structure checks share it)."""
    home = tmp_path_factory.mktemp("airflow-parse")
    result = home / "dagbag.json"
    proc = run_airflow(airflow_python_path, PROBE, str(dag_folder), str(result),
                       env=airflow_env(home, dag_folder), cwd=home)
    assert proc.returncode == 0 and result.exists(), f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    data: dict[str, Any] = json.loads(result.read_text())
    return data


def test_airflow_imports_every_file_without_wfctl(dagbag: dict[str, Any], workflows: dict[str, Any]) -> None:
    assert dagbag["import_errors"] == {}
    assert dagbag["wfctl_importable"] is False
    assert sorted(dagbag["dags"]) == sorted(workflows)  # safe mode found every file
    for name, dag in dagbag["dags"].items():
        assert Path(dag["fileloc"]).name == dag_file_name(name)


def _when(value: str | None, tz: str, *, end: bool = False) -> str | None:
    """What Airflow should hold for a schedule date: aware, in UTC (as Airflow stores it)."""
    if value is None:
        return None
    zone = ZoneInfo(tz)
    if len(value) == 10:
        moment = datetime.combine(date.fromisoformat(value), time.max if end else time.min, tzinfo=zone)
    else:
        parsed = datetime.fromisoformat(value)
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    return moment.astimezone(UTC).isoformat()


def _operator(task: dict[str, Any]) -> str:
    component = task["component"]
    if component["implementation"] or component["type"] in ("python", "http"):
        return "PythonOperator"
    if component["type"] == "bash":
        return "BashOperator"
    assert component["type"] == "sql"
    check = "check" in re.split(r"[-_.]", component["name"]) or task["with"].get("check") is True
    return "SQLCheckOperator" if check else "SQLExecuteQueryOperator"


def expected_tasks(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Airflow tasks a definition should become, worked out from the definition alone."""
    tasks = definition["spec"]["tasks"]

    def task_id(name: str) -> str:
        group = tasks[name]["group"]
        return f"{group}.{name}" if group else name

    skippable = {name for name, task in tasks.items() if task["on_failure"] == "skip"}
    out = {}
    for name, task in tasks.items():
        retry = task["retry"]
        rule = task["trigger_rule"]
        if skippable & set(task["depends_on"]) and rule in ("all_success", "none_failed_min_one_success"):
            rule = "none_failed"  # a skipped (failed) upstream counts as done: see airflow_render
        out[task_id(name)] = {
            "operator": _operator(task),
            "skip_on_failure": name in skippable,
            "upstream": sorted(task_id(up) for up in task["depends_on"]),
            "retries": retry["max_retries"],
            "retry_delay": float(retry["delay_seconds"]),
            "retry_exponential_backoff": retry["backoff_multiplier"] if retry["backoff_multiplier"] > 1 else 0,
            "max_retry_delay": None if retry["max_delay_seconds"] is None else float(retry["max_delay_seconds"]),
            "execution_timeout": None if task["timeout_seconds"] is None else float(task["timeout_seconds"]),
            "trigger_rule": rule,
            "pool": task["pool"] or "default_pool",
            "priority_weight": task["priority"] or 1,
            "weight_rule": "absolute" if task["priority"] else "downstream",
            "owner": definition["metadata"]["owner"],
            "template_ext": [],
        }
    return out


def test_dag_settings_match_the_definitions(dagbag: dict[str, Any], workflows: dict[str, Any]) -> None:
    for name, wf in workflows.items():
        meta, spec = wf.definition["metadata"], wf.definition["spec"]
        dag = dagbag["dags"][name]
        schedule = spec["schedule"]
        tz = (schedule or {}).get("timezone") or "UTC"
        assert dag["description"] == (meta["description"] or None), name
        assert wf.sha256 in dag["doc_md"], name
        assert dag["tags"] == sorted(meta["tags"]), name
        assert dag["timezone"] == tz, name
        assert dag["max_active_runs"] == 1, name
        if schedule is None:
            assert (dag["timetable"], dag["catchup"]) == ("NullTimetable", False), name
            assert dag["start_date"] == _when("2025-01-01", "UTC"), name
        else:
            cron = {"@annually": "@yearly", "@midnight": "@daily"}.get(schedule["cron"], schedule["cron"])
            presets = {"@yearly": "0 0 1 1 *", "@daily": "0 0 * * *", "@hourly": "0 * * * *",
                       "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *"}
            assert dag["timetable"] == "CronDataIntervalTimetable", name
            assert (dag["cron"], dag["timetable_timezone"]) == (presets.get(cron, cron), tz), name
            assert dag["start_date"] == _when(schedule["start_date"] or "2025-01-01", tz), name
            assert dag["end_date"] == _when(schedule["end_date"], tz, end=True), name
            assert dag["catchup"] is schedule["catchup"], name
        params = {k: {"value": p.get("default", "NOTSET"), "description": p.get("description"),
                      "schema": {s: v for s, v in p.items() if s not in ("default", "description")}}
                  for k, p in spec["params"].items()}
        got = {k: {**p, "value": "NOTSET" if "NOTSET" in repr(p["value"]) else p["value"]}
               for k, p in dag["params"].items()}
        assert got == params, name


def test_tasks_match_the_definitions(dagbag: dict[str, Any], workflows: dict[str, Any]) -> None:
    for name, wf in workflows.items():
        got = {tid: {k: v for k, v in task.items() if k != "fields"} for tid, task in dagbag["dags"][name]["tasks"].items()}
        assert got == expected_tasks(wf.definition), name


def test_operator_inputs_keep_their_jinja(dagbag: dict[str, Any], workflows: dict[str, Any]) -> None:
    for name, wf in workflows.items():
        tasks = wf.definition["spec"]["tasks"]
        for tid, task in dagbag["dags"][name]["tasks"].items():
            source = tasks[tid.split(".")[-1]]
            fields, inputs = task["fields"], source["with"]
            if task["operator"] == "BashOperator":
                assert fields["bash_command"] == inputs["command"], tid
                assert fields["env"] == inputs.get("env"), tid
            elif task["operator"].startswith("SQL"):
                assert (fields["sql"], fields["conn_id"]) == (inputs["sql"], inputs.get("conn_id")), tid
            elif source["component"]["implementation"]:
                assert fields["op_kwargs"] == {"wfctl_target": source["component"]["implementation"]["python_callable"],
                                               "wfctl_kwargs": inputs}, tid
            elif source["component"]["type"] == "python":
                assert fields["op_kwargs"] == {"wfctl_target": inputs["callable"],
                                               "wfctl_kwargs": inputs.get("kwargs", {})}, tid
            else:
                assert fields["op_kwargs"]["url"] == inputs["url"], tid
                assert fields["op_kwargs"].get("request_body") == inputs.get("request_body"), tid
                assert fields["op_kwargs"].get("query_params") == inputs.get("query_params"), tid


# --- a real Airflow: dag.test() -----------------------------------------------------------

RUN = r'''
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1], safe_mode=True)
assert not bag.import_errors, bag.import_errors
dag_run = bag.dags[sys.argv[2]].test()
result = {"state": str(getattr(dag_run.state, "value", dag_run.state)),
          "logical_date": dag_run.logical_date.isoformat() if dag_run.logical_date else None,
          "run_id": dag_run.run_id,
          "tasks": {ti.task_id: {"state": str(getattr(ti.state, "value", ti.state)), "try_number": ti.try_number}
                    for ti in dag_run.get_task_instances()}}
with open(sys.argv[3], "w") as fh:
    json.dump(result, fh)
'''


def dag_test(python: Path, home: Path, folder: Path, dag_id: str) -> tuple[dict[str, Any], str]:
    """Run ``dag.test()`` of one rendered DAG; (result, the run's log)."""
    result = folder.parent / f"{dag_id}.result.json"
    proc = run_airflow(python, RUN, str(folder), dag_id, str(result), env=airflow_env(home, folder), cwd=folder.parent)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and result.exists(), log[-5000:]
    data: dict[str, Any] = json.loads(result.read_text())
    return data, log


@pytest.mark.slow
def test_hello_bash_runs_end_to_end(airflow_python_path: Path, airflow_home: Path, tmp_path: Path) -> None:
    wf = example_workflows()["hello-bash"]
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / dag_file_name("hello-bash")).write_text(render(wf), encoding="utf-8")
    result, log = dag_test(airflow_python_path, airflow_home, folder, "hello-bash")
    assert result["tasks"] == {tid: {"state": "success", "try_number": 1}
                               for tid in ("say_hello", "work.print_date", "work.nap", "say_goodbye")}, log[-5000:]
    assert result["state"] == "success"
    assert f"hello from wfctl, run {result['run_id']}" in log  # Jinja rendered by Airflow
    assert "rested" in log


class _Recorder(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        self.server.requests.append({"method": self.command, "path": self.path, "body": body,  # type: ignore[attr-defined]
                                     "content_type": self.headers.get("Content-Type")})
        status = 200 if self.path.startswith("/items/") else 404
        payload = b'{"ok": true}' if status == 200 else b"no such thing"
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_on_failure_skip_and_the_other_mappings_run(airflow_python_path: Path, airflow_home: Path, tmp_path: Path,
                                                     http_server: ThreadingHTTPServer) -> None:
    base = f"http://127.0.0.1:{http_server.server_address[1]}"
    wfs = resolve(synthetic_repo(tmp_path / "repo", {"w.yaml": workflow("skip-demo", f"""
defaults: {{retry: {{max_retries: 0, delay_seconds: 0}}, timeout_seconds: 60}}
tasks:
  - {{name: greet, component: bash,
     with: {{command: 'test "$GREETING" = hi && echo "$GREETING {{{{ ds }}}}"', env: {{GREETING: hi}}}}}}
  - {{name: script_name, component: bash, with: {{command: "echo looks-like-a-template.sh"}}}}
  - {{name: broken, component: bash, on_failure: skip, with: {{command: "exit 1"}}}}
  - {{name: broken_twice, component: bash, on_failure: skip, retry: {{max_retries: 1}}, with: {{command: "exit 3"}}}}
  - {{name: too_slow, component: bash, on_failure: skip, timeout_seconds: 1, with: {{command: "sleep 30"}}}}
  - {{name: after_broken, component: bash, depends_on: [broken, broken_twice, too_slow], with: {{command: "echo after"}}}}
  - {{name: call, component: pycall, with: {{callable: "json:dumps", kwargs: {{obj: {{day: "{{{{ ds }}}}"}}}}}}}}
  - {{name: impl, component: custom, with: {{x: "{{{{ ds }}}}"}}}}
  - {{name: post, component: http_call, with: {{url: "{base}/items/{{item}}", method: POST, path_params: {{item: "a b"}},
      query_params: {{day: "{{{{ ds }}}}", n: 2}}, request_body: {{run: "{{{{ run_id }}}}"}}}}}}
  - {{name: missing, component: http_call, on_failure: skip, with: {{url: "{base}/missing"}}}}
  - {{name: chained, component: bash, depends_on: [after_broken], with: {{command: "echo fine"}}}}
  - {{name: done, component: bash, depends_on: [chained, call, impl, post, missing, greet, script_name],
      with: {{command: "echo done"}}}}
""")}))
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "skip-demo.py").write_text(render(wfs["skip-demo"]), encoding="utf-8")
    result, log = dag_test(airflow_python_path, airflow_home, folder, "skip-demo")
    states = {tid: ti["state"] for tid, ti in result["tasks"].items()}
    skipped = {"broken", "broken_twice", "too_slow", "missing"}
    assert states == {tid: "skipped" if tid in skipped else "success" for tid in states}, log[-8000:]
    assert len(states) == 12
    assert result["tasks"]["broken_twice"]["try_number"] == 2  # failed, retried, then skipped
    assert result["tasks"]["broken"]["try_number"] == 1
    assert result["state"] == "success"
    ds = (result["logical_date"] or "")[:10]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", ds)
    requests = sorted(http_server.requests, key=lambda r: r["path"])  # type: ignore[attr-defined]
    assert requests == [
        {"method": "POST", "path": f"/items/a%20b?day={ds}&n=2",
         "body": json.dumps({"run": result["run_id"]}), "content_type": "application/json"},
        {"method": "GET", "path": "/missing", "body": None, "content_type": None},
    ]
    assert f"hi {ds}" in log
    assert "looks-like-a-template.sh" in log
    assert "on_failure: skip" in log
    assert f"POST {base}/items/a%20b?day={ds}&n=2" in log and "HTTP 200" in log  # the http task's own log lines


def test_airflow_version_is_pinned() -> None:
    requirements = (REPO_ROOT / ".ci" / "airflow-requirements.txt").read_text()
    assert f"apache-airflow=={AIRFLOW_VERSION}" in requirements.split()
