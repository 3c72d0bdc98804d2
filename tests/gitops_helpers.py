"""Helpers for the end-to-end GitOps tests: real git repos, the real ``wfctl``
command in a subprocess, raw access to the store of each backend, and the
structural checks of SPEC section 4 (layout, digests, manifests, effective view).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "workflows"
EMAIL = "alice@example.com"
WORKFLOW_NAMES = {"customer-reprocess", "daily-sales", "finance-month-end", "hello-bash", "marketing-attribution",
                  "orders-hourly-sync", "refresh-customers", "refresh-products"}
DAILY_SALES = "workflows/pipelines/daily-sales.yaml"
HELLO_BASH = "workflows/pipelines/hello-bash.yaml"
ERROR_LINE = re.compile(r"^error\[(WF\d{3})\]: (.+)$", re.MULTILINE)
# Variables of the developer's or CI's shell that would change what wfctl does.
_SCRUB = ("GITHUB_ACTOR", "GITHUB_REF_TYPE", "GITHUB_REF_NAME", "GITHUB_STEP_SUMMARY", "NO_COLOR", "CI")


# -- git repos --------------------------------------------------------------------


def make_git_repo(root: Path, *, examples: Path = EXAMPLES, gitignore: bool = True) -> git.Repo:
    """A workflows repo: the bundled examples, ``paths: [workflows]``, ``.wfctl/``
    ignored, one commit on ``main`` by alice@example.com."""
    root.mkdir(parents=True)
    shutil.copytree(examples, root / "workflows")
    (root / "wfctl.yaml").write_text("paths: [workflows]\n")
    if gitignore:
        (root / ".gitignore").write_text(".wfctl/\n")
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Alice")
        cfg.set_value("user", "email", EMAIL)
        cfg.set_value("commit", "gpgsign", "false")
    commit_all(repo, "initial import")
    return repo


def commit_all(repo: git.Repo, message: str) -> str:
    repo.git.add("-A")
    repo.git.commit("-q", "-m", message)
    return str(repo.head.commit.hexsha)


def edit(root: Path, rel: str, old: str, new: str) -> None:
    """Replace exactly one occurrence of ``old`` in a repo file."""
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {rel}"
    path.write_text(text.replace(old, new))


def set_cron(root: Path, cron: str, rel: str = DAILY_SALES) -> None:
    """Set the (only) cron of a workflow file, whatever it was."""
    path = root / rel
    text, count = re.subn(r'cron: "[^"]*"', f'cron: "{cron}"', path.read_text())
    assert count == 1
    path.write_text(text)


def set_description(root: Path, text: str, rel: str = HELLO_BASH) -> None:
    path = root / rel
    body, count = re.subn(r"(?m)^  description: .*$", f"  description: {text}", path.read_text(), count=1)
    assert count == 1
    path.write_text(body)


# -- the wfctl command -------------------------------------------------------------


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("WFCTL_")}
    env.update(extra)
    return env


@dataclass
class Result:
    args: list[str]
    rc: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except ValueError:
            raise AssertionError(f"stdout of {self.args} is not JSON:\n{self.out}\nstderr:\n{self.err}") from None

    @property
    def codes(self) -> list[str]:
        """The ``WFnnn`` of every ``error[WFnnn]:`` line on stderr."""
        return [code for code, _ in ERROR_LINE.findall(self.err)]

    @property
    def message(self) -> str:
        """The message of the last error line, or ``""``."""
        found = ERROR_LINE.findall(self.err)
        return found[-1][1] if found else ""

    def __str__(self) -> str:
        return f"wfctl {' '.join(self.args)} -> exit {self.rc}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def wfctl(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """Run the real ``wfctl`` command (``python -m wfctl``) in ``cwd``."""
    command = [sys.executable, "-m", "wfctl", "--no-color", *args]
    done = subprocess.run(command, cwd=cwd, env=env or base_env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    result = Result(list(args), done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in result.err and "Traceback" not in result.out, str(result)
    return result


def ok(result: Result) -> Result:
    assert result.rc == 0, str(result)
    return result


def assert_error(result: Result, code: str, rc: int) -> str:
    """The documented error shape: exit code, one ``error[WFnnn]: ...`` line and a
    ``hint:`` line on stderr, no traceback anywhere. Returns the error message."""
    assert result.rc == rc, str(result)
    assert result.codes == [code], str(result)
    lines = result.err.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"error[{code}]: "))
    assert at + 1 < len(lines) and lines[at + 1].startswith("hint: ") and len(lines[at + 1]) > len("hint: "), str(result)
    assert "Traceback" not in result.err
    return lines[at][len(f"error[{code}]: "):]


# -- raw store access (no wfctl code involved) ------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class RawStore:
    """A store read and written directly: the file system, or boto3 with its own client."""

    kind: str  # local | s3
    root: Path | None = None
    client: Any = None
    bucket: str = ""
    prefix: str = ""
    args: list[str] = field(default_factory=list)  # the wfctl options that select this store
    endpoint_url: str | None = None
    url: str = ""

    def keys(self) -> set[str]:
        if self.kind == "local":
            assert self.root is not None
            if not self.root.exists():
                return set()
            out = set()
            for path in self.root.rglob("*"):
                rel = path.relative_to(self.root).as_posix()
                if path.is_file() and not rel.startswith(".locks/"):
                    out.add(rel)
            return out
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + "/")
        return {item["Key"][len(self.prefix) + 1:] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        if self.kind == "local":
            assert self.root is not None
            return (self.root / key).read_bytes()
        return bytes(self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")["Body"].read())

    def write(self, key: str, data: bytes) -> None:
        if self.kind == "local":
            assert self.root is not None
            (self.root / key).write_bytes(data)
        else:
            self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=data)

    def json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def snapshot(self) -> dict[str, bytes]:
        return {key: self.read(key) for key in sorted(self.keys())}

    def fingerprint(self) -> dict[str, str]:
        """Every key with a digest of its content, in one listing on S3 (its ETags)."""
        if self.kind == "local":
            return {key: sha256(data) for key, data in self.snapshot().items()}
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + "/")
        return {item["Key"][len(self.prefix) + 1:]: item["ETag"] for page in pages for item in page.get("Contents", [])}


# -- structural checks of SPEC section 4 -------------------------------------------------

OBJECT_KEY = re.compile(r"^code/objects/([0-9a-f]{64})\.json$")
VERSION_KEY = re.compile(r"^code/versions/([1-9][0-9]*)\.json$")
DAG_KEY = re.compile(r"^effective/dags/([a-z0-9][a-z0-9-]*)\.py$")
MARKER = "doctor/conditional-writes.json"  # the one-time "this store honours conditional writes" marker


def check_layout(raw: RawStore, *, allow_orphan_objects: bool = False) -> dict[str, Any]:
    """Every SPEC section 4 guarantee that can be read off a quiescent store.

    Returns the live pointer, the manifests by version and the effective view."""
    keys = raw.keys()
    other = {k for k in keys if not (k in ("code/current.json", "effective/current.json", MARKER)
                                      or OBJECT_KEY.match(k) or VERSION_KEY.match(k) or DAG_KEY.match(k))}
    assert not other, f"unexpected keys in the store: {sorted(other)}"
    assert "code/current.json" in keys and "effective/current.json" in keys
    # objects: canonical JSON whose sha256 is their key
    objects = {OBJECT_KEY.match(k).group(1) for k in keys if OBJECT_KEY.match(k)}  # type: ignore[union-attr]
    for digest in objects:
        data = raw.read(f"code/objects/{digest}.json")
        assert sha256(data) == digest, f"object {digest} does not hash to its key"
        assert canonical(json.loads(data)) == data, f"object {digest} is not canonical JSON"
    # versions: contiguous from 1, a linear parent chain, each recording its digests
    versions = sorted(int(VERSION_KEY.match(k).group(1)) for k in keys if VERSION_KEY.match(k))  # type: ignore[union-attr]
    assert versions == list(range(1, len(versions) + 1)), f"versions are not contiguous: {versions}"
    pointer = raw.json("code/current.json")
    assert pointer["version"] == versions[-1], (pointer, versions)
    manifests: dict[int, dict[str, Any]] = {}
    referenced: set[str] = set()
    previous_sha = None
    for version in versions:
        data = raw.read(f"code/versions/{version}.json")
        manifest = json.loads(data)
        assert canonical(manifest) == data
        assert manifest["version"] == version and manifest["source"] == "CODE"
        assert manifest["parent_version"] == (version - 1 if version > 1 else None)
        assert manifest["parent_sha256"] == previous_sha
        assert manifest["created_at"].endswith("Z") and manifest["publisher"]
        for name, entry in manifest["workflows"].items():
            assert entry["object"] == f"code/objects/{entry['sha256']}.json", (version, name, entry)
            assert entry["sha256"] in objects, f"version {version} lists a missing object for {name}"
            assert entry["source_path"].startswith("workflows/") and entry["source_path"].endswith(".yaml")
            assert json.loads(raw.read(entry["object"]))["metadata"]["name"] == name
            referenced.add(entry["sha256"])
        if "rollback_to" not in manifest:
            git_info = manifest["git"]
            assert set(git_info) >= {"commit", "branch", "dirty"}, manifest
            assert re.fullmatch(r"[0-9a-f]{40}", git_info["commit"]) and isinstance(git_info["dirty"], bool)
        manifests[version] = manifest
        previous_sha = sha256(data)
    assert pointer["manifest_sha256"] == previous_sha, "the pointer's digest is not its manifest's"
    if not allow_orphan_objects:
        assert objects == referenced, f"objects no manifest lists: {sorted(objects - referenced)}"
    # the effective view and DAG folder match the live pointer
    live = manifests[versions[-1]]
    effective = check_effective(raw, live)
    return {"pointer": pointer, "manifests": manifests, "effective": effective, "keys": keys}


def check_effective(raw: RawStore, live: dict[str, Any]) -> dict[str, Any]:
    keys = raw.keys()
    effective = raw.json("effective/current.json")
    assert effective["computed_from"]["code"] == live["version"], (effective["computed_from"], live["version"])
    assert {n: w["sha256"] for n, w in effective["workflows"].items()} == \
        {n: e["sha256"] for n, e in live["workflows"].items()}
    dags = {DAG_KEY.match(k).group(1) for k in keys if DAG_KEY.match(k)}  # type: ignore[union-attr]
    assert dags == set(live["workflows"]), (sorted(dags), sorted(live["workflows"]))
    for name, entry in live["workflows"].items():
        text = raw.read(f"effective/dags/{name}.py").decode()
        assert f"sha256: {entry['sha256']}" in text, f"the DAG file of {name} is not the live definition"
    return dict(effective)


def live_definition(raw: RawStore, name: str) -> dict[str, Any]:
    pointer = raw.json("code/current.json")
    manifest = raw.json(f"code/versions/{pointer['version']}.json")
    return dict(raw.json(manifest["workflows"][name]["object"]))


def names_in(keys: Iterable[str], pattern: re.Pattern[str]) -> set[str]:
    return {m.group(1) for m in map(pattern.match, keys) if m}
