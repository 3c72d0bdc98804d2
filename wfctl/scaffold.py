"""``wfctl init``: a new workflows repo that validates clean from the first run."""

from __future__ import annotations

import json
from pathlib import Path

from wfctl.errors import ALREADY_EXISTS, WfError

FILES: dict[str, str] = {
    "wfctl.yaml": """\
# wfctl configuration; every key is optional. See `wfctl config` for the effective values.
paths: [workflows, components]   # folders wfctl reads (documents are found by kind, not folder)
deploy_branch: main              # `wfctl publish` refuses other branches unless --allow-branch
# store: s3://my-bucket/wfctl    # default: the local store .wfctl/store (no cloud account needed)
""",
    "workflows/hello.yaml": """\
apiVersion: wfctl/v1
kind: Workflow
metadata:
  name: hello
  owner: my-team
  description: A first workflow; edit it, then run `wfctl validate` and `wfctl plan`.
  tags: [example]
spec:
  schedule:
    cron: "0 6 * * *"
    timezone: UTC
    start_date: 2025-01-01
  defaults:
    retry: {max_retries: 2, delay_seconds: 60}
    timeout_seconds: 600
  groups:
    - name: prepare
      tasks:
        - name: say_hello
          component: bash
          with: {command: "echo hello from {{ dag.dag_id }}"}
  tasks:
    - name: report
      component: bash
      depends_on: [prepare]
      with: {command: "date -u"}
""",
    "components/bash.yaml": """\
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
      command: {type: string, description: The shell command to run.}
      env: {type: object, additionalProperties: {type: string}}
    additionalProperties: false
  defaults:
    timeout_seconds: 300
""",
    ".gitignore": """\
# wfctl's local store and cache: never commit them (the editor schemas, yes)
.wfctl/*
!.wfctl/schemas/
""",
    ".vscode/settings.json": """\
{
  "yaml.schemas": {
    "./.wfctl/schemas/workflow.schema.json": ["workflows/**/*.yaml", "workflows/**/*.yml"],
    "./.wfctl/schemas/component.schema.json": ["components/**/*.yaml", "components/**/*.yml"],
    "./.wfctl/schemas/workflowtemplate.schema.json": ["templates/**/*.yaml", "templates/**/*.yml"]
  }
}
""",
}
CI_FILES = {"github": ("wfctl-pr.yml", "wfctl-deploy.yml")}
CI_TEMPLATES = Path(__file__).with_name("ci_templates")


def init(directory: Path, force: bool = False, ci: str | None = None) -> list[Path]:
    """Write the scaffold (and CI workflows for ``ci``); refuses to overwrite
    anything unless ``force``. Editor schemas go to ``.wfctl/schemas/``, which
    ``.vscode/settings.json`` maps to the document folders."""
    from wfctl.schemas import SCHEMA_FILES, schema

    targets = {directory / rel: text for rel, text in FILES.items()}
    for kind, file_name in SCHEMA_FILES.items():
        targets[directory / ".wfctl" / "schemas" / file_name] = json.dumps(schema(kind), indent=2) + "\n"
    if ci:
        for name in CI_FILES[ci]:
            targets[directory / ".github" / "workflows" / name] = (CI_TEMPLATES / ci / name).read_text("utf-8")
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise WfError(ALREADY_EXISTS, f"would overwrite {names}", "pass --force to overwrite, or init an empty folder")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(targets)
