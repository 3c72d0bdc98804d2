"""End to end: the GitOps round trip through the real ``wfctl`` command.

Every CLI test runs ``python -m wfctl`` in a subprocess, in a real git repo
(the bundled examples, committed on ``main``), against the local default
store, moto's S3 server and SeaweedFS. The store is then read back with plain
file reads or boto3, never through wfctl, to check SPEC section 4: the layout,
content addressing, manifests, the effective view.

Concurrency and crash tests need exactly one winner, so they run on the local
store and SeaweedFS only (moto's conditional writes are check-then-write, not
atomic under concurrency). Crash injection and request counting run the
library in-process, with a wrapper store or botocore event hooks.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import git
import pytest
from gitops_helpers import (
    DAG_KEY,
    DAILY_SALES,
    EMAIL,
    MARKER,
    OBJECT_KEY,
    VERSION_KEY,
    WORKFLOW_NAMES,
    RawStore,
    Result,
    assert_error,
    base_env,
    canonical,
    check_layout,
    commit_all,
    live_definition,
    make_git_repo,
    names_in,
    ok,
    set_cron,
    set_description,
    sha256,
    wfctl,
)
from servers import ACCESS_KEY, SECRET_KEY, S3Server, closed_port, fake_aws_env, moto_server, seaweedfs  # noqa: F401

from wfctl import config as config_mod
from wfctl import deploy, doctor, views
from wfctl.bundle import Source
from wfctl.deploy import PublishOptions
from wfctl.store.base import Blob, Store
from wfctl.store.local import LocalStore
from wfctl.store.s3 import S3Store
from wfctl.store.url import open_store

BACKENDS = ["local", "moto", "seaweedfs"]
ATOMIC_BACKENDS = ["local", "seaweedfs"]  # moto's conditional writes are not atomic under concurrency

pytestmark = pytest.mark.usefixtures("fake_aws_env")


# -- backends -------------------------------------------------------------------------


class Backend:
    """Where a test's store lives: the repo's local default store or a fresh S3 bucket."""

    def __init__(self, name: str, server: S3Server | None) -> None:
        self.name = name
        self.server = server
        self.url = server.new_bucket("deploys/prod") if server else ""

    def raw(self, repo_root: Path, shared: Path | None = None) -> RawStore:
        """The store as ``wfctl`` in ``repo_root`` sees it with :meth:`args` (``shared``: an explicit local dir)."""
        if self.server is None:
            root = shared or repo_root / ".wfctl" / "store"
            return RawStore("local", root=root, args=["--store", str(shared)] if shared else [], url=str(root))
        bucket, _, prefix = self.url[len("s3://"):].partition("/")
        return RawStore("s3", client=self.server.client(), bucket=bucket, prefix=prefix, url=self.url,
                        args=["--store", self.url, "--endpoint-url", self.server.endpoint_url],
                        endpoint_url=self.server.endpoint_url)

    def store(self, raw: RawStore) -> Store:
        """wfctl's own store object for the same place (for in-process checks)."""
        return open_store(raw.url, endpoint_url=raw.endpoint_url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    server = None if request.param == "local" else request.getfixturevalue(
        "moto_server" if request.param == "moto" else "seaweedfs")
    return Backend(request.param, server)


@pytest.fixture(params=ATOMIC_BACKENDS)
def atomic_backend(request: pytest.FixtureRequest) -> Backend:
    server = None if request.param == "local" else request.getfixturevalue("seaweedfs")
    return Backend(request.param, server)


class Repo:
    """A git workflows repo plus the options that point ``wfctl`` at the test's store."""

    def __init__(self, root: Path, raw: RawStore, **make: Any) -> None:
        self.root = root
        self.git = make_git_repo(root, **make) if not (root / ".git").exists() else git.Repo(root)
        self.raw = raw

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return wfctl(self.root, *self.raw.args, *args, env=env)

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return ok(self.run(*args, "-o", "json", env=env)).json

    def commit(self, message: str) -> str:
        return commit_all(self.git, message)

    def live_version(self) -> int:
        return int(self.raw.json("code/current.json")["version"])


@pytest.fixture
def repo(backend: Backend, tmp_path: Path) -> Repo:
    root = tmp_path / "repo"
    return Repo(root, backend.raw(root))


def published(repo: Repo, version: int, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = repo.json("publish", *args, env=env)
    assert out["published"] is True and out["version"] == version, out
    assert repo.live_version() == version
    return out


def cron_of(definition: dict[str, Any]) -> str:
    return str(definition["spec"]["schedule"]["cron"])


# -- the round trip -----------------------------------------------------------------------


def test_round_trip(repo: Repo) -> None:
    """first plan, publish, idempotent re-publish, change, plan (text/json/markdown),
    publish, history, show, rollback; then the store layout of SPEC section 4."""
    first_commit = repo.git.head.commit.hexsha

    # first plan: all creates, the SPEC JSON shape, detailed exit code 2
    plan = repo.json("plan")
    assert plan["base"]["version"] is None
    assert plan["summary"] == {"create": 8, "update": 0, "delete": 0, "unchanged": 0}
    assert {c["name"] for c in plan["changes"]} == WORKFLOW_NAMES
    assert all(c["action"] == "create" and isinstance(c["fields"], list) for c in plan["changes"])
    assert plan["overrides"] == []
    assert repo.run("plan", "--detailed-exitcode").rc == 2
    text = ok(repo.run("plan")).out
    assert text.count("+ create") == 8 and "Plan: 8 to create, 0 to update, 0 to delete, 0 unchanged." in text
    md = ok(repo.run("plan", "-o", "markdown")).out
    assert md.count("<details>") == 8 and md.count("</details>") == 8 and "| 8 | 0 | 0 | 0 |" in md
    assert not repo.raw.keys(), "plan wrote to the store"

    # publish: version 1, the publish JSON shape
    out = published(repo, 1)
    assert {"published", "version", "previous_version", "summary"} <= set(out) and out["previous_version"] is None
    assert out["summary"] == {"create": 8, "update": 0, "delete": 0, "unchanged": 0}

    # idempotent: nothing new, not even a manifest key
    before = repo.raw.fingerprint()
    again = repo.json("publish")
    assert again["published"] is False and again["version"] == 1
    assert again["summary"] == {"create": 0, "update": 0, "delete": 0, "unchanged": 8}
    assert repo.raw.fingerprint() == before
    assert repo.run("plan", "--detailed-exitcode").rc == 0
    assert "No changes." in ok(repo.run("plan")).out

    # change a cron and commit: the plan shows a field-level update and next runs
    set_cron(repo.root, "30 3 * * *")
    second_commit = repo.commit("daily-sales at 03:30")
    plan = repo.json("plan")
    assert plan["base"]["version"] == 1
    assert plan["summary"] == {"create": 0, "update": 1, "delete": 0, "unchanged": 7}
    [change] = plan["changes"]
    assert change["name"] == "daily-sales" and change["action"] == "update"
    assert {"path": "spec.schedule.cron", "before": "0 2 * * *", "after": "30 3 * * *"} in change["fields"]
    runs = change["next_runs"]
    assert len(runs["before"]) == 3 and len(runs["after"]) == 3
    seoul = ZoneInfo("Asia/Seoul")
    before_runs = [datetime.fromisoformat(r) for r in runs["before"]]
    after_runs = [datetime.fromisoformat(r) for r in runs["after"]]
    assert all(r.utcoffset() == timedelta(0) for r in before_runs + after_runs), runs  # JSON times are UTC
    assert all(r.astimezone(seoul).strftime("%H:%M") == "02:00" for r in before_runs), runs
    assert all(r.astimezone(seoul).strftime("%H:%M") == "03:30" for r in after_runs), runs
    assert before_runs == sorted(before_runs) and after_runs == sorted(after_runs)
    text = ok(repo.run("plan")).out
    assert re.search(r"^  ~ update daily-sales", text, re.MULTILINE), text
    assert '~ spec.schedule.cron: "0 2 * * *" -> "30 3 * * *"' in text
    for side, expected in (("before", before_runs), ("after", after_runs)):
        line = re.search(rf"next runs {side}: (.*)$", text, re.MULTILINE)
        assert line, text
        shown = [datetime.fromisoformat(t.strip()) for t in line.group(1).split(",")]
        assert shown == expected and all(t.utcoffset() == timedelta(hours=9) for t in shown), line.group(0)  # in KST
    assert "Plan: 0 to create, 1 to update, 0 to delete, 7 unchanged." in text
    md = ok(repo.run("plan", "-o", "markdown")).out
    assert re.search(r"^\| create \| update \| delete \| unchanged .*\|$", md, re.MULTILINE), md
    assert re.search(r"^\| 0 \| 1 \| 0 \| 7 \|", md, re.MULTILINE), md
    assert md.count("<details>") == 1 and md.count("</details>") == 1
    assert re.search(r"<details><summary>.*daily-sales.*</summary>", md), md
    assert "spec.schedule.cron" in md
    assert repo.run("plan", "--detailed-exitcode").rc == 2

    # publish version 2
    out = published(repo, 2)
    assert out["previous_version"] == 1 and out["summary"]["update"] == 1

    # history: newest first, git commit and publisher recorded
    history = repo.json("history")
    assert history["source"] == "CODE"
    assert [v["version"] for v in history["versions"]] == [2, 1]
    assert [v["git_commit"] for v in history["versions"]] == [second_commit, first_commit]
    assert all(v["publisher"] == EMAIL for v in history["versions"])
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v["created_at"]) for v in history["versions"])
    assert history["versions"][0]["summary"]["update"] == ["daily-sales"]
    assert [v["version"] for v in repo.json("history", "daily-sales")["versions"]] == [2, 1]
    assert [v["version"] for v in repo.json("history", "hello-bash")["versions"]] == [1]
    text = ok(repo.run("history")).out
    assert text.index(second_commit[:12]) < text.index(first_commit[:12])

    # show: live and an old version
    shown = repo.json("show", "daily-sales")
    assert shown["name"] == "daily-sales" and shown["source"] == "CODE" and shown["version"] == 2
    assert cron_of(shown["definition"]) == "30 3 * * *"
    assert shown["sha256"] == sha256(canonical(shown["definition"]))
    old = repo.json("show", "daily-sales", "--version", "1")
    assert old["version"] == 1 and cron_of(old["definition"]) == "0 2 * * *"
    assert "30 3 * * *" in ok(repo.run("show", "daily-sales")).out

    # rollback --to 1: a new version 3 with version 1's content (by a CI actor)
    out = repo.json("rollback", "--to", "1", env=base_env(GITHUB_ACTOR="deploy-bot"))
    assert out["published"] is True and out["version"] == 3 and out["previous_version"] == 2
    shown = repo.json("show", "daily-sales")
    assert shown["version"] == 3 and cron_of(shown["definition"]) == "0 2 * * *" and shown["sha256"] == old["sha256"]
    layout = check_layout(repo.raw)
    manifests = layout["manifests"]
    assert {n: e["sha256"] for n, e in manifests[3]["workflows"].items()} == \
        {n: e["sha256"] for n, e in manifests[1]["workflows"].items()}
    assert manifests[3]["publisher"] == "deploy-bot"
    assert [v["version"] for v in repo.json("history")["versions"]] == [3, 2, 1]
    assert repo.json("rollback", "--to", "1")["published"] is False  # already live: a no-op
    assert repo.live_version() == 3

    # the layout, exactly
    keys = layout["keys"]
    assert names_in(keys, VERSION_KEY) == {"1", "2", "3"}
    assert names_in(keys, DAG_KEY) == WORKFLOW_NAMES
    assert len(names_in(keys, OBJECT_KEY)) == 9  # 8 workflows + the 03:30 daily-sales
    assert keys == {"code/current.json", "effective/current.json", MARKER,
                    *(f"code/versions/{v}.json" for v in (1, 2, 3)),
                    *(f"code/objects/{d}.json" for d in names_in(keys, OBJECT_KEY)),
                    *(f"effective/dags/{n}.py" for n in WORKFLOW_NAMES)}
    for version, commit in ((1, first_commit), (2, second_commit)):
        assert manifests[version]["git"] == {"commit": commit, "branch": "main", "dirty": False}
        assert manifests[version]["publisher"] == EMAIL
    for name, entry in manifests[2]["workflows"].items():
        definition = repo.raw.json(entry["object"])
        assert definition["metadata"]["name"] == name
        assert sha256(repo.raw.read(entry["object"])) == entry["sha256"]
    assert manifests[2]["workflows"]["daily-sales"]["source_path"] == DAILY_SALES
    assert manifests[2]["workflows"]["refresh-products"]["source_path"] == "workflows/pipelines/table-refreshes.yaml"
    assert "30 3 * * *" not in repo.raw.read("effective/dags/daily-sales.py").decode()  # rolled back
    assert "0 2 * * *" in repo.raw.read("effective/dags/daily-sales.py").decode()


def test_plan_then_apply_safety(repo: Repo, backend: Backend, tmp_path: Path) -> None:
    """plan --out / publish --plan, a stale plan (WF810), --expect-version (WF803), --dry-run."""
    published(repo, 1)

    # publish exactly a saved plan
    set_description(repo.root, "Say hello, planned.")
    repo.commit("planned change")
    plan_file = tmp_path / "plan.json"
    ok(repo.run("plan", "--out", str(plan_file)))
    saved = json.loads(plan_file.read_text())
    assert saved["base"]["version"] == 1 and saved["summary"]["update"] == 1
    out = published(repo, 2, "--plan", str(plan_file))
    assert out["summary"]["update"] == 1
    assert live_definition(repo.raw, "hello-bash")["metadata"]["description"] == "Say hello, planned."

    # a stale plan: someone else (another clone, same store) publishes in between
    set_cron(repo.root, "0 4 * * *")
    repo.commit("04:00")
    ok(repo.run("plan", "--out", str(plan_file)))
    other_root = tmp_path / "other"
    with git.Repo.clone_from(repo.root, other_root, branch="main").config_writer() as cfg:
        cfg.set_value("user", "name", "Bob")
        cfg.set_value("user", "email", "bob@example.com")
    other = Repo(other_root, backend.raw(other_root, shared=repo.raw.root) if backend.server is None else repo.raw)
    set_description(other.root, "Say hello from elsewhere.")
    other.commit("someone else")
    published(other, 3)
    before = repo.raw.fingerprint()
    message = assert_error(repo.run("publish", "--plan", str(plan_file)), "WF810", 3)
    assert "version 2" in message and "now 3" in message
    assert repo.raw.fingerprint() == before

    # --expect-version: exit 3, WF803, nothing written; the JSON error shape on stdout
    assert_error(repo.run("publish", "--expect-version", "2"), "WF803", 3)
    failed = repo.run("publish", "--expect-version", "2", "-o", "json")
    assert failed.rc == 3 and failed.json["error"]["code"] == "WF803" and failed.json["error"]["hint"]
    assert repo.raw.fingerprint() == before

    # --dry-run writes nothing
    out = repo.json("publish", "--dry-run")
    assert out["published"] is False and out["dry_run"] is True and out["version"] == 3
    assert repo.raw.fingerprint() == before

    # the right expectation publishes
    out = published(repo, 4, "--expect-version", "3")
    assert cron_of(live_definition(repo.raw, "daily-sales")) == "0 4 * * *"
    check_layout(repo.raw)


def test_tree_and_branch_guards(repo: Repo) -> None:
    """WF805 for a dirty tree (tracked change, untracked file under paths) and for
    another branch, each with its override; WF811 out of order, --force overrides."""
    published(repo, 1)

    # dirty: a tracked change
    set_cron(repo.root, "5 2 * * *")
    before = repo.raw.fingerprint()
    message = assert_error(repo.run("publish"), "WF805", 1)
    assert DAILY_SALES in message
    assert repo.raw.fingerprint() == before
    published(repo, 2, "--allow-dirty")
    assert repo.raw.json("code/versions/2.json")["git"]["dirty"] is True

    # dirty: an untracked file under the configured paths (an untracked file elsewhere is fine)
    repo.git.git.checkout("--", DAILY_SALES)
    (repo.root / "notes.txt").write_text("not under paths\n")
    (repo.root / "workflows" / "pipelines" / "draft.yaml").write_text("# a draft\n")
    assert_error(repo.run("publish"), "WF805", 1)
    (repo.root / "workflows" / "pipelines" / "draft.yaml").unlink()
    published(repo, 3)  # back to the committed content; notes.txt does not count
    assert repo.raw.json("code/versions/3.json")["git"]["dirty"] is False

    # another branch
    repo.git.git.checkout("-q", "-b", "feature")
    set_description(repo.root, "On a feature branch.")
    repo.commit("feature work")
    message = assert_error(repo.run("publish"), "WF805", 1)
    assert "feature" in message and "main" in message
    published(repo, 4, "--allow-branch")
    assert repo.raw.json("code/versions/4.json")["git"]["branch"] == "feature"
    repo.git.git.checkout("-q", "main")
    repo.git.git.merge("-q", "--ff-only", "feature")

    # out of order: publish a newer commit, then an older commit of the deploy branch
    old_commit = repo.git.head.commit.hexsha
    set_cron(repo.root, "10 2 * * *")
    new_commit = repo.commit("newer")
    published(repo, 5)
    repo.git.git.reset("-q", "--hard", old_commit)
    before = repo.raw.fingerprint()
    message = assert_error(repo.run("publish"), "WF811", 3)
    assert new_commit[:12] in message
    assert repo.raw.fingerprint() == before
    published(repo, 6, "--force")
    assert repo.raw.json("code/versions/6.json")["git"]["commit"] == old_commit
    assert cron_of(live_definition(repo.raw, "daily-sales")) == "0 2 * * *"
    check_layout(repo.raw)


def test_mass_delete_guard(repo: Repo) -> None:
    """Deleting more than half of the live workflows needs --allow-deletes (WF814);
    a delete grades --detailed-exitcode 4."""
    published(repo, 1)
    for name in ("customer-reprocess", "finance-month-end", "hello-bash", "marketing-attribution", "orders-hourly-sync"):
        (repo.root / "workflows" / "pipelines" / f"{name}.yaml").unlink()
    repo.commit("a truncated checkout")
    plan = repo.json("plan")
    assert plan["summary"] == {"create": 0, "update": 0, "delete": 5, "unchanged": 3}
    assert {c["action"] for c in plan["changes"]} == {"delete"}
    assert repo.run("plan", "--detailed-exitcode").rc == 4
    assert ok(repo.run("plan")).out.count("- delete") == 5
    before = repo.raw.fingerprint()
    message = assert_error(repo.run("publish"), "WF814", 1)
    assert "5 of 8" in message
    assert repo.raw.fingerprint() == before
    out = published(repo, 2, "--allow-deletes")
    assert out["summary"] == {"create": 0, "update": 0, "delete": 5, "unchanged": 3}
    layout = check_layout(repo.raw)
    assert names_in(layout["keys"], DAG_KEY) == {"daily-sales", "refresh-customers", "refresh-products"}


def test_plan_against_a_git_ref_needs_no_store(tmp_path: Path) -> None:
    """--against REF works with a store that cannot be reached; a store plan there is WF804."""
    port = closed_port()
    raw = RawStore("s3", args=["--store", "s3://wfctl-unreachable/prefix", "--endpoint-url", f"http://127.0.0.1:{port}"])
    repo = Repo(tmp_path / "repo", raw)
    set_cron(repo.root, "30 3 * * *")
    repo.commit("03:30")
    env = base_env(AWS_MAX_ATTEMPTS="1")
    plan = ok(repo.run("plan", "--against", "HEAD~1", "-o", "json", env=env)).json
    assert plan["summary"] == {"create": 0, "update": 1, "delete": 0, "unchanged": 7}
    assert plan["changes"][0]["name"] == "daily-sales"
    assert plan["changes"][0]["fields"] == [{"path": "spec.schedule.cron", "before": "0 2 * * *", "after": "30 3 * * *"}]
    assert repo.run("plan", "--against", "HEAD~1", "--detailed-exitcode", env=env).rc == 2
    assert repo.run("plan", "--against", "HEAD", "--detailed-exitcode", env=env).rc == 0
    failed = repo.run("plan", env=env)
    assert "wfctl-unreachable" in assert_error(failed, "WF804", 1)
    assert f"127.0.0.1:{port}" in failed.err.splitlines()[-1]  # the hint names the endpoint
    assert ACCESS_KEY not in failed.err and SECRET_KEY not in failed.err
    assert_error(repo.run("plan", "--against", "no-such-ref", env=env), "WF813", 2)


def test_snapshot_then_plan_without_store(repo: Repo, tmp_path: Path) -> None:
    """snapshot --out F from the store; plan --snapshot F with the store unreachable."""
    published(repo, 1)
    set_cron(repo.root, "30 3 * * *")
    repo.commit("03:30")
    published(repo, 2)
    snap_file = tmp_path / "snapshot.json"
    ok(repo.run("snapshot", "--out", str(snap_file)))
    snap = json.loads(snap_file.read_text())
    assert snap["code"]["version"] == 2 and set(snap["code"]["workflows"]) == WORKFLOW_NAMES

    set_cron(repo.root, "45 4 * * *")
    repo.commit("04:45")
    offline = ["--store", "s3://wfctl-unreachable/prefix", "--endpoint-url", f"http://127.0.0.1:{closed_port()}"]
    env = base_env(AWS_MAX_ATTEMPTS="1")
    result = ok(wfctl(repo.root, *offline, "plan", "--snapshot", str(snap_file), "-o", "json", env=env))
    plan = result.json
    assert plan["base"]["version"] == 2
    assert plan["summary"] == {"create": 0, "update": 1, "delete": 0, "unchanged": 7}
    assert {"path": "spec.schedule.cron", "before": "30 3 * * *", "after": "45 4 * * *"} in plan["changes"][0]["fields"]
    assert wfctl(repo.root, *offline, "plan", "--snapshot", str(snap_file), "--detailed-exitcode", env=env).rc == 2

    # an edited snapshot is refused
    snap["code"]["workflows"]["daily-sales"]["definition"]["spec"]["schedule"]["cron"] = "1 1 * * *"
    snap_file.write_text(json.dumps(snap))
    assert_error(wfctl(repo.root, *offline, "plan", "--snapshot", str(snap_file), env=env), "WF806", 1)


def test_doctor(repo: Repo) -> None:
    report = repo.json("doctor")
    assert report["ok"] is True
    checks = {c["name"]: c for c in report["checks"]}
    assert {"config", "store", "reachable", "conditional-writes"} <= set(checks)
    assert all(c["ok"] for c in report["checks"])
    assert not [k for k in repo.raw.keys() if k.startswith("doctor/probe")]  # noqa: SIM118, "the probe left keys behind"
    published(repo, 1)
    assert repo.json("doctor")["ok"] is True


def test_dot_wfctl_never_makes_the_tree_dirty(tmp_path: Path) -> None:
    """Without a .gitignore, the local default store and cache under .wfctl/ are untracked
    files inside the repo; they must not count as dirty."""
    root = tmp_path / "repo"
    make_git_repo(root, gitignore=False)
    (root / "wfctl.yaml").write_text("paths: ['.']\n")
    commit_all(git.Repo(root), "paths: everything")
    assert ok(wfctl(root, "publish", "-o", "json")).json["version"] == 1
    set_cron(root, "30 3 * * *")
    commit_all(git.Repo(root), "03:30")
    assert ok(wfctl(root, "publish", "-o", "json")).json["version"] == 2


def test_deleting_exactly_half_is_allowed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_git_repo(root)
    ok(wfctl(root, "publish"))
    for name in ("customer-reprocess", "finance-month-end", "hello-bash", "marketing-attribution"):
        (root / "workflows" / "pipelines" / f"{name}.yaml").unlink()
    commit_all(git.Repo(root), "delete 4 of 8")
    assert wfctl(root, "plan", "--detailed-exitcode").rc == 4
    out = ok(wfctl(root, "publish", "-o", "json")).json
    assert out["version"] == 2 and out["summary"]["delete"] == 4


# -- integrity ----------------------------------------------------------------------------


def _rehash(manifest: dict[str, Any]) -> bytes:
    """A manifest edited by someone who also recomputed its self-digest."""
    body = {k: v for k, v in manifest.items() if k != "self_sha256"}
    return canonical({**body, "self_sha256": sha256(canonical(body))})


def test_tampered_store_is_refused(repo: Repo) -> None:
    """A modified object or manifest: show, plan, publish, history, rollback fail with
    WF806 (exit 1) and nothing is written."""
    published(repo, 1)
    set_cron(repo.root, "30 3 * * *")
    repo.commit("03:30")
    published(repo, 2)
    set_cron(repo.root, "45 4 * * *")
    repo.commit("04:45")  # the plan must now read the live daily-sales object
    raw = repo.raw

    def refused(*args: str) -> None:
        before = raw.fingerprint()
        assert_error(repo.run(*args), "WF806", 1)
        assert raw.fingerprint() == before, f"{args} wrote to a tampered store"

    # an object: same JSON shape, other content
    live = raw.json("code/versions/2.json")
    obj = live["workflows"]["daily-sales"]["object"]
    good = raw.read(obj)
    raw.write(obj, good.replace(b"30 3 * * *", b"30 9 * * *"))
    for args in (("show", "daily-sales"), ("plan",), ("publish",)):
        refused(*args)
    raw.write(obj, good)
    assert repo.run("plan", "--detailed-exitcode").rc == 2

    # the live manifest: a plain edit, and one with its self-digest recomputed
    good = raw.read("code/versions/2.json")
    evil = json.loads(good)
    evil["workflows"]["daily-sales"]["sha256"] = raw.json("code/versions/1.json")["workflows"]["daily-sales"]["sha256"]
    evil["workflows"]["daily-sales"]["object"] = raw.json("code/versions/1.json")["workflows"]["daily-sales"]["object"]
    raw.write("code/versions/2.json", good.replace(EMAIL.encode(), b"mallory@example.com"))
    for args in (("show", "daily-sales"), ("plan",), ("publish",), ("history",)):
        refused(*args)
    raw.write("code/versions/2.json", _rehash(evil))  # self-consistent, but not what the pointer names
    for args in (("show", "daily-sales"), ("publish",)):
        refused(*args)
    raw.write("code/versions/2.json", good)

    # an old manifest, plainly edited
    good = raw.read("code/versions/1.json")
    raw.write("code/versions/1.json", good.replace(b'"0 2 * * * (Asia/Seoul)"', b'"0 9 * * * (Asia/Seoul)"'))
    for args in (("show", "daily-sales", "--version", "1"), ("history",), ("rollback", "--to", "1")):
        refused(*args)
    raw.write("code/versions/1.json", good)

    # the pointer names a manifest digest that is not the live manifest's
    good = raw.read("code/current.json")
    pointer = json.loads(good)
    raw.write("code/current.json", canonical({**pointer, "manifest_sha256": sha256(b"something else")}))
    for args in (("show", "daily-sales"), ("publish",)):
        refused(*args)
    raw.write("code/current.json", good)

    # all repaired: everything works again
    published(repo, 3)
    check_layout(repo.raw)


def test_tampered_old_manifest_with_recomputed_digest_is_refused(repo: Repo) -> None:
    """An old version's manifest is pinned by its child's parent_sha256: rewriting it
    (even with a recomputed self-digest) must not be used by show --version or rollback."""
    published(repo, 1)
    set_cron(repo.root, "30 3 * * *")
    repo.commit("03:30")
    published(repo, 2)
    raw = repo.raw
    v1 = raw.json("code/versions/1.json")
    v2 = raw.json("code/versions/2.json")
    v1["workflows"]["daily-sales"] = v2["workflows"]["daily-sales"]  # point version 1 at other content
    raw.write("code/versions/1.json", _rehash(v1))
    before = raw.fingerprint()
    assert_error(repo.run("history"), "WF806", 1)
    assert_error(repo.run("show", "daily-sales", "--version", "1"), "WF806", 1)
    assert_error(repo.run("rollback", "--to", "1"), "WF806", 1)
    assert raw.fingerprint() == before


# -- concurrent publishers ------------------------------------------------------------------

LAUNCHER = """
import sys, time
from pathlib import Path
import git, wfctl.cli, wfctl.deploy, wfctl.doctor, wfctl.validate, wfctl.dagsync, wfctl.airflow_render
if sys.argv[3] == "s3":
    import wfctl.store.s3
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.0005)
sys.argv = ["wfctl", *sys.argv[4:]]
wfctl.cli.main()
"""


def _publish_together(clones: list[Path], args: list[str], barrier: Path, kind: str) -> list[Result]:
    """Start one ``wfctl publish`` per clone, release them at once, collect the results."""
    shutil.rmtree(barrier, ignore_errors=True)
    barrier.mkdir()
    go = barrier / "go"
    procs = []
    for i, clone in enumerate(clones):
        command = [sys.executable, "-c", LAUNCHER, str(barrier / f"ready-{i}"), str(go), kind, "--no-color", *args]
        procs.append(subprocess.Popen(command, cwd=clone, env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, stdin=subprocess.DEVNULL))
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < len(clones):
        assert time.monotonic() < deadline, "publishers did not get ready"
        time.sleep(0.005)
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(Result(args, proc.returncode, out, err))
    return results


def test_concurrent_publishers(atomic_backend: Backend, tmp_path: Path) -> None:
    """N publishers of different content start together from the same live version:
    exactly one wins (exit 0), every other exits 3 with WF803 and changes nothing;
    versions stay contiguous; a publish started after that builds on the winner.

    Each publisher passes ``--expect-version`` of the live version, so one that
    happens to start late is refused too; ``cas_losses`` proves the others really
    overlapped and lost at the compare-and-swap."""
    n, rounds = (6, 5) if atomic_backend.server is None else (5, 3)  # SeaweedFS: bounded time
    shared = tmp_path / "shared-store"
    main = Repo(tmp_path / "clone0", atomic_backend.raw(tmp_path / "clone0", shared=shared))
    raw = main.raw
    published(main, 1)
    clones = [main.root]
    for i in range(1, n):
        shutil.copytree(main.root, tmp_path / f"clone{i}", ignore=shutil.ignore_patterns(".wfctl"))
        clones.append(tmp_path / f"clone{i}")
    kind = "s3" if atomic_backend.server else "local"
    cas_losses = 0
    for r in range(rounds):
        live = main.live_version()
        crons = {}
        for i, clone in enumerate(clones):
            crons[i] = f"{r * n + i + 1} 1 * * *"
            set_cron(clone, crons[i])
        before = raw.fingerprint()
        results = _publish_together(clones, [*raw.args, "publish", "--allow-dirty", "--expect-version", str(live),
                                             "-o", "json"], tmp_path / "barrier", kind)
        winners = [i for i, res in enumerate(results) if res.rc == 0]
        assert len(winners) == 1, "\n\n".join(map(str, results))
        [winner] = winners
        assert results[winner].json["version"] == live + 1 and results[winner].json["published"] is True
        for i, res in enumerate(results):
            assert "Traceback" not in res.err, str(res)
            if i != winner:
                message = assert_error(res, "WF803", 3)
                cas_losses += "changed underneath" in message
        # nothing but the winner changed what is live
        layout = check_layout(raw, allow_orphan_objects=True)
        assert layout["pointer"]["version"] == live + 1
        assert cron_of(live_definition(raw, "daily-sales")) == crons[winner]
        assert crons[winner] in raw.read("effective/dags/daily-sales.py").decode()
        after = raw.fingerprint()
        for key, data in before.items():
            if not key.startswith("effective/") and key != "code/current.json":
                assert after[key] == data, f"{key} changed"
        new_keys = set(after) - set(before)
        assert {k for k in new_keys if not OBJECT_KEY.match(k)} == {f"code/versions/{live + 1}.json"}
    assert cas_losses > 0, "no loser ever reached the compare-and-swap: the publishers did not overlap"

    # a publish that starts after another finished builds on it
    live = main.live_version()
    set_cron(clones[1], "59 23 * * *")
    res = ok(wfctl(clones[1], *raw.args, "publish", "--allow-dirty", "-o", "json"))
    assert res.json["version"] == live + 1 and res.json["previous_version"] == live
    assert raw.json(f"code/versions/{live + 1}.json")["parent_version"] == live
    check_layout(raw, allow_orphan_objects=True)


# -- crash injection ------------------------------------------------------------------------


class Crash(BaseException):
    """A simulated process death: not an Exception, so no handler can swallow it."""


class CrashingStore(Store):
    """Delegates to a real store, and dies at its k-th call (before or after the call took effect)."""

    def __init__(self, inner: Store, crash_at: int | None, after: bool) -> None:
        self.inner = inner
        self.url = inner.url
        self.crash_at = crash_at
        self.after = after
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def _call(self, op: str, key: str, action: Callable[[], Any]) -> Any:
        with self.lock:
            self.calls.append((op, key))
            crash = len(self.calls) == self.crash_at
        if crash and not self.after:
            raise Crash(f"crash before {op} {key}")
        result = action()
        if crash:
            raise Crash(f"crash after {op} {key}")
        return result

    def get(self, key: str) -> Blob | None:
        return self._call("get", key, lambda: self.inner.get(key))  # type: ignore[no-any-return]

    def exists(self, key: str) -> bool:
        return self._call("exists", key, lambda: self.inner.exists(key))  # type: ignore[no-any-return]

    def put(self, key: str, data: bytes) -> None:
        self._call("put", key, lambda: self.inner.put(key, data))

    def put_if_absent(self, key: str, data: bytes) -> None:
        self._call("put_if_absent", key, lambda: self.inner.put_if_absent(key, data))

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> None:
        self._call("put_if_match", key, lambda: self.inner.put_if_match(key, data, etag))

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self.inner.delete(key))

    def list(self, prefix: str) -> Iterator[str]:
        return iter(self._call("list", prefix, lambda: list(self.inner.list(prefix))))  # type: ignore[no-any-return]

    def describe(self) -> str:
        return self.inner.describe()


@pytest.fixture(params=["local", "moto"])
def crash_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[RawStore, Callable[[], Store], tuple[bool, ...]]:
    """The store to crash on, and the crash modes: before the k-th call takes effect, after it.

    "before call k" leaves the store as "after call k-1" does, except inside the
    parallel upload; the slower moto run does the "after" mode only."""
    if request.param == "local":
        root = tmp_path / "store"
        return RawStore("local", root=root, url=str(root)), lambda: LocalStore(root), (False, True)
    server: S3Server = request.getfixturevalue("moto_server")
    url = server.new_bucket("crash")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    raw = RawStore("s3", client=server.client(), bucket=bucket, prefix=prefix, url=url, endpoint_url=server.endpoint_url)
    shared = open_store(url, endpoint_url=server.endpoint_url)
    return raw, lambda: shared, (True,)


def test_crash_at_every_store_call_of_a_publish(crash_store: tuple[RawStore, Callable[[], Store], tuple[bool, ...]],
                                                tmp_path: Path) -> None:
    """Kill a publish at its k-th store call, for every k: the previous version stays
    live and fully readable (or, once the pointer write took effect, the whole new
    one is), and a retry makes the next contiguous version and heals ``effective/``."""
    raw, healthy, modes = crash_store
    root = tmp_path / "repo"
    make_git_repo(root)
    config = config_mod.load(root)
    warnings: list[str] = []
    options = PublishOptions(allow_dirty=True)
    assert deploy.publish(config, healthy(), options, warnings.append).version == 1
    version = 1
    live_description = live_definition(raw, "hello-bash")["metadata"]["description"]
    total_runs = 0
    for after in modes:
        k = 0
        while True:
            k += 1
            description = f"crash {'after' if after else 'before'} call {k}"
            set_description(root, description)
            old = raw.json(f"code/versions/{version}.json")
            store = CrashingStore(healthy(), k, after)
            try:
                outcome = deploy.publish(config, store, options, warnings.append)
            except Crash:
                pass
            else:
                assert len(store.calls) < k and outcome.published and outcome.version == version + 1
                version, live_description = version + 1, description
                break
            total_runs += 1
            done = store.calls if after else store.calls[:-1]  # the calls that took effect
            moved = ("put_if_match", "code/current.json") in done
            # a reader sees the old version, or (once the pointer moved) the whole new one
            src = Source(healthy())
            pointer, manifest = src.live()
            assert pointer is not None and manifest is not None
            assert pointer.version == (version + 1 if moved else version), (k, store.calls)
            if not moved:
                assert manifest.digests == {n: e["sha256"] for n, e in old["workflows"].items()}
            for name, entry in manifest.workflows.items():
                assert src.definition(entry)["metadata"]["name"] == name
            shown = views.show(healthy(), "hello-bash")
            assert shown["definition"]["metadata"]["description"] == (description if moved else live_description)
            assert [m.version for m in islice(src.history(), 2)] == [pointer.version, pointer.version - 1][:pointer.version]
            assert deploy.plan(config, healthy)[0].base.version == pointer.version
            # a retry with a healthy store finishes the job: the next contiguous version
            outcome = deploy.publish(config, healthy(), options, warnings.append)
            assert outcome.version == version + 1 and outcome.published is not moved, (k, store.calls)
            version, live_description = version + 1, description
            manifest_json = raw.json(f"code/versions/{version}.json")
            pointer_json = raw.json("code/current.json")
            assert len(pointer_json.pop("writer")) == 32  # the nonce that tells our own write from a twin's
            assert pointer_json == {"format": "wfctl.pointer/v1", "version": version,
                                    "manifest_sha256": sha256(canonical(manifest_json))}
            effective = raw.json("effective/current.json")  # healed to the pointer
            assert effective["computed_from"]["code"] == version
            assert {n: w["sha256"] for n, w in effective["workflows"].items()} == \
                {n: e["sha256"] for n, e in manifest_json["workflows"].items()}
            hello = manifest_json["workflows"]["hello-bash"]["sha256"]
            assert f"sha256: {hello}" in raw.read("effective/dags/hello-bash.py").decode()
            assert json.loads(raw.read(f"code/objects/{hello}.json"))["metadata"]["description"] == description
        assert k > 10, f"a publish made only {k - 1} store calls?"
    assert total_runs >= 20 * len(modes) and not warnings
    layout = check_layout(raw)  # contiguous versions, a linear chain, no orphan object or manifest, effective/ in step
    assert layout["pointer"]["version"] == version == 1 + total_runs + len(modes)


# -- request counting -------------------------------------------------------------------------

GENERATED = """\
apiVersion: wfctl/v1
kind: Workflow
metadata:
  name: wf-{i:04d}
  owner: team-{team}
spec:
  schedule:
    cron: "{minute} 3 * * *"
    timezone: UTC
    start_date: 2025-01-01
  tasks:
    - name: run
      component: bash
      with: {{command: "echo {i}"}}
"""


def _generate(root: Path, start: int, stop: int) -> None:
    folder = root / "workflows" / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, stop):
        (folder / f"wf-{i:04d}.yaml").write_text(GENERATED.format(i=i, team=i % 7, minute=i % 60))


def _set_generated_cron(root: Path, i: int, minute: int) -> None:
    (root / "workflows" / "pipelines" / f"wf-{i:04d}.yaml").write_text(GENERATED.format(i=i, team=i % 7, minute=minute))


class Requests:
    """Every request an S3Store sends, by (HTTP method, operation)."""

    def __init__(self, store: S3Store) -> None:
        self.sent: list[tuple[str, str]] = []
        self.urls: list[str] = []
        store.client.meta.events.register("before-send.s3.*", self._count)

    def _count(self, **kwargs: Any) -> None:
        request = kwargs["request"]
        self.sent.append((request.method, kwargs["event_name"].rsplit(".", 1)[-1]))
        self.urls.append(f"{request.method} {request.url.split('?')[0].rsplit('/', 3)[-3:]}")

    def measure(self, action: Callable[[], Any]) -> Counter[tuple[str, str]]:
        start = len(self.sent)
        action()
        return Counter(self.sent[start:])


def test_request_counts_do_not_grow_with_the_number_of_workflows(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """plan costs O(1) requests plus one per changed workflow; a publish of one change
    among 1,000 writes one object, one manifest, one pointer, the effective view and one DAG file."""
    moto: S3Server = request.getfixturevalue("moto_server")
    root = tmp_path / "big"
    (root / "workflows" / "components").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parent.parent / "workflows" / "components" / "bash.yaml",
                root / "workflows" / "components")
    (root / "wfctl.yaml").write_text("paths: [workflows]\n")
    store = open_store(moto.new_bucket("big"), endpoint_url=moto.endpoint_url)
    assert isinstance(store, S3Store)
    requests = Requests(store)
    options = PublishOptions(allow_dirty=True, allow_branch=True)  # not a git checkout

    def publish() -> deploy.Outcome:
        doctor.require_conditional_writes(store)  # as the CLI does before every publish
        return deploy.publish(config_mod.load(root), store, options, print)

    def plan() -> Any:
        return deploy.plan(config_mod.load(root), lambda: store)[0]

    costs = {}
    for size, start in ((100, 0), (1000, 100)):
        _generate(root, start, size)
        first = requests.measure(publish)
        assert sum(n for (method, _), n in first.items() if method == "PUT") >= size - start  # the bulk upload
        _set_generated_cron(root, 7, 59 if size == 100 else 47)  # one change, new content at each size
        plan_cost = requests.measure(plan)
        assert plan().summary["update"] == 1
        _set_generated_cron(root, 8, 58)
        _set_generated_cron(root, 9, 57)
        plan3_cost = requests.measure(plan)
        _set_generated_cron(root, 8, 8)
        _set_generated_cron(root, 9, 9)
        publish_cost = requests.measure(publish)
        puts = Counter({op: n for (method, op), n in publish_cost.items() if method == "PUT"})
        costs[size] = (plan_cost, plan3_cost, publish_cost)
        assert sum(plan_cost.values()) <= 6, plan_cost
        assert sum(plan3_cost.values()) == sum(plan_cost.values()) + 2, (plan_cost, plan3_cost)
        assert not any(op.startswith("List") for _, op in publish_cost), publish_cost
        assert puts == Counter({"PutObject": 5}), publish_cost  # object, manifest, pointer, view, DAG file
        assert sum(publish_cost.values()) <= 25, publish_cost
        _set_generated_cron(root, 7, 7)
        requests.measure(publish)  # back to the generated content before growing
    assert costs[100] == costs[1000], costs
    # one DAG file per workflow, and a view of the live version
    keys = set(store.list(""))
    assert len(names_in(keys, DAG_KEY)) == 1000
    pointer = Source(store).pointer()
    assert pointer is not None and pointer.version == 6
    view = json.loads(store.get("effective/current.json").data)  # type: ignore[union-attr]
    assert view["computed_from"]["code"] == 6 and len(view["workflows"]) == 1000
