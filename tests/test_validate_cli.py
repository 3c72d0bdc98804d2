"""``wfctl validate`` and ``wfctl init`` from the command line: exit codes, the JSON
shape of SPEC section 6, PATH focus, skipped foreign YAML, ``--changed-since``,
the GitHub step summary, ``--version`` and the scaffold."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import git
import pytest
from conftest import BASH_COMPONENT, component, pos_of, wfctl, where, workflow

import wfctl as wfctl_pkg

W = "workflows/demo.yaml"
EVERY_MINUTE = workflow(spec='schedule: {cron: "* * * * *"}\n'
                              'tasks:\n  - {name: hello, component: bash, with: {command: "echo"}}\n')
UNKNOWN_COMPONENT = workflow(spec="tasks:\n  - {name: hello, component: nope}\n")


def broken(name: str) -> str:
    return workflow(name, spec="tasks:\n  - {name: hello, component: nope}\n")


# --- exit codes and the JSON shape -----------------------------------------------------------


@pytest.mark.parametrize(("doc", "args", "code", "ok", "errors", "warnings"), [
    pytest.param(workflow(), [], 0, True, 0, 0, id="clean"),
    pytest.param(UNKNOWN_COMPONENT, [], 1, False, 1, 0, id="errors"),
    pytest.param(EVERY_MINUTE, [], 0, True, 0, 1, id="warnings"),
    pytest.param(EVERY_MINUTE, ["--strict"], 1, False, 0, 1, id="warnings-strict"),
    pytest.param(workflow(), ["--strict"], 0, True, 0, 0, id="clean-strict"),
])
def test_exit_codes(doc: str, args: list[str], code: int, ok: bool, errors: int, warnings: int, make_repo, run_cli) -> None:
    exit_code, report = run_cli(make_repo({W: doc}, bash=True), *args)
    assert exit_code == code
    assert report["ok"] is ok
    assert report["summary"] == {"files": 2, "documents": 2, "errors": errors, "warnings": warnings}


@pytest.mark.parametrize("args", [["--no-such-option"], ["-o", "yaml"], ["--jobs", "0"]])
def test_usage_errors_exit_2(args: list[str], make_repo) -> None:
    result = wfctl("--repo", str(make_repo({W: workflow()}, bash=True)), "validate", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_missing_path_is_a_usage_error_with_the_json_error_shape(make_repo, run_cli) -> None:
    root = make_repo({W: workflow()}, bash=True)
    exit_code, report = run_cli(root, str(root / "workflows" / "nope.yaml"))
    assert exit_code == 2
    assert set(report) == {"error"}
    assert set(report["error"]) == {"code", "message", "hint"}
    assert re.fullmatch(r"WF\d{3}", report["error"]["code"])


def test_json_shape(make_repo, run_cli) -> None:
    doc = workflow(metadata="retires: 1", spec='schedule: {cron: "*/2 * * * *"}\ntasks:\n  - {name: hello, component: nope}\n')
    exit_code, report = run_cli(make_repo({W: doc}, bash=True))
    assert exit_code == 1
    assert {"ok", "summary", "diagnostics"} <= set(report)
    assert report["ok"] is False
    assert set(report["summary"]) >= {"files", "documents", "errors", "warnings"}
    assert all(isinstance(report["summary"][key], int) for key in ("files", "documents", "errors", "warnings"))
    assert (report["summary"]["errors"], report["summary"]["warnings"]) == (2, 1)
    assert [(d["file"], d["line"], d["column"], d["rule"], d["severity"]) for d in report["diagnostics"]] == [
        (W, *pos_of(doc, "retires"), "WF200", "error"),
        (W, *pos_of(doc, '"*/2'), "WF503", "warning"),
        (W, *pos_of(doc, "nope"), "WF400", "error"),
    ]
    for diagnostic in report["diagnostics"]:
        assert set(diagnostic) >= {"file", "line", "column", "severity", "rule", "message", "hint"}
        assert isinstance(diagnostic["line"], int) and diagnostic["line"] >= 1
        assert isinstance(diagnostic["column"], int) and diagnostic["column"] >= 1
        assert diagnostic["message"] and diagnostic["hint"]


def test_paths_are_repo_relative_with_slashes(make_repo, run_cli) -> None:
    rel = "workflows/team/deep/demo.yaml"
    exit_code, report = run_cli(make_repo({rel: UNKNOWN_COMPONENT}, bash=True))
    assert exit_code == 1
    assert [d["file"] for d in report["diagnostics"]] == [rel]


# --- PATH arguments ------------------------------------------------------------------------


FOCUS = "workflows/focus.yaml"
FOCUS_DOC = workflow("focus", spec='tasks:\n  - {name: hello, component: bash, with: {comand: "echo"}}\n')


def focus_repo(make_repo) -> Path:
    return make_repo({
        FOCUS: FOCUS_DOC,
        "workflows/unrelated.yaml": broken("unrelated"),
        "workflows/team/a.yaml": broken("team-a"),
        "workflows/team/b.yaml": workflow("team-b"),
    }, bash=True)


def test_path_argument_restricts_the_report_and_references_still_resolve(make_repo, run_cli) -> None:
    root = focus_repo(make_repo)
    exit_code, report = run_cli(root, str(root / FOCUS))
    assert exit_code == 1
    # `bash` lives in another file and still resolves (no WF400); `with:` is checked against it
    assert [(d["file"], d["rule"]) for d in report["diagnostics"]] == [(FOCUS, "WF403"), (FOCUS, "WF403")]


def test_folder_argument(make_repo, run_cli) -> None:
    root = focus_repo(make_repo)
    exit_code, report = run_cli(root, str(root / "workflows" / "team"))
    assert exit_code == 1
    assert [(d["file"], d["rule"]) for d in report["diagnostics"]] == [("workflows/team/a.yaml", "WF400")]


def test_path_argument_with_a_clean_file_passes_despite_broken_files_elsewhere(make_repo, run_cli) -> None:
    root = focus_repo(make_repo)
    exit_code, report = run_cli(root, str(root / "workflows" / "team" / "b.yaml"))
    assert (exit_code, report["ok"], report["diagnostics"]) == (0, True, [])


def test_path_argument_reports_only_the_given_files(make_repo, run_cli) -> None:
    """Problems of a file the focus file merely references stay out of the report."""
    root = focus_repo(make_repo)
    (root / "components" / "bash.yaml").write_text(BASH_COMPONENT.replace("  name: bash\n", "  name: bash\n  name: bash\n"))
    assert [d["rule"] for d in run_cli(root)[1]["diagnostics"]].count("WF101") == 1
    exit_code, report = run_cli(root, str(root / FOCUS))
    assert exit_code == 1
    assert {d["file"] for d in report["diagnostics"]} == {FOCUS}
    assert (report["summary"]["files"], report["summary"]["documents"]) == (1, 1)


def test_relative_path_arguments_from_the_repo_root(make_repo, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    root = focus_repo(make_repo)
    monkeypatch.chdir(root)
    exit_code, report = run_cli(root, FOCUS)
    assert exit_code == 1
    assert {d["file"] for d in report["diagnostics"]} == {FOCUS}


def test_path_outside_the_repo_is_a_usage_error(make_repo, run_cli, tmp_path: Path) -> None:
    root = focus_repo(make_repo)
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(workflow())
    exit_code, report = run_cli(root, str(outside))
    assert exit_code == 2
    assert "outside" in report["error"]["message"]


# --- foreign YAML --------------------------------------------------------------------------


ACTIONS = """\
name: CI
on:
  push:
    branches: [main]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: wfctl validate
"""


def test_non_wfctl_yaml_is_skipped_and_listed_with_verbose(make_repo) -> None:
    root = make_repo({
        W: workflow(),
        "ci/build.yml": ACTIONS,
        "deploy/values.yaml": "# this chart deploys the wfctl/v1 runner\nreplicas: 2\n",
        "docs/broken.yaml": "this: is: not: yaml: [\n",
        ".github/workflows/ci.yml": ACTIONS,
    }, bash=True)
    result = wfctl("--repo", str(root), "--no-color", "-v", "validate", "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["diagnostics"] == []
    assert report["summary"]["files"] == 2
    skipped = sorted(re.findall(r"skipped (\S+?):", result.stderr))
    assert skipped == ["ci/build.yml", "deploy/values.yaml", "docs/broken.yaml"]  # dot-folders are never read


def test_skipped_files_are_not_listed_without_verbose(make_repo) -> None:
    root = make_repo({W: workflow(), "ci/build.yml": ACTIONS}, bash=True)
    result = wfctl("--repo", str(root), "--no-color", "validate")
    assert result.exit_code == 0
    assert "skipped" not in result.stderr


def test_configured_paths_limit_discovery(make_repo, run_cli) -> None:
    root = make_repo({W: workflow(), "attic/old.yaml": broken("old")}, config="paths: [workflows, components]\n", bash=True)
    exit_code, report = run_cli(root)
    assert (exit_code, report["diagnostics"], report["summary"]["files"]) == (0, [], 2)


def test_repo_that_is_not_a_directory_is_a_usage_error(tmp_path: Path, run_cli) -> None:
    exit_code, report = run_cli(tmp_path / "missing")
    assert exit_code == 2
    assert report["error"]["code"] == "WF813"


# --- --changed-since -----------------------------------------------------------------------


USES_OTHER = "{name: hello, component: other, with: {command: echo}}"
CHANGED_REPO = {
    "components/bash.yaml": BASH_COMPONENT,
    "components/other.yaml": component("other", "type: bash\ninputs: {type: object}\n"),
    "workflows/uses-bash.yaml": workflow("uses-bash"),
    "workflows/uses-other.yaml": workflow("uses-other", spec=f"tasks:\n  - {USES_OTHER}\n"),
    "workflows/broken.yaml": broken("broken"),  # broken but unchanged: not in a --changed-since report
}
STRICTER_BASH = BASH_COMPONENT.replace("required: [command]", "required: [command, cwd]").replace(
    "      env: {type: object}\n", "      env: {type: object}\n      cwd: {type: string}\n")


def committed_repo(make_repo) -> tuple[Path, git.Repo]:
    root = make_repo(CHANGED_REPO)
    repo = git.Repo.init(root)
    repo.index.add(sorted(CHANGED_REPO))
    actor = git.Actor("Test", "test@example.com")
    repo.index.commit("initial", author=actor, committer=actor)
    return root, repo


def test_changed_since_covers_a_changed_component_and_its_users(make_repo, run_cli) -> None:
    root, _ = committed_repo(make_repo)
    (root / "components" / "bash.yaml").write_text(STRICTER_BASH)

    exit_code, full = run_cli(root)
    assert {d["file"] for d in full["diagnostics"]} == {"workflows/broken.yaml", "workflows/uses-bash.yaml"}

    exit_code, report = run_cli(root, "--changed-since", "HEAD")
    assert exit_code == 1
    assert [(d["file"], d["rule"]) for d in report["diagnostics"]] == [("workflows/uses-bash.yaml", "WF403")]
    assert (report["summary"]["files"], report["summary"]["documents"]) == (2, 2)  # the component and its user


def test_changed_since_covers_a_changed_workflow_and_what_it_references(make_repo, run_cli) -> None:
    root, _ = committed_repo(make_repo)
    (root / "workflows" / "uses-other.yaml").write_text(
        workflow("uses-other", spec=f"tasks:\n  - {USES_OTHER}\n  - {{name: bye, component: othr}}\n"))
    exit_code, report = run_cli(root, "--changed-since", "HEAD")
    assert exit_code == 1
    assert [(d["file"], d["rule"]) for d in report["diagnostics"]] == [("workflows/uses-other.yaml", "WF400")]
    assert report["summary"]["files"] == 2  # the workflow and components/other.yaml


def test_changed_since_includes_untracked_files(make_repo, run_cli) -> None:
    root, _ = committed_repo(make_repo)
    (root / "workflows" / "new.yaml").write_text(broken("new"))
    exit_code, report = run_cli(root, "--changed-since", "HEAD")
    assert exit_code == 1
    assert [(d["file"], d["rule"]) for d in report["diagnostics"]] == [("workflows/new.yaml", "WF400")]


def test_changed_since_with_no_changes_is_clean(make_repo, run_cli) -> None:
    root, _ = committed_repo(make_repo)
    exit_code, report = run_cli(root, "--changed-since", "HEAD")
    assert (exit_code, report["diagnostics"], report["summary"]["files"]) == (0, [], 0)


def test_changed_since_an_unknown_ref_is_a_usage_error(make_repo, run_cli) -> None:
    root, _ = committed_repo(make_repo)
    exit_code, report = run_cli(root, "--changed-since", "no-such-branch")
    assert exit_code == 2
    assert "no-such-branch" in report["error"]["message"]


# --- GitHub output ---------------------------------------------------------------------------


def test_github_output_writes_every_problem_to_the_step_summary(make_repo, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"workflows/w{i:02}.yaml": broken(f"w{i:02}") for i in range(12)}
    root = make_repo(files, bash=True)
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = wfctl("--repo", str(root), "--no-color", "validate", "-o", "github")
    assert result.exit_code == 1
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 10  # GitHub shows at most 10 per step
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, never truncated
    for rel in files:
        assert f"{rel}:{pos_of(files[rel], 'nope')[0]}:{pos_of(files[rel], 'nope')[1]}" in text


def test_step_summary_is_only_written_for_github_output(make_repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = wfctl("--repo", str(make_repo({W: UNKNOWN_COMPONENT}, bash=True)), "validate", "-o", "json")
    assert result.exit_code == 1
    assert not summary.exists()


# --- --version and init ---------------------------------------------------------------------


def test_python_m_wfctl_version() -> None:
    done = subprocess.run([sys.executable, "-m", "wfctl", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert wfctl_pkg.__version__ in done.stdout


def test_init_then_validate_is_clean(tmp_path: Path, run_cli) -> None:
    target = tmp_path / "new-repo"
    result = wfctl("init", str(target))
    assert result.exit_code == 0, result.output
    assert (target / "wfctl.yaml").is_file()
    exit_code, report = run_cli(target)
    assert (exit_code, report["ok"], report["diagnostics"]) == (0, True, [])
    assert report["summary"]["documents"] >= 2  # at least a workflow and its component


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "new-repo"
    assert wfctl("init", str(target)).exit_code == 0
    (target / "wfctl.yaml").write_text("paths: [workflows, components]\n# mine\n")

    result = wfctl("init", str(target))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("error[WF807]: ") for line in lines)
    assert any(line.startswith("hint: ") for line in lines)
    assert "Traceback" not in result.output + result.stderr
    assert (target / "wfctl.yaml").read_text().endswith("# mine\n")  # untouched

    forced = wfctl("init", "--force", str(target))
    assert forced.exit_code == 0
    assert not (target / "wfctl.yaml").read_text().endswith("# mine\n")


def test_cli_and_library_agree_on_locations(make_repo, run_validate, run_cli) -> None:
    root = make_repo({W: workflow(metadata="retires: 1", spec="tasks: []")}, bash=True)
    _, report = run_cli(root)
    assert [(d["file"], d["line"], d["column"], d["rule"], d["severity"]) for d in report["diagnostics"]] == \
        where(run_validate(root).diagnostics)
