"""MANUAL registrations, CODE-over-MANUAL resolution and operator state (SPEC 4-6, issue 4).

Every flow runs the real CLI (``python -m wfctl`` in a subprocess) against a real
git repo (a copy of this project's ``workflows/``) and a real store: the local
directory store and moto's S3 server. The race test runs on the local store and
SeaweedFS only: moto's conditional writes are check-then-write without a lock,
so "exactly one wins" cannot be asserted against it.

Ad-hoc workflows for ``register`` live outside the repo's ``paths`` and use the
repo's components, like an operator's file would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import git
import pytest
from servers import ACCESS_KEY, REGION, SECRET_KEY, S3Server, moto_server, seaweedfs  # noqa: F401

PROJECT = Path(__file__).resolve().parent.parent
CODE_NAMES = ["customer-reprocess", "daily-sales", "finance-month-end", "hello-bash", "marketing-attribution",
              "orders-hourly-sync", "refresh-customers", "refresh-products"]
PUBLISH_KEYS = {"published", "version", "previous_version", "summary"}
STATUS_KEYS = {"name", "source", "status", "reason", "version", "next_runs"}
LIST_KEYS = {"name", "source", "status", "version", "owner", "schedule"}
TIMEOUT = 120


# -- stores -----------------------------------------------------------------------------


@dataclass
class Backend:
    """Where the store lives, how the CLI reaches it, and raw reads for checking it."""

    name: str
    url: str
    endpoint_url: str | None = None
    client: Any = None  # boto3 client for S3 backends
    root: Path | None = None  # local backends

    def flags(self) -> list[str]:
        return ["--store", self.url] + (["--endpoint-url", self.endpoint_url] if self.endpoint_url else [])

    def _bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.url[len("s3://"):].partition("/")
        return bucket, prefix.strip("/") + "/" if prefix else ""

    def read(self, key: str) -> bytes | None:
        if self.root is not None:
            path = self.root / key
            return path.read_bytes() if path.is_file() else None
        bucket, prefix = self._bucket_prefix()
        try:
            body: bytes = self.client.get_object(Bucket=bucket, Key=prefix + key)["Body"].read()
            return body
        except self.client.exceptions.NoSuchKey:
            return None

    def json(self, key: str) -> Any:
        data = self.read(key)
        return None if data is None else json.loads(data)

    def keys(self, under: str) -> set[str]:
        """Keys below ``under`` (a folder of the store), relative to it."""
        if self.root is not None:
            folder = self.root / under
            return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()
        bucket, prefix = self._bucket_prefix()
        full = prefix + under.rstrip("/") + "/"
        out: set[str] = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=full):
            out.update(item["Key"][len(full):] for item in page.get("Contents", []))
        return out

    def pointer_version(self, key: str) -> int | None:
        raw = self.json(key)
        return None if raw is None else int(raw["version"])


def _s3_backend(name: str, server: S3Server) -> Backend:
    return Backend(name, server.new_bucket("wf/store"), server.endpoint_url, client=server.client())


@pytest.fixture(params=["local", "moto_server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return Backend("local", str(tmp_path / "store"), root=tmp_path / "store")
    server: S3Server = request.getfixturevalue(request.param)
    return _s3_backend(request.param, server)


# -- the CLI and the repo --------------------------------------------------------------------


@dataclass
class Run:
    args: list[str]
    code: int
    out: str
    err: str

    @property
    def data(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"wfctl {' '.join(self.args)} -> exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"


def _env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment minus anything that could steer wfctl or boto3, plus fake credentials."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WFCTL_", "AWS_", "GITHUB_")) and k not in {"NO_COLOR", "CI"}}
    nowhere = str(tmp_path / "no-aws-config")
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION,
               AWS_CONFIG_FILE=nowhere, AWS_SHARED_CREDENTIALS_FILE=nowhere, AWS_EC2_METADATA_DISABLED="true")
    return env


def _git(path: Path) -> git.Repo:
    repo = git.Repo(path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "CI Bot")
        cfg.set_value("user", "email", "ci-bot@example.com")
    return repo


def adhoc_text(name: str, command: str = "echo hi", owner: str = "ops-team", cron: str | None = "0 3 * * *") -> str:
    schedule = f'  schedule: {{cron: "{cron}", timezone: UTC, start_date: 2025-01-01}}\n' if cron else ""
    return (f"apiVersion: wfctl/v1\nkind: Workflow\nmetadata:\n  name: {name}\n  owner: {owner}\n"
            f"  description: ad-hoc {name}\nspec:\n{schedule}"
            f'  tasks:\n    - {{name: hello, component: bash, with: {{command: "{command}"}}}}\n')


@dataclass
class World:
    """A workflows repo in git (this project's examples), an ad-hoc folder and a store."""

    tmp: Path
    backend: Backend
    env: dict[str, str]
    repo_dir: Path = field(init=False)
    adhoc: Path = field(init=False)
    repo: git.Repo = field(init=False)

    def __post_init__(self) -> None:
        self.repo_dir = self.tmp / "repo"
        self.adhoc = self.tmp / "adhoc"
        self.adhoc.mkdir()
        shutil.copytree(PROJECT / "workflows", self.repo_dir / "workflows")
        (self.repo_dir / "wfctl.yaml").write_text("paths: [workflows]\n")
        (self.repo_dir / ".gitignore").write_text(".wfctl/\n")
        git.Repo.init(self.repo_dir, initial_branch="main")
        self.repo = _git(self.repo_dir)
        self.commit("initial workflows")

    # repo edits
    def commit(self, message: str) -> None:
        self.repo.git.add(A=True)
        self.repo.git.commit(m=message)

    def code_file(self, name: str) -> Path:
        return self.repo_dir / "workflows" / "pipelines" / f"{name}.yaml"

    def write_adhoc(self, name: str, **kwargs: Any) -> Path:
        path = self.adhoc / f"{name}.yaml"
        path.write_text(adhoc_text(name, **kwargs))
        return path

    # the CLI
    def argv(self, args: tuple[str, ...], repo: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "wfctl", "--repo", str(repo or self.repo_dir), *self.backend.flags(),
                "--no-color", *args]

    def run_env(self, actor: str | None) -> dict[str, str]:
        return {**self.env, "GITHUB_ACTOR": actor} if actor else self.env

    def cli(self, *args: str, actor: str | None = None, repo: Path | None = None) -> Run:
        proc = subprocess.run(self.argv(args, repo), cwd=self.tmp, env=self.run_env(actor), capture_output=True,
                              text=True, timeout=TIMEOUT)
        return checked(Run(list(args), proc.returncode, proc.stdout, proc.stderr))

    def parallel(self, *argsets: tuple[str, ...]) -> list[Run]:
        """Independent read-only commands at once (each is a separate process anyway)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda a: self.cli(*a), argsets))

    def start(self, *args: str, actor: str | None = None, repo: Path | None = None) -> tuple[list[str], subprocess.Popen[str]]:
        proc = subprocess.Popen(self.argv(args, repo), cwd=self.tmp, env=self.run_env(actor), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        return list(args), proc

    def ok(self, *args: str, **kwargs: Any) -> Any:
        """Run a command that must succeed; its parsed JSON (``-o json`` is added)."""
        run = self.cli(*args, "-o", "json", **kwargs)
        assert run.code == 0, run
        return run.data

    def publish(self, *extra: str) -> dict[str, Any]:
        data: dict[str, Any] = self.ok("publish", *extra)
        assert set(data) >= PUBLISH_KEYS, data
        return data

    def rows(self, *filters: str) -> list[dict[str, Any]]:
        data = self.ok("list", *filters)
        assert set(data) >= {"workflows"}
        for row in data["workflows"]:
            assert set(row) >= LIST_KEYS, row
        rows: list[dict[str, Any]] = data["workflows"]
        return rows

    def status(self, name: str, *extra: str) -> dict[str, Any]:
        data: dict[str, Any] = self.ok("status", name, *extra)
        assert set(data) >= STATUS_KEYS, data
        return data


def checked(run: Run) -> Run:
    """Whatever happened, never a Python traceback (and never an internal error)."""
    assert "Traceback" not in run.out + run.err, run
    assert "WF899" not in run.out + run.err, run
    return run


@pytest.fixture
def world(tmp_path: Path, backend: Backend) -> World:
    return World(tmp_path, backend, _env(tmp_path))


@pytest.fixture
def published(world: World) -> World:
    """The repo's 8 example workflows published as CODE version 1."""
    data = world.publish()
    assert data["published"] is True and data["version"] == 1, data
    return world


def assert_error(run: Run, code: str, exit_code: int, *hint_words: str) -> str:
    """The documented error output: ``error[WFnnn]: message`` then ``hint: ...`` (text), or the
    JSON error shape on stdout (``-o json``). Returns the hint."""
    assert run.code == exit_code, run
    lines = run.err.strip().splitlines()
    assert any(line.startswith(f"error[{code}]: ") for line in lines), run
    hints = [line[len("hint: "):] for line in lines if line.startswith("hint: ")]
    assert hints and hints[-1].strip(), run
    if "-o" in run.args and run.args[run.args.index("-o") + 1] == "json":
        error = run.data["error"]
        assert error["code"] == code and error["message"] and error["hint"] == hints[-1], run
    for word in hint_words:
        assert word.lower() in hints[-1].lower(), f"hint lacks {word!r}:\n{run}"
    return hints[-1]


def effective(world: World) -> dict[str, Any]:
    view = world.backend.json("effective/current.json")
    assert view is not None, "effective/current.json is missing"
    return dict(view)


def dag_header(world: World, name: str) -> str:
    data = world.backend.read(f"effective/dags/{name}.py")
    assert data is not None, f"effective/dags/{name}.py is missing"
    return data.decode("utf-8").split('"""', 2)[1]


def assert_consistent(world: World, rows: list[dict[str, Any]] | None = None) -> None:
    """effective/ agrees with the live pointers and with `list`; one DAG file per effective workflow."""
    backend = world.backend
    view = effective(world)
    state = backend.pointer_version("state/current.json")
    assert view["computed_from"] == {"code": backend.pointer_version("code/current.json"),
                                     "manual": backend.pointer_version("manual/current.json"),
                                     "state": state or None}, view["computed_from"]
    listed = {r["name"]: (r["source"], r["status"], r["version"])
              for r in (world.rows() if rows is None else rows) if r["status"] != "overridden"}
    assert {n: (w["source"], w["status"], w["version"]) for n, w in view["workflows"].items()} == listed
    assert backend.keys("effective/dags") == {f"{n}.py" for n in listed}
    for name, row in view["workflows"].items():
        header = dag_header(world, name)
        assert f"source: {row['source']}" in header and f"sha256: {row['sha256']}" in header, (name, header)


# -- register / unregister ---------------------------------------------------------------------


def test_register_new_then_force_replace(published: World) -> None:
    world = published
    path = world.write_adhoc("adhoc-report", command="echo v1")
    first = world.ok("register", str(path), actor="dana-ops")
    assert set(first) >= PUBLISH_KEYS
    assert first["published"] is True and first["version"] == 1 and first["previous_version"] is None
    assert first["summary"]["create"] == 1 and first["summary"]["update"] == 0

    same_forced = world.ok("register", "--force", str(path))
    assert same_forced["published"] is False and same_forced["version"] == 1, same_forced

    path.write_text(adhoc_text("adhoc-report", command="echo v2"))
    assert_error(world.cli("register", str(path), "-o", "json"), "WF807", 1, "--force")
    assert world.backend.pointer_version("manual/current.json") == 1  # refused: nothing written

    replaced = world.ok("register", "--force", str(path), actor="erin-ops")
    assert replaced["published"] is True and replaced["version"] == 2 and replaced["previous_version"] == 1
    assert replaced["summary"]["update"] == 1 and replaced["summary"]["create"] == 0
    live = world.backend.json("manual/versions/2.json")["workflows"]["adhoc-report"]
    assert b"echo v2" in (world.backend.read(live["object"]) or b"")

    listed, history, named = world.parallel(("list", "--source", "manual", "-o", "json"),
                                            ("history", "--source", "manual", "-o", "json"),
                                            ("history", "--source", "manual", "adhoc-report", "-o", "json"))
    rows = [(r["name"], r["source"], r["status"], r["version"]) for r in listed.data["workflows"]]
    assert rows == [("adhoc-report", "MANUAL", "active", 2)]
    assert history.data["source"] == "MANUAL"
    assert [v["version"] for v in history.data["versions"]] == [2, 1]
    for row in history.data["versions"]:
        assert {"version", "created_at", "publisher", "git_commit", "summary"} <= set(row)
        assert row["created_at"] and row["git_commit"] is None
    assert [v["publisher"] for v in history.data["versions"]] == ["erin-ops", "dana-ops"]  # who registered it
    assert [v["version"] for v in named.data["versions"]] == [2, 1]
    assert_consistent(world)


def test_reregister_same_content_is_a_noop(published: World) -> None:
    """SPEC 6: register has the publish shape and "a no-op reports the live version with
    published: false"; replaying the same file is not a replacement and needs no --force."""
    world = published
    path = world.write_adhoc("adhoc-same")
    assert world.ok("register", str(path))["version"] == 1
    again = world.cli("register", str(path), "-o", "json")
    assert again.code == 0, again
    assert again.data["published"] is False and again.data["version"] == 1, again
    assert world.backend.pointer_version("manual/current.json") == 1


def test_register_invalid_file_changes_nothing(published: World) -> None:
    world = published
    path = world.adhoc / "broken.yaml"
    path.write_text(adhoc_text("broken-one").replace("component: bash", "component: no_such_component"))
    run = world.cli("register", str(path))
    assert_error(run, "WF812", 1)
    assert "no_such_component" in run.err, run
    assert world.backend.read("manual/current.json") is None


def test_register_and_unregister_of_code_names_are_refused(published: World) -> None:
    world = published
    path = world.write_adhoc("hello-bash", command="echo mine")
    refused = world.cli("register", str(path))
    assert_error(refused, "WF801", 1, "managed in git")
    assert "hello-bash" in refused.err
    assert_error(world.cli("unregister", "hello-bash", "-o", "json"), "WF801", 1, "managed in git")
    assert_error(world.cli("unregister", "no-such-workflow"), "WF800", 1, "wfctl list")
    assert world.backend.read("manual/current.json") is None
    assert world.backend.read("state/current.json") is None


def test_unregister_removes_from_live_set_and_keeps_history(published: World) -> None:
    world = published
    keep, drop = world.write_adhoc("adhoc-keep"), world.write_adhoc("adhoc-drop", command="echo bye")
    assert world.ok("register", str(keep), str(drop))["version"] == 1
    manifest_1 = world.backend.json("manual/versions/1.json")
    drop_object = manifest_1["workflows"]["adhoc-drop"]["object"]
    assert world.backend.read("effective/dags/adhoc-drop.py") is not None

    gone = world.ok("unregister", "adhoc-drop")
    assert set(gone) >= PUBLISH_KEYS
    assert gone["published"] is True and gone["version"] == 2 and gone["previous_version"] == 1
    assert gone["summary"]["delete"] == 1

    listed, history, shown, again, never = world.parallel(
        ("list", "-o", "json"), ("history", "--source", "manual", "adhoc-drop", "-o", "json"),
        ("show", "adhoc-drop", "--source", "manual", "--version", "1", "-o", "json"),
        ("unregister", "adhoc-drop"), ("history", "--source", "manual", "never-registered"))
    names = {(r["name"], r["source"]) for r in listed.data["workflows"]}
    assert ("adhoc-drop", "MANUAL") not in names and ("adhoc-keep", "MANUAL") in names
    assert "adhoc-drop" not in effective(world)["workflows"]
    assert world.backend.read("effective/dags/adhoc-drop.py") is None
    # its versions and objects stay in the store
    assert [v["version"] for v in history.data["versions"]] == [2, 1]
    assert world.backend.read("manual/versions/1.json") is not None
    assert world.backend.read(drop_object) is not None
    assert "echo bye" in json.dumps(shown.data["definition"])

    assert_error(again, "WF800", 1)
    assert_error(never, "WF800", 1)
    assert world.backend.pointer_version("manual/current.json") == 2
    assert_consistent(world, listed.data["workflows"])


# -- CODE over MANUAL ------------------------------------------------------------------------------


def test_override_on_publish_and_reactivation_on_delete(published: World) -> None:
    world, name = published, "ops-cleanup"
    manual_file = world.write_adhoc(name, command="echo manual", owner="ops-team")
    assert world.ok("register", str(manual_file))["version"] == 1
    assert dag_header(world, name).count("source: MANUAL") == 1

    # git takes the name over
    world.code_file(name).write_text(adhoc_text(name, command="echo from git", owner="platform"))
    world.commit(f"add {name}")
    plan, text = world.parallel(("plan", "-o", "json", "--detailed-exitcode"), ("plan",))
    assert plan.code == 4, plan
    assert plan.data["overrides"] == [{"name": name, "effect": "overridden"}]
    assert [(c["name"], c["action"]) for c in plan.data["changes"]] == [(name, "create")]
    assert text.code == 0 and name in text.out and "overridden" in text.out, text

    assert world.publish()["version"] == 2
    listed, overridden, manual_status, code_status = world.parallel(
        ("list", "-o", "json"), ("list", "--status", "overridden", "-o", "json"),
        ("status", name, "--source", "manual", "-o", "json"), ("status", name, "-o", "json"))
    all_rows = listed.data["workflows"]
    rows = {(r["name"], r["source"]): r for r in all_rows}
    assert [(r["source"], r["status"]) for r in all_rows if r["name"] == name] == [("CODE", "active"),
                                                                                  ("MANUAL", "overridden")]
    assert rows[name, "CODE"]["version"] == 2 and rows[name, "CODE"]["owner"] == "platform"
    assert rows[name, "MANUAL"]["version"] == 1 and rows[name, "MANUAL"]["owner"] == "ops-team"
    assert [(r["name"], r["source"]) for r in overridden.data["workflows"]] == [(name, "MANUAL")]

    assert set(manual_status.data) >= STATUS_KEYS and set(code_status.data) >= STATUS_KEYS
    assert manual_status.data["source"] == "MANUAL" and manual_status.data["status"] == "overridden"
    assert "overridden by CODE version 2" in manual_status.data["reason"]
    assert manual_status.data["next_runs"] == []
    assert code_status.data["source"] == "CODE" and code_status.data["status"] == "active"
    assert code_status.data["version"] == 2 and len(code_status.data["next_runs"]) == 3

    view = effective(world)
    assert view["workflows"][name]["source"] == "CODE"
    assert view["computed_from"] == {"code": 2, "manual": 1, "state": None}
    header = dag_header(world, name)
    assert "source: CODE" in header and "source: MANUAL" not in header

    # operator state of the shadowed registration is refused, with the remedy
    assert_error(world.cli("pause", name, "--source", "manual"), "WF802", 1, "remove or rename the CODE workflow")
    assert_error(world.cli("unpause", name, "--source", "manual", "-o", "json"), "WF802", 1,
                 "remove or rename the CODE workflow")
    assert world.backend.read("state/current.json") is None
    # ... and so is registering over it
    assert_error(world.cli("register", "--force", str(manual_file)), "WF801", 1, "managed in git")

    # git lets go of the name: the MANUAL registration comes back
    world.code_file(name).unlink()
    world.commit(f"remove {name}")
    plan = world.cli("plan", "-o", "json", "--detailed-exitcode")
    assert plan.code == 4, plan
    assert plan.data["overrides"] == [{"name": name, "effect": "reactivated"}]
    assert [(c["name"], c["action"]) for c in plan.data["changes"]] == [(name, "delete")]

    assert world.publish("--allow-deletes")["version"] == 3
    listed, back = world.parallel(("list", "-o", "json"), ("status", name, "-o", "json"))
    assert [(r["source"], r["status"], r["version"]) for r in listed.data["workflows"] if r["name"] == name] == [
        ("MANUAL", "active", 1)]
    assert back.data["source"] == "MANUAL" and back.data["status"] == "active" and len(back.data["next_runs"]) == 3
    view = effective(world)
    assert view["workflows"][name]["source"] == "MANUAL"
    assert name not in view.get("overridden", {})
    header = dag_header(world, name)
    assert "source: MANUAL" in header and "source: CODE" not in header
    # CODE operations never touched MANUAL versions
    assert world.backend.pointer_version("manual/current.json") == 1
    assert world.backend.keys("manual/versions") == {"1.json"}
    assert_consistent(world, listed.data["workflows"])


def test_plan_without_override_flips_is_not_destructive(published: World) -> None:
    world = published
    assert world.ok("register", str(world.write_adhoc("adhoc-other")))["version"] == 1
    world.code_file("brand-new").write_text(adhoc_text("brand-new"))
    world.commit("add brand-new")
    plan = world.cli("plan", "-o", "json", "--detailed-exitcode")
    assert plan.code == 2 and plan.data["overrides"] == [], plan


# -- operator state ---------------------------------------------------------------------------------


def test_pause_survives_publish(published: World) -> None:
    world, name = published, "daily-sales"
    paused = world.ok("pause", name, actor="alice-oncall")
    assert set(paused) >= STATUS_KEYS
    assert paused["status"] == "paused" and paused["source"] == "CODE" and paused["next_runs"] == []
    assert "alice-oncall" in paused["reason"]
    assert effective(world)["workflows"][name]["status"] == "paused"

    text = world.code_file(name).read_text()
    world.code_file(name).write_text(text.replace("default: 1000", "default: 2000"))
    world.commit("raise min_rows")
    assert world.publish()["version"] == 2

    status_run, paused_run = world.parallel(("status", name, "-o", "json"), ("list", "--status", "paused", "-o", "json"))
    after = status_run.data
    assert after["status"] == "paused" and after["version"] == 2, after
    assert "alice-oncall" in after["reason"], after
    assert [(r["name"], r["version"]) for r in paused_run.data["workflows"]] == [(name, 2)]
    assert effective(world)["workflows"][name]["status"] == "paused"
    assert world.backend.pointer_version("state/current.json") == 1  # publish never writes state

    unpaused = world.ok("unpause", name, actor="bob")
    assert unpaused["status"] == "active" and unpaused["version"] == 2 and len(unpaused["next_runs"]) == 3
    rows = world.rows()
    assert [r["name"] for r in rows if r["status"] == "paused"] == []
    assert_consistent(world, rows)


def test_pause_manual_registration(published: World) -> None:
    world = published
    assert world.ok("register", str(world.write_adhoc("adhoc-nightly")))["version"] == 1
    paused = world.ok("pause", "adhoc-nightly", "--source", "manual", actor="carol")
    assert paused["source"] == "MANUAL" and paused["status"] == "paused" and "carol" in paused["reason"]
    assert effective(world)["workflows"]["adhoc-nightly"]["status"] == "paused"
    assert world.ok("unpause", "adhoc-nightly")["status"] == "active"  # the effective one is the MANUAL one
    assert_error(world.cli("pause", "no-such-workflow"), "WF800", 1)
    assert_consistent(world)


# -- list / status ---------------------------------------------------------------------------------


def test_list_filters_and_shape(published: World) -> None:
    world = published
    assert world.ok("register", str(world.write_adhoc("adhoc-ops", owner="ops-team")),
                    str(world.write_adhoc("hello-bash-clone", owner="data-platform", cron=None)))["version"] == 1
    world.ok("pause", "finance-month-end")

    rows = world.rows()
    assert [(r["name"], r["source"]) for r in rows] == sorted((r["name"], r["source"]) for r in rows)
    assert {r["name"] for r in rows if r["source"] == "CODE"} == set(CODE_NAMES)
    by = {(r["name"], r["source"]): r for r in rows}
    ops = by["adhoc-ops", "MANUAL"]
    assert (ops["status"], ops["version"], ops["owner"]) == ("active", 1, "ops-team")
    assert "0 3 * * *" in ops["schedule"]
    assert by["hello-bash-clone", "MANUAL"]["schedule"] is None
    assert by["finance-month-end", "CODE"]["status"] == "paused"

    filters = [("--source", "manual"), ("--status", "paused"), ("--owner", "data-platform"),
               ("--owner", "ops-team", "--source", "manual"), ("--owner", "nobody")]
    runs = world.parallel(*[("list", *f, "-o", "json") for f in filters], ("list", "--source", "code"))
    assert all(r.code == 0 for r in runs), "\n".join(map(str, runs))
    got = {f: [(w["name"], w["source"], w["status"]) for w in r.data["workflows"]]
           for f, r in zip(filters, runs[:len(filters)], strict=True)}
    assert {(n, s) for n, s, _ in got["--source", "manual"]} == {("adhoc-ops", "MANUAL"), ("hello-bash-clone", "MANUAL")}
    assert got["--status", "paused"] == [("finance-month-end", "CODE", "paused")]
    assert {(n, s) for n, s, _ in got["--owner", "data-platform"]} == {("hello-bash", "CODE"), ("hello-bash-clone", "MANUAL")}
    assert got["--owner", "ops-team", "--source", "manual"] == [("adhoc-ops", "MANUAL", "active")]
    assert got["--owner", "nobody"] == []

    text = runs[-1]  # the text table, one source
    assert "hello-bash " in text.out and "adhoc-ops" not in text.out and "MANUAL" not in text.out, text
    assert world.cli("list", "--status", "bogus").code == 2


def test_list_table_fits_80_columns(published: World) -> None:
    """The issue: "the text table is readable at 80 columns" -- for this repo's own examples."""
    world = published
    assert world.ok("register", str(world.write_adhoc("adhoc-ops")))["version"] == 1
    run = world.cli("list")
    assert run.code == 0, run
    lines = run.out.rstrip("\n").splitlines()
    assert len(lines) == 1 + len(CODE_NAMES) + 1
    assert all(name in run.out for name in CODE_NAMES)
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, "lines wider than 80 columns:\n" + "\n".join(too_wide)


def test_status_shape_and_next_runs(published: World) -> None:
    world = published
    result = world.status("daily-sales")
    assert result["name"] == "daily-sales" and result["source"] == "CODE" and result["status"] == "active"
    assert result["version"] == 1 and "version 1" in result["reason"]
    runs = result["next_runs"]
    assert len(runs) == 3
    parsed = [datetime.fromisoformat(r.replace("Z", "+00:00")) for r in runs]
    assert all(p.utcoffset() is not None for p in parsed)
    assert parsed == sorted(parsed) and len(set(parsed)) == 3
    assert parsed[0] > datetime.now(UTC)
    assert all(p.astimezone(UTC).hour == 17 and p.minute == 0 for p in parsed)  # 02:00 Asia/Seoul

    assert world.status("hello-bash")["next_runs"] == []  # no schedule
    text = world.cli("status", "daily-sales")
    assert text.code == 0 and "daily-sales" in text.out and "CODE" in text.out, text
    assert_error(world.cli("status", "no-such-workflow"), "WF800", 1, "wfctl list")
    assert_error(world.cli("status", "no-such-workflow", "-o", "json"), "WF800", 1)
    # SPEC 6: "times are UTC ISO 8601" in every JSON shape (last: the checks above stand on their own)
    assert all(p.utcoffset() == timedelta(0) for p in parsed), f"next_runs are not UTC: {runs}"


# -- races -------------------------------------------------------------------------------------------

ROUNDS = 3
PAUSE_TARGETS = [("hello-bash", "daily-sales"), ("customer-reprocess", "finance-month-end"),
                 ("marketing-attribution", "orders-hourly-sync")]


@pytest.fixture
def race_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "local":
        backend = Backend("local", str(tmp_path / "store"), root=tmp_path / "store")
    else:
        backend = _s3_backend(request.param, request.getfixturevalue(request.param))
    yield World(tmp_path, backend, _env(tmp_path))


def _wait(started: list[tuple[str, str, tuple[list[str], subprocess.Popen[str]]]]) -> list[tuple[str, str, Run]]:
    done = []
    for kind, subject, (args, proc) in started:
        out, err = proc.communicate(timeout=TIMEOUT)
        done.append((kind, subject, checked(Run(args, proc.returncode, out, err))))
    return done


@pytest.mark.parametrize("race_world", ["local", "seaweedfs"], indirect=True)
def test_concurrent_register_publish_pause_lose_no_update(race_world: World) -> None:
    """Two registers, two publishes (two CI clones of the same commit) and two pauses start at
    once, for several rounds. Every command that exits 0 has its effect in the final state;
    every loser exits 3 with WF803 and changes nothing; effective/ matches the final pointers."""
    world = race_world
    assert world.publish()["version"] == 1
    clones = []
    for i in range(2):
        git.Repo.clone_from(str(world.repo_dir), str(world.tmp / f"ci{i}"), branch="main")
        clones.append(world.tmp / f"ci{i}")
    registered: set[str] = set()
    paused: set[str] = set()
    pause_wins = 0
    hello = world.code_file("hello-bash")
    original = hello.read_text()

    for rnd in range(ROUNDS):
        marker = f"echo round {rnd}"
        hello.write_text(original.replace("command:", f"command: \"{marker}\" #", 1))
        world.commit(f"round {rnd}")
        for clone in clones:
            git.Repo(clone).git.pull("--ff-only")
        files = {n: world.write_adhoc(n, command=f"echo {n}") for n in (f"race{rnd}-a", f"race{rnd}-b")}
        started = []
        for n, path in files.items():
            started.append(("register", n, world.start("register", str(path), "-o", "json", actor=f"op-{n}")))
        for clone in clones:
            started.append(("publish", clone.name, world.start("publish", "-o", "json", repo=clone)))
        for target in PAUSE_TARGETS[rnd]:
            started.append(("pause", target, world.start("pause", target, "-o", "json", actor=f"pauser-{target}")))
        results = _wait(started)

        published_now = 0
        for kind, subject, run in results:
            assert run.code in (0, 3), run
            if run.code == 3:
                assert_error(run, "WF803", 3)
                continue
            if kind == "register":
                assert run.data["published"] is True, run
                registered.add(subject)
            elif kind == "publish":
                published_now += run.data["published"] is True
            else:
                assert run.data["status"] == "paused", run
                paused.add(subject)
                pause_wins += 1
        assert published_now == 1, "\n\n".join(str(r) for _, _, r in results)
        assert any(k == "register" and r.code == 0 for k, _, r in results)
        assert any(k == "pause" and r.code == 0 for k, _, r in results)

        # no lost update: every winner is visible; losers wrote no version and no state
        backend = world.backend
        assert backend.pointer_version("code/current.json") == rnd + 2
        assert backend.pointer_version("manual/current.json") == len(registered)
        assert backend.pointer_version("state/current.json") == pause_wins
        rows = world.rows()
        assert {r["name"] for r in rows if r["source"] == "MANUAL"} == registered
        assert {r["name"] for r in rows if r["status"] == "paused"} == paused
        assert all(r["source"] == "CODE" for r in rows if r["status"] == "paused")
        code = backend.json(f"code/versions/{rnd + 2}.json")
        hello_object = backend.read(code["workflows"]["hello-bash"]["object"])
        assert hello_object is not None and marker.encode() in hello_object
        assert_consistent(world)
