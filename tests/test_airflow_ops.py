"""Airflow operations (wfctl.airflow_client) against a real Airflow 3.3.2.

The first tests need no Airflow: params and conf (check_params, run_conf), settings,
and how HTTP failures become WF809 errors, against a tiny standard-library server.

The others (marked slow) use the session's ``airflow_server`` (tests/airflow_server.py):
workflows are written as YAML, validated and rendered by wfctl into its DAG folder, then
triggered, listed, stopped, backfilled, paused and unpaused through ``AirflowClient``,
and every error path (bad credentials, a role without rights, unreachable, unknown DAG
or run, 409, 400, 422) is checked to be a WF809 with a hint and no secret in it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from airflow_server import AirflowServer, free_port, poll, wait_for_dag, wait_for_run_state
from conftest import BASH_COMPONENT, _write, workflow

from wfctl import config as config_mod
from wfctl import validate as validate_mod
from wfctl.airflow_client import (
    RETRIES,
    AirflowClient,
    AirflowSettings,
    check_params,
    default_logical_date,
    describe_failure,
    parse_conf,
    parse_param_args,
    run_conf,
    run_summary,
)
from wfctl.airflow_render import dag_file_name, render_dag
from wfctl.errors import AIRFLOW, EXIT_USAGE, USAGE, WfError

pytest_plugins = ("airflow_server",)  # its fixture: airflow_server

PARAMS = {
    "region": {"type": "string", "enum": ["kr", "jp", "us"], "default": "kr", "description": "Sales region"},
    "limit": {"type": "integer", "default": 5, "minimum": 1, "maximum": 10},
    "ratio": {"type": "number", "default": 0.5},
    "dry": {"type": "boolean", "default": False},
    "tags": {"type": "array", "default": []},
    "extra": {"type": "object", "default": {}},
    "label": {"type": "string", "default": "{{ ds }}", "minLength": 1},
}


# --- params and conf (no Airflow) -----------------------------------------------------------


def test_check_params_converts_to_declared_types_and_fills_defaults() -> None:
    values = check_params(PARAMS, {"region": "jp", "limit": "7", "ratio": "2", "dry": "TRUE",
                                   "tags": '["a", 1]', "extra": '{"k": [1]}'})
    assert values == {"region": "jp", "limit": 7, "ratio": 2, "dry": True, "tags": ["a", 1], "extra": {"k": [1]},
                      "label": "{{ ds }}"}
    assert check_params(PARAMS, {}) == {name: p["default"] for name, p in PARAMS.items()}
    assert check_params(None, {}) == {}
    assert check_params({"any": {}}, {"any": "3"}) == {"any": 3}  # no type: a JSON value when it is one
    assert check_params({"any": {}}, {"any": "kr"}) == {"any": "kr"}  # ... else the text
    assert check_params({"code": {"type": "string"}}, {"code": "007"}) == {"code": "007"}  # strings stay text


@pytest.mark.parametrize(("given", "expected"), [
    ({"region": "xx"}, "param 'region': 'xx' is not one of ['kr', 'jp', 'us']"),
    ({"limit": "11"}, "param 'limit': 11 is greater than the maximum of 10"),
    ({"limit": "0"}, "param 'limit': 0 is less than the minimum of 1"),
    ({"limit": "seven"}, "param 'limit': 'seven' is not an integer"),
    ({"limit": "7.5"}, "param 'limit': '7.5' is not an integer"),
    ({"ratio": "true"}, "param 'ratio': 'true' is not a number"),
    ({"dry": "maybe"}, "param 'dry': 'maybe' is not a boolean"),
    ({"tags": "{}"}, "param 'tags': '{}' is not an array (JSON)"),
    ({"extra": "[1]"}, "param 'extra': '[1]' is not an object (JSON)"),
    ({"label": ""}, "param 'label': '' should be non-empty"),
    ({"regoin": "kr"}, "unknown param 'regoin'"),
])
def test_check_params_rejects_bad_values_before_anything_is_sent(given: dict[str, str], expected: str) -> None:
    with pytest.raises(WfError) as info:
        check_params(PARAMS, given)
    err = info.value
    assert (err.code, err.exit_code) == (USAGE, EXIT_USAGE)
    assert expected in err.message, err.message
    assert err.hint.startswith("declared params: ")
    assert 'region (string, one of "kr"|"jp"|"us", default "kr")' in err.hint
    assert "limit (integer, >= 1, <= 10, default 5)" in err.hint


def test_check_params_reports_every_problem_and_required_params() -> None:
    spec = {"customer": {"type": "string", "pattern": "^C-[0-9]+$"}, "limit": PARAMS["limit"]}
    with pytest.raises(WfError) as info:
        check_params(spec, {"limit": "99", "nope": "1"})
    message = info.value.message
    assert "unknown param 'nope'" in message
    assert "param 'customer' has no default: give --param customer=..." in message
    assert "param 'limit': 99 is greater than the maximum of 10" in message
    assert "customer (string, required)" in info.value.hint
    assert check_params(spec, {"customer": "C-12"}) == {"customer": "C-12", "limit": 5}
    with pytest.raises(WfError, match="does not match"):
        check_params(spec, {"customer": "D-12"})
    with pytest.raises(WfError) as info:
        check_params({}, {"x": "1"})
    assert info.value.hint == "this workflow declares no params"


def test_param_args_and_conf_parsing() -> None:
    assert parse_param_args(["region=jp", "q=a=b", "empty="]) == {"region": "jp", "q": "a=b", "empty": ""}
    for bad in (["region"], ["=x"]):
        with pytest.raises(WfError, match="is not KEY=VALUE"):
            parse_param_args(bad)
    with pytest.raises(WfError, match="given twice"):
        parse_param_args(["a=1", "a=2"])
    assert parse_conf(None) == {} and parse_conf(" ") == {}
    assert parse_conf('{"a": [1]}') == {"a": [1]}
    for bad in ("[1]", "{nope"):
        with pytest.raises(WfError) as info:
            parse_conf(bad)
        assert info.value.code == USAGE


def test_run_conf_carries_the_definition_provenance() -> None:
    conf = run_conf("MANUAL", 3, "ab" * 32, {"region": "jp"}, {"note": "rerun"})
    assert conf == {"note": "rerun", "region": "jp", "wfctl": {"source": "MANUAL", "version": 3, "sha256": "ab" * 32}}
    assert json.loads(json.dumps(conf)) == conf
    for clash in ({"region": "us"}, {"wfctl": {}}):
        with pytest.raises(WfError) as info:
            run_conf("CODE", 1, "x", {"region": "jp"}, clash)
        assert info.value.code == USAGE and "--param" in info.value.hint
    assert run_summary({"dag_run_id": "r1", "state": "queued", "conf": conf})["wfctl"] == conf["wfctl"]
    assert run_summary({"dag_run_id": "r1", "conf": {}})["wfctl"] is None


def test_default_logical_date_is_utc_iso() -> None:
    value = default_logical_date()
    assert value.endswith("Z") and "T" in value


# --- settings -------------------------------------------------------------------------------


def test_settings_from_config() -> None:
    settings = AirflowSettings.from_config({"airflow_url": "http://af:8080/", "airflow_username": "u",
                                            "airflow_password": "s3cret-pw"})
    assert (settings.url, settings.username, settings.password) == ("http://af:8080", "u", "s3cret-pw")
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in repr(AirflowClient(settings))
    assert AirflowSettings.optional({"airflow_url": None}) is None
    assert AirflowSettings.optional({"airflow_url": "http://af", "airflow_username": ""}) == \
        AirflowSettings("http://af", None, None)
    with pytest.raises(WfError) as info:
        AirflowSettings.from_config({"airflow_url": None, "airflow_username": None, "airflow_password": None})
    assert info.value.code == AIRFLOW and "WFCTL_AIRFLOW_URL" in info.value.hint
    for bad in ("af:8080", "ftp://af", "http://u:s3cret-pw@af:8080", "http://af/?x=1"):
        with pytest.raises(WfError) as info:
            AirflowSettings(bad, "u", "p")
        assert info.value.code == AIRFLOW
        assert "s3cret-pw" not in info.value.message + info.value.hint


# --- HTTP failures against a tiny fake server (no Airflow) ----------------------------------


class _Canned(BaseHTTPRequestHandler):
    """Answers from ``server.routes``: {(method, path): (status, body, headers) or a list of them};
    records requests."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        server: Any = self.server
        server.requests.append({"method": self.command, "path": self.path, "body": body,
                                "auth": self.headers.get("Authorization")})
        path = self.path.split("?")[0]
        answer = server.routes.get((self.command, path), (404, {"detail": "Not Found"}, {}))
        if isinstance(answer, list):  # a script: one answer per request, the last one repeats
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        status, payload, headers = answer
        if status == "sleep":
            time.sleep(payload)
            status, payload = 200, {}
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_airflow() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    server.block_on_close = False  # a handler still sleeping (the timeout test) must not hold up teardown
    server.requests = []
    server.routes = {("POST", "/auth/token"): (201, {"access_token": "tok-123"}, {})}
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _fails(call: Any) -> WfError:
    with pytest.raises(WfError) as info:
        call()
    assert info.value.code == AIRFLOW
    return info.value


def test_token_is_fetched_once_and_sent_as_bearer(fake_airflow: Any) -> None:
    fake_airflow.routes[("GET", "/api/v2/dags/d")] = (200, {"dag_id": "d", "is_paused": False}, {})
    client = AirflowClient(AirflowSettings(fake_airflow.url, "u", "pw-XYZ"))
    assert client.get_dag("d")["dag_id"] == "d"
    assert client.get_dag("d")["dag_id"] == "d"
    login, first, second = fake_airflow.requests
    assert (login["method"], login["path"], json.loads(login["body"])) == \
        ("POST", "/auth/token", {"username": "u", "password": "pw-XYZ"})
    assert first["auth"] == second["auth"] == "Bearer tok-123"


def test_an_expired_token_is_fetched_again(fake_airflow: Any) -> None:
    fake_airflow.routes[("GET", "/api/v2/dags/d")] = (401, {"detail": "Token Expired"}, {})
    client = AirflowClient(AirflowSettings(fake_airflow.url, "u", "pw"))
    client._token = "old"
    err = _fails(lambda: client.get_dag("d"))
    assert [r["path"] for r in fake_airflow.requests] == ["/api/v2/dags/d", "/auth/token", "/api/v2/dags/d"]
    assert "HTTP 401" in err.message and "Token Expired" in err.message


@pytest.mark.parametrize(("status", "body", "headers", "message", "hint"), [
    (500, {"detail": "boom"}, {}, "failed on GET /api/v2/dags/d (HTTP 500): boom", "api-server's log"),
    (503, {"detail": "database is locked"}, {}, "unavailable for GET /api/v2/dags/d (HTTP 503)", "try again"),
    (200, b"<html>login</html>", {}, "with something that is not JSON (HTTP 200)", "Airflow 3 api-server"),
    (302, b"", {"Location": "https://sso.example/login"}, "redirected GET /api/v2/dags/d to https://sso.example/login",
     "WFCTL_AIRFLOW_URL"),
    (418, {"detail": {"reason": "teapot"}}, {}, "answered GET /api/v2/dags/d with HTTP 418: teapot", "log"),
])
def test_http_failures_become_wf809(fake_airflow: Any, status: int, body: Any, headers: dict[str, str], message: str,
                                    hint: str) -> None:
    fake_airflow.routes[("GET", "/api/v2/dags/d")] = (status, body, headers)
    err = _fails(lambda: AirflowClient(AirflowSettings(fake_airflow.url, "u", "pw"), backoff=0).get_dag("d"))
    assert message in err.message and fake_airflow.url in err.message
    assert hint in err.hint
    sent = 1 + (RETRIES if status == 503 else 0)  # only a busy answer is worth asking again
    assert [r["path"] for r in fake_airflow.requests] == ["/auth/token"] + ["/api/v2/dags/d"] * sent


def test_a_busy_airflow_is_asked_again_even_for_a_post(fake_airflow: Any) -> None:
    """503 (database locked) and 429 mean "not processed": the same POST is resent, after Retry-After."""
    locked = (503, {"detail": "Database is locked."}, {"Retry-After": "0.2"})
    created = (200, {"id": 7, "dag_id": "d"}, {})
    fake_airflow.routes[("POST", "/api/v2/backfills")] = [locked, (429, {}, {}), created]
    client = AirflowClient(AirflowSettings(fake_airflow.url, "u", "pw"), backoff=0.01)
    began = time.monotonic()
    assert client.backfill("d", "2025-01-01", "2025-01-03")["id"] == 7
    assert time.monotonic() - began >= 0.2  # the server's Retry-After, not the 0.01 s backoff
    posts = [r for r in fake_airflow.requests if r["path"] == "/api/v2/backfills"]
    assert len(posts) == 3 and len({r["body"] for r in posts}) == 1


def test_a_failed_post_is_never_resent(fake_airflow: Any) -> None:
    """A 500 may have been applied: sending a trigger again could start a second run."""
    fake_airflow.routes[("POST", "/api/v2/dags/d/dagRuns")] = [(500, {"detail": "boom"}, {}), (200, {}, {})]
    err = _fails(lambda: AirflowClient(AirflowSettings(fake_airflow.url, "u", "pw"), backoff=0).trigger("d", {}))
    assert "HTTP 500" in err.message
    assert [r["path"] for r in fake_airflow.requests].count("/api/v2/dags/d/dagRuns") == 1


def test_login_failures(fake_airflow: Any) -> None:
    fake_airflow.routes[("POST", "/auth/token")] = (401, {"detail": "Invalid credentials"}, {})
    err = _fails(lambda: AirflowClient(AirflowSettings(fake_airflow.url, "u", "hunter2-secret")).version())
    assert "refused to log in user 'u' (POST /auth/token: HTTP 401)" in err.message
    assert "WFCTL_AIRFLOW_PASSWORD" in err.hint and "hunter2-secret" not in err.message + err.hint
    fake_airflow.routes.pop(("POST", "/auth/token"))  # not an Airflow 3 api-server
    err = _fails(lambda: AirflowClient(AirflowSettings(fake_airflow.url, "u", "pw")).version())
    assert "has no token endpoint" in err.message and "Airflow 3" in err.hint
    fake_airflow.routes[("GET", "/auth/token")] = (201, {"access_token": "anon"}, {})  # all-admins mode
    fake_airflow.routes[("GET", "/api/v2/version")] = (200, {"version": "3.3.2"}, {})
    assert AirflowClient(AirflowSettings(fake_airflow.url, None, None)).version() == {"version": "3.3.2"}
    assert fake_airflow.requests[-1]["auth"] == "Bearer anon"


def test_a_silent_server_times_out(fake_airflow: Any) -> None:
    fake_airflow.routes[("GET", "/api/v2/version")] = ("sleep", 2.0, {})
    err = _fails(lambda: AirflowClient(AirflowSettings(fake_airflow.url, "u", "pw"), timeout=0.5).version())
    assert "cannot reach Airflow" in err.message and "no answer within 0.5s" in err.message


def test_unresolvable_host_is_unreachable() -> None:
    err = _fails(lambda: AirflowClient(AirflowSettings("http://wfctl-no-such-host.invalid:8080", "u", "pw"),
                                       timeout=5).version())
    assert "cannot reach Airflow at http://wfctl-no-such-host.invalid:8080 (POST /auth/token)" in err.message
    assert "WFCTL_AIRFLOW_URL" in err.hint


def test_describe_failure_says_what_was_applied() -> None:
    err = describe_failure("pause of daily-sales", WfError(AIRFLOW, "cannot reach Airflow at http://x", "start it"))
    assert err.code == AIRFLOW and err.exit_code == 1
    assert err.message == ("pause of daily-sales was applied in the store, but Airflow was not updated: "
                           "cannot reach Airflow at http://x")
    assert err.hint.startswith("start it; the store change stands")


# --- a real Airflow ------------------------------------------------------------------------


OPS_WORKFLOWS = {
    "ops-params": """
params:
  region: {type: string, enum: [kr, jp, us], default: kr, description: Sales region}
  limit: {type: integer, default: 5, minimum: 1, maximum: 10}
tasks:
  - name: write
    component: bash
    with:
      command: >-
        echo "{{ params.region }} {{ params.limit }} {{ dag_run.conf.wfctl.sha256 }} {{ ds }}"
        > "OUT/{{ run_id }}.txt"
""",
    "ops-sleep": """
tasks:
  - {name: nap, component: bash, with: {command: "sleep 120"}}
""",
    "ops-daily": """
schedule: {cron: "0 0 * * *", timezone: UTC, start_date: 2025-01-01, catchup: false}
tasks:
  - {name: day, component: bash, with: {command: "echo day {{ ds }}"}}
""",
    "ops-pause": """
tasks:
  - {name: noop, component: bash, with: {command: "true"}}
""",
}


class Ops:
    """The rendered workflows in a running Airflow."""

    def __init__(self, server: AirflowServer, workflows: dict[str, Any], out: Path) -> None:
        self.server = server
        self.client = server.client()
        self.workflows = workflows
        self.out = out

    def conf(self, name: str, params: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        wf = self.workflows[name]
        return run_conf("CODE", 1, wf.sha256, params, extra or {})

    def wait(self, name: str, run_id: str, states: str | tuple[str, ...], timeout: float = 90) -> dict[str, Any]:
        return wait_for_run_state(self.client, name, run_id, states, timeout, server=self.server)


@pytest.fixture(scope="module")
def ops(airflow_server: AirflowServer, tmp_path_factory: pytest.TempPathFactory) -> Ops:
    """The workflows above, validated and rendered by wfctl into the server's DAG folder, parsed by Airflow."""
    out = tmp_path_factory.mktemp("ops-out")
    root = tmp_path_factory.mktemp("ops-repo")
    files: dict[str, str | bytes] = {"components/bash.yaml": BASH_COMPONENT}
    for name, spec in OPS_WORKFLOWS.items():
        files[f"workflows/{name}.yaml"] = workflow(name, spec.replace("OUT", str(out)))
    _write(root, files)
    result = validate_mod.validate(config_mod.load(root))
    errors = [d for d in result.report.diagnostics if d.severity == "error"]
    assert not errors, errors
    workflows = dict(result.workflows)
    assert set(workflows) == set(OPS_WORKFLOWS)
    for name, wf in workflows.items():
        airflow_server.add_dag(dag_file_name(name), render_dag(wf.definition, source="CODE", version=1,
                                                               sha256=wf.sha256))
    ops = Ops(airflow_server, workflows, out)
    for name in workflows:
        dag = wait_for_dag(ops.client, name, timeout=60, server=airflow_server)
        assert dag["is_paused"] is True  # [core] dags_are_paused_at_creation: runs would wait in "queued"
    for name in ("ops-params", "ops-sleep"):
        assert ops.client.set_paused(name, False)["is_paused"] is False
    return ops


@pytest.fixture(scope="module")
def params_run(ops: Ops) -> dict[str, Any]:
    """A run of ops-params with checked params, run to success."""
    params = check_params(ops.workflows["ops-params"].definition["spec"]["params"], {"region": "jp", "limit": "7"})
    assert params == {"region": "jp", "limit": 7}
    run = ops.client.trigger("ops-params", ops.conf("ops-params", params, {"ticket": "OPS-1"}),
                             logical_date="2025-03-01T00:00:00Z", run_id="wfctl-params-1")
    return {"triggered": run, "params": params, "done": ops.wait("ops-params", "wfctl-params-1", "success")}


@pytest.mark.slow
def test_run_with_params_is_traceable_and_succeeds(ops: Ops, params_run: dict[str, Any]) -> None:
    sha = ops.workflows["ops-params"].sha256
    provenance = {"source": "CODE", "version": 1, "sha256": sha}
    triggered = params_run["triggered"]
    assert triggered["run_id"] == "wfctl-params-1" and triggered["state"] == "queued"
    assert triggered["run_type"] == "manual" and triggered["logical_date"] == "2025-03-01T00:00:00Z"
    assert triggered["conf"] == {"ticket": "OPS-1", "region": "jp", "limit": 7, "wfctl": provenance}
    assert triggered["wfctl"] == provenance
    assert params_run["done"]["conf"]["wfctl"] == provenance
    # Airflow took the params from the conf keys: the task saw them (and the provenance, and ds)
    written = (ops.out / "wfctl-params-1.txt").read_text().split()
    assert written == ["jp", "7", sha, "2025-03-01"]


@pytest.mark.slow
def test_runs_are_listed_newest_first_with_their_task_states(ops: Ops, params_run: dict[str, Any]) -> None:
    later = ops.client.trigger("ops-params", ops.conf("ops-params", {"region": "us", "limit": 2}),
                               logical_date=default_logical_date(), run_id="wfctl-params-2")
    runs = ops.client.list_runs("ops-params")
    ids = [r["run_id"] for r in runs]
    assert ids.index("wfctl-params-2") < ids.index("wfctl-params-1")
    assert [r["run_id"] for r in ops.client.list_runs("ops-params", limit=1)] == [ids[0]]
    first = next(r for r in runs if r["run_id"] == "wfctl-params-1")
    assert first["state"] == "success" and first["wfctl"]["sha256"] == ops.workflows["ops-params"].sha256
    assert {"state", "run_id", "logical_date", "start_date", "end_date", "conf", "wfctl"} <= set(first)
    json.dumps(runs)  # plain JSON data

    run = ops.client.get_run("ops-params", "wfctl-params-1")
    assert run["state"] == "success" and run["start_date"] and run["end_date"]
    tasks = ops.client.task_instances("ops-params", "wfctl-params-1")
    assert [(t["task_id"], t["state"], t["try_number"]) for t in tasks] == [("write", "success", 1)]
    assert tasks[0]["start_date"] and tasks[0]["end_date"]
    done = ops.wait("ops-params", later["run_id"], "success")
    assert done["conf"]["region"] == "us"
    assert (ops.out / "wfctl-params-2.txt").read_text().split()[:2] == ["us", "2"]


@pytest.mark.slow
def test_a_run_without_logical_date_has_no_ds(ops: Ops) -> None:
    """``logical_date: null`` is accepted, but then {{ ds }} is undefined and the task fails:
    why ``wfctl run`` should send :func:`default_logical_date`."""
    run = ops.client.trigger("ops-params", ops.conf("ops-params", {"region": "kr", "limit": 1}), logical_date=None)
    assert run["logical_date"] is None and run["run_id"].startswith("manual__")
    assert ops.wait("ops-params", run["run_id"], "failed")["state"] == "failed"
    assert [t["state"] for t in ops.client.task_instances("ops-params", run["run_id"])] == ["failed"]


@pytest.mark.slow
def test_stop_fails_a_running_run(ops: Ops) -> None:
    started = time.monotonic()
    ops.client.trigger("ops-sleep", ops.conf("ops-sleep", {}), logical_date=default_logical_date(),
                       run_id="wfctl-sleep-1")
    poll(lambda: [t for t in ops.client.task_instances("ops-sleep", "wfctl-sleep-1") if t["state"] == "running"],
         60, "the sleeping task to run", server=ops.server)
    stopped = ops.client.stop("ops-sleep", "wfctl-sleep-1")
    assert (stopped["state"], stopped["stopped"]) == ("failed", True)
    assert ops.client.get_run("ops-sleep", "wfctl-sleep-1")["state"] == "failed"
    poll(lambda: all(t["state"] not in ("running", "queued", "scheduled")
                     for t in ops.client.task_instances("ops-sleep", "wfctl-sleep-1")),
         30, "the task to be stopped", server=ops.server)
    assert [t["state"] for t in ops.client.task_instances("ops-sleep", "wfctl-sleep-1")] == ["failed"]
    assert time.monotonic() - started < 100  # well before the 120 s sleep ends
    again = ops.client.stop("ops-sleep", "wfctl-sleep-1")  # a finished run is left alone
    assert (again["state"], again["stopped"]) == ("failed", False)


@pytest.mark.slow
def test_backfill_of_three_dates(ops: Ops) -> None:
    client = ops.client
    conf = ops.conf("ops-daily", {})
    dates = ["2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"]
    plan = client.backfill("ops-daily", "2025-01-01", "2025-01-03", None, True, conf=conf)
    assert plan["dry_run"] is True and plan["logical_dates"] == dates and plan["total_entries"] == 3
    assert client.list_runs("ops-daily") == []  # a dry run creates nothing

    created = client.backfill("ops-daily", "2025-01-01", "2025-01-03", 2, False, conf=conf)
    assert created["dry_run"] is False and isinstance(created["id"], int)
    assert created["max_active_runs"] == 2 and created["reprocess_behavior"] == "none"
    assert created["dag_run_conf"] == conf
    runs = client.list_runs("ops-daily")
    assert sorted(r["logical_date"] for r in runs) == dates
    assert all(r["run_type"] == "backfill" and r["wfctl"] == conf["wfctl"] for r in runs)

    err = _fails(lambda: client.backfill("ops-daily", "2025-01-01", "2025-01-03", None, False))
    assert "HTTP 409" in err.message and "already a running backfill" in err.message
    assert "already running" in err.hint

    # the DAG is paused (as created): its backfill runs wait in the queue until it is unpaused
    assert all(r["state"] == "queued" for r in runs)
    assert client.set_paused("ops-daily", False)["is_paused"] is False
    for run in runs:
        ops.wait("ops-daily", run["run_id"], "success")
    client.set_paused("ops-daily", True)


@pytest.mark.slow
def test_pause_and_unpause_are_reflected_in_the_dag(ops: Ops) -> None:
    client = ops.client
    assert client.set_paused("ops-pause", False)["is_paused"] is False
    assert client.get_dag("ops-pause")["is_paused"] is False
    answer = client.set_paused("ops-pause", True)
    assert answer["is_paused"] is True and answer["dag_id"] == "ops-pause"
    assert client.get_dag("ops-pause")["is_paused"] is True


# --- error paths against the real Airflow ---------------------------------------------------


@pytest.mark.slow
def test_wrong_password_is_wf809_without_the_password(ops: Ops) -> None:
    wrong = "Wrong-Pa55word-zq"
    err = _fails(lambda: ops.server.client(password=wrong).get_dag("ops-params"))
    text = err.message + err.hint
    assert "refused to log in user 'admin' (POST /auth/token: HTTP 401): Invalid credentials" in err.message
    assert ops.server.url in err.message
    assert "WFCTL_AIRFLOW_USERNAME" in err.hint and "WFCTL_AIRFLOW_PASSWORD" in err.hint
    assert wrong not in text and ops.server.password not in text
    err = _fails(lambda: ops.server.client(username="nobody").get_dag("ops-params"))
    assert "user 'nobody'" in err.message and ops.server.password not in err.message + err.hint
    err = _fails(lambda: ops.server.client(username=None, password=None).get_dag("ops-params"))
    assert "without credentials" in err.message and "HTTP 403" in err.message


@pytest.mark.slow
def test_a_role_without_rights_is_403(ops: Ops) -> None:
    viewer = ops.server.client(username="viewer", password=ops.server.viewer_password)
    assert viewer.get_dag("ops-params")["dag_id"] == "ops-params"  # viewers may read
    err = _fails(lambda: viewer.trigger("ops-params", {}, None))
    assert "does not allow user 'viewer' to POST /api/v2/dags/ops-params/dagRuns (HTTP 403)" in err.message
    assert "role" in err.hint
    err = _fails(lambda: viewer.set_paused("ops-pause", False))
    assert "HTTP 403" in err.message


@pytest.mark.slow
def test_an_invalid_token_is_replaced(ops: Ops) -> None:
    client = ops.server.client()
    client._token = "not-a-jwt"  # Airflow answers 403 "Invalid JWT token" (an expired one: 401)
    assert client.get_dag("ops-params")["dag_id"] == "ops-params"
    assert client._token != "not-a-jwt"


@pytest.mark.slow
def test_unreachable_airflow(ops: Ops) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = ops.server.client(url=url)
    err = _fails(lambda: client.trigger("ops-params", {}, None))
    assert err.message.startswith(f"cannot reach Airflow at {url} (POST /auth/token): connection refused")
    assert "WFCTL_AIRFLOW_URL" in err.hint and ops.server.password not in err.message + err.hint
    wrapped = describe_failure("pause of ops-pause", _fails(lambda: client.set_paused("ops-pause", True)))
    assert wrapped.message.startswith("pause of ops-pause was applied in the store, but Airflow was not updated: "
                                      f"cannot reach Airflow at {url}")


@pytest.mark.slow
def test_unknown_dag_and_run_are_404_with_a_hint(ops: Ops) -> None:
    client = ops.client
    for call in (lambda: client.trigger("ops-missing", {}, None), lambda: client.get_dag("ops-missing"),
                 lambda: client.list_runs("ops-missing"), lambda: client.set_paused("ops-missing", True),
                 lambda: client.backfill("ops-missing", "2025-01-01", "2025-01-02", None, True)):
        err = _fails(call)
        assert "has no DAG 'ops-missing'" in err.message and "HTTP 404" in err.message
        assert "dag-processor" in err.hint and "effective/dags/" in err.hint
    err = _fails(lambda: client.get_run("ops-params", "no-such-run"))
    assert "has no run 'no-such-run' of DAG 'ops-params'" in err.message
    assert "wfctl runs ops-params" in err.hint
    err = _fails(lambda: client.stop("ops-params", "no-such-run"))
    assert "has no run 'no-such-run'" in err.message


@pytest.mark.slow
def test_a_run_id_that_exists_is_409(ops: Ops, params_run: dict[str, Any]) -> None:
    err = _fails(lambda: ops.client.trigger("ops-params", ops.conf("ops-params", params_run["params"]),
                                            logical_date=default_logical_date(), run_id="wfctl-params-1"))
    assert "POST /api/v2/dags/ops-params/dagRuns: conflict (HTTP 409)" in err.message
    assert "run id" in err.hint


@pytest.mark.slow
def test_invalid_requests_are_400_or_422_with_airflow_detail(ops: Ops) -> None:
    client = ops.client
    err = _fails(lambda: client.trigger("ops-params", {}, logical_date="yesterday"))
    assert "invalid request (HTTP 422): logical_date: Input should be a valid datetime" in err.message
    assert "ISO 8601" in err.hint
    # params Airflow checks itself (what check_params stops before sending)
    err = _fails(lambda: client.trigger("ops-params", {"limit": 99}, logical_date=default_logical_date()))
    assert "bad request (HTTP 400): Invalid input for param limit: 99 is greater than the maximum of 10" in err.message
    err = _fails(lambda: client.backfill("ops-daily", "2025-01-05", "2025-01-03", None, True))
    assert "HTTP 422" in err.message and "must not be after" in err.message and "--from" in err.hint
    err = _fails(lambda: client.backfill("ops-params", "2025-01-01", "2025-01-03", None, True))
    assert "HTTP 422" in err.message and "does not support backfills" in err.message
    assert "schedule" in err.hint
    with pytest.raises(WfError) as info:
        client.backfill("ops-daily", "2025-01-01", "2025-01-03", None, True, reprocess_behavior="all")
    assert info.value.code == USAGE
