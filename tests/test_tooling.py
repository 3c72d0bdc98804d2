"""The terminal side: schema, config, completion, colour, verbosity, version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import workflow

from wfctl import __version__
from wfctl.cli import cli

SECRET = "s3cr3t-airflow-Pa55"


def wfctl(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wfctl", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.parametrize("kind", ["workflow", "component", "workflowtemplate", "Workflow"])
def test_schema_prints_a_valid_draft_2020_12_schema(kind: str) -> None:
    result = CliRunner().invoke(cli, ["schema", kind])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(f"/{kind.lower()}.schema.json")


def test_schema_out_writes_every_kind(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schema", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "component.schema.json", "workflow.schema.json", "workflowtemplate.schema.json"]


def test_config_names_each_source_and_redacts_the_password(make_repo) -> None:
    root = make_repo({"workflows/w.yaml": workflow()}, config="paths: [workflows, components]\n"
                     "airflow: {url: 'http://127.0.0.1:9', username: ops}\n", bash=True)
    env = {"WFCTL_DEPLOY_BRANCH": "release", "WFCTL_AIRFLOW_PASSWORD": SECRET}
    result = wfctl("--repo", str(root), "--store", str(root / "st"), "config", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["store"]["source"] == "flag"
    assert described["deploy_branch"] == {"value": "release", "source": "env WFCTL_DEPLOY_BRANCH"}
    assert described["paths"] == {"value": ["workflows", "components"], "source": "wfctl.yaml"}
    assert described["dags_prefix"]["source"] == "default"
    assert described["airflow_password"] == {"value": "***", "source": "env WFCTL_AIRFLOW_PASSWORD"}
    assert SECRET not in result.stdout + result.stderr


def test_a_password_in_wfctl_yaml_is_refused(make_repo) -> None:
    root = make_repo({"workflows/w.yaml": workflow()}, config="airflow: {url: 'http://x', password: nope}\n", bash=True)
    result = wfctl("--repo", str(root), "validate")
    assert result.returncode == 1
    assert "error[WF808]" in result.stderr and "WFCTL_AIRFLOW_PASSWORD" in result.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts(shell: str) -> None:
    result = wfctl(env={"_WFCTL_COMPLETE": f"{shell}_source"})
    assert result.returncode == 0
    assert "_WFCTL_COMPLETE" in result.stdout and "wfctl" in result.stdout


def test_completion_offers_commands() -> None:
    result = wfctl(env={"_WFCTL_COMPLETE": "bash_complete", "COMP_WORDS": "wfctl pu", "COMP_CWORD": "1"})
    assert "publish" in result.stdout


def broken_repo(make_repo) -> Path:
    return make_repo({"workflows/w.yaml": workflow(spec="tasks:\n  - {name: a, component: nope}\n")}, bash=True)


def test_no_colour_off_a_terminal_and_with_no_color(make_repo) -> None:
    root = broken_repo(make_repo)
    runner = CliRunner()
    plain = runner.invoke(cli, ["--repo", str(root), "validate"])  # not a tty
    assert plain.exit_code == 1 and "\x1b[" not in plain.stdout
    forced = runner.invoke(cli, ["--repo", str(root), "validate"], color=True)
    assert "\x1b[" not in forced.stdout  # stdout is not a terminal: no colour even if the runner allows it
    result = wfctl("--repo", str(root), "--no-color", "validate", env={"NO_COLOR": "1"})
    assert "\x1b[" not in result.stdout + result.stderr


def test_json_output_is_never_mixed_with_logs(make_repo) -> None:
    root = make_repo({"workflows/w.yaml": workflow(), "ci/actions.yml": "on: push\n"}, bash=True)
    result = wfctl("--repo", str(root), "-v", "validate", "-o", "json")
    assert result.returncode == 0
    json.loads(result.stdout)  # stdout is exactly one JSON document
    assert "skipped ci/actions.yml" in result.stderr  # -v logs go to stderr


def test_quiet_and_verbose(make_repo, tmp_path: Path) -> None:
    target = tmp_path / "scaffold"
    quiet = wfctl("-q", "init", str(target))
    assert quiet.returncode == 0 and quiet.stderr == ""
    again = wfctl("-vv", "init", str(target))
    assert again.returncode == 1 and "error[WF807]" in again.stderr and "Traceback" in again.stderr  # -vv shows it


def test_version() -> None:
    result = wfctl("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_init_ci_github_writes_workflows_that_validate(tmp_path: Path) -> None:
    result = wfctl("init", "--ci", "github", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    written = {p.relative_to(tmp_path / "r").as_posix() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    assert {".github/workflows/wfctl-pr.yml", ".github/workflows/wfctl-deploy.yml", ".vscode/settings.json",
            ".wfctl/schemas/workflow.schema.json", "wfctl.yaml", "workflows/hello.yaml", "components/bash.yaml"} <= written
    settings = json.loads((tmp_path / "r" / ".vscode" / "settings.json").read_text())
    for schema_path in settings["yaml.schemas"]:
        assert (tmp_path / "r" / schema_path).is_file()
    assert wfctl("--repo", str(tmp_path / "r"), "validate").returncode == 0
