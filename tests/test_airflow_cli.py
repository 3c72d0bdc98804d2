"""The whole loop through the real CLI: publish renders into a real Airflow's DAG
folder (dags_prefix), then run / runs / backfill / stop / pause / unpause drive
that Airflow 3.3.2 through its REST API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import git
import pytest
from airflow_server import AirflowServer, poll, wait_for_dag, wait_for_run_state
from conftest import BASH_COMPONENT

pytest_plugins = ("airflow_server",)
pytestmark = pytest.mark.slow

NAME = "cli-hello"
WORKFLOW = f"""\
apiVersion: wfctl/v1
kind: Workflow
metadata: {{name: {NAME}, owner: data-team}}
spec:
  schedule: {{cron: "0 3 * * *", timezone: UTC, start_date: 2025-01-01, catchup: false}}
  params:
    who: {{type: string, default: world}}
    times: {{type: integer, default: 1, minimum: 1}}
    nap: {{type: integer, default: 0, minimum: 0}}
  tasks:
    - name: greet
      component: bash
      with: {{command: "echo hello {{{{ params.who }}}} {{{{ params.times }}}}"}}
    - name: nap
      component: bash
      depends_on: [greet]
      with: {{command: "sleep {{{{ params.nap }}}}"}}
"""


def wfctl(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "wfctl", "--repo", str(repo), *args], capture_output=True,
                            text=True, env={**os.environ, **(env or {})}, timeout=180)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def deployed(airflow_server: AirflowServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A git repo published to a local store whose DAG folder is the Airflow's."""
    repo = tmp_path_factory.mktemp("airflow-cli")
    (repo / "workflows").mkdir()
    (repo / "workflows" / "bash.yaml").write_text(BASH_COMPONENT)
    (repo / "workflows" / "hello.yaml").write_text(WORKFLOW)
    (repo / ".gitignore").write_text(".wfctl/\n")
    (repo / "wfctl.yaml").write_text(
        f"paths: [workflows]\ndags_prefix: {airflow_server.dags}\n"
        f"airflow: {{url: '{airflow_server.url}', username: {airflow_server.username}}}\n")
    handle = git.Repo.init(repo, initial_branch="main")
    handle.index.add(["workflows/bash.yaml", "workflows/hello.yaml", ".gitignore", "wfctl.yaml"])
    actor = git.Actor("Test", "test@example.com")
    handle.index.commit("workflows", author=actor, committer=actor)
    env = {"WFCTL_AIRFLOW_PASSWORD": airflow_server.password}
    assert wfctl(repo, "publish", env=env).returncode == 0
    assert (airflow_server.dags / f"{NAME}.py").exists()
    wait_for_dag(airflow_server.client(), NAME, timeout=90)
    return repo, env


def test_unpause_then_run_with_params_records_the_definition(deployed, airflow_server: AirflowServer) -> None:
    repo, env = deployed
    status = json_of(wfctl(repo, "unpause", NAME, "-o", "json", env=env))
    assert status["status"] == "active" and status["airflow_updated"] is True
    assert airflow_server.client().get_dag(NAME)["is_paused"] is False

    run = json_of(wfctl(repo, "run", NAME, "--param", "who=airflow", "--param", "times=3", "-o", "json", env=env))
    show = json_of(wfctl(repo, "show", NAME, "-o", "json"))
    assert run["wfctl"] == {"source": "CODE", "version": 1, "sha256": show["sha256"]}
    assert run["conf"]["who"] == "airflow" and run["conf"]["times"] == 3
    finished = wait_for_run_state(airflow_server.client(), NAME, run["run_id"], ("success", "failed"), timeout=120)
    assert finished["state"] == "success"

    history = json_of(wfctl(repo, "runs", NAME, "-o", "json", env=env))
    mine = [r for r in history["runs"] if r["run_id"] == run["run_id"]]
    assert mine and mine[0]["wfctl"]["sha256"] == show["sha256"]
    one = json_of(wfctl(repo, "runs", NAME, run["run_id"], "-o", "json", env=env))
    assert {t["task_id"]: t["state"] for t in one["tasks"]} == {"greet": "success", "nap": "success"}


def test_params_are_checked_before_anything_is_sent(deployed) -> None:
    repo, env = deployed
    result = wfctl(repo, "run", NAME, "--param", "times=zero", env=env)
    assert result.returncode == 2
    assert "error[WF813]" in result.stderr and "hint:" in result.stderr
    result = wfctl(repo, "run", NAME, "--param", "nobody=1", env=env)
    assert result.returncode == 2 and "who" in result.stderr  # the hint lists the declared params


def test_backfill_dry_run_lists_the_dates(deployed) -> None:
    repo, env = deployed
    dates = json_of(wfctl(repo, "backfill", NAME, "--from", "2025-02-01", "--to", "2025-02-03", "--dry-run",
                          "-o", "json", env=env))
    assert [d[:10] for d in dates["logical_dates"]] == ["2025-02-01", "2025-02-02", "2025-02-03"]


def test_stop_a_running_run(deployed, airflow_server: AirflowServer) -> None:
    repo, env = deployed
    run = json_of(wfctl(repo, "run", NAME, "--param", "nap=120", "--conf", '{"note": "to stop"}', "-o", "json", env=env))
    poll(lambda: airflow_server.client().get_run(NAME, run["run_id"])["state"] == "running" or None, 60, "the run to start")
    stopped = json_of(wfctl(repo, "stop", NAME, run["run_id"], "-o", "json", env=env))
    assert stopped["stopped"] is True
    assert airflow_server.client().get_run(NAME, run["run_id"])["state"] == "failed"


def test_pause_is_mirrored_and_an_airflow_failure_says_what_stands(deployed, airflow_server: AirflowServer) -> None:
    repo, env = deployed
    status = json_of(wfctl(repo, "pause", NAME, "-o", "json", env=env))
    assert status["status"] == "paused" and airflow_server.client().get_dag(NAME)["is_paused"] is True

    down = {**env, "WFCTL_AIRFLOW_URL": "http://127.0.0.1:9"}  # nothing listens on the discard port
    result = wfctl(repo, "unpause", NAME, env=down)
    assert result.returncode == 1
    assert "error[WF809]" in result.stderr and "applied in the store" in result.stderr and "hint:" in result.stderr
    assert env["WFCTL_AIRFLOW_PASSWORD"] not in result.stderr + result.stdout
    assert json_of(wfctl(repo, "status", NAME, "-o", "json"))["status"] == "active"  # the store side stands
    assert airflow_server.client().get_dag(NAME)["is_paused"] is True  # Airflow was not changed
