"""Reliability and security, proven with figures (issue 7).

Every test counts what it exercised through the ``figures`` fixture
(``tests/reliability_figures.py``); ``benchmarks/reliability_report.py`` turns the
counts of the newest run into ``docs/reliability.md``.

* Races: rounds of 8 ``wfctl publish`` processes (each from its own copy of the repo,
  with its own content, released together by a FIFO barrier) against the local store,
  SeaweedFS and moto's server; mixed rounds of publish, rollback, register, unregister,
  pause and unpause. The racers are forked from a process that imported wfctl once
  (:data:`ZYGOTE`): each is its own process running ``python -m wfctl``'s code with its
  own arguments, directory, output and exit code, minus the import time.
* Faults: a simulated crash (a BaseException, so nothing can catch it) at every store
  call of publish, register, unregister, pause and rollback, through a wrapper of the
  local store and through botocore event hooks of an S3 store on moto; transient and
  permanent S3 errors injected with ``before-send`` hooks (and answers lost after a
  conditional write took effect); tampering with objects, manifests, the pointer and the
  operator state, on every read path.
* Bad input: hypothesis-driven ``plan`` and ``register`` inputs; invalid names on every
  command that takes one (a recording store proves that no key was built from them);
  every input limit at its boundary.
* Secrets: distinctive fake credentials never show in anything a run prints or writes.
* The local store: never world-writable, and a SIGKILLed lock holder blocks nobody.

Moto's conditional writes are check-then-write without a lock, so "exactly one
winner" is asserted on the local store and SeaweedFS; on moto the races assert the
weaker properties and the figures report how often moto let two processes win.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from gitops_helpers import Result, assert_error, set_cron, set_description
from servers import S3Server, closed_port, fake_aws_env, moto_server, seaweedfs  # noqa: F401
from text_mutations import mutate

from wfctl import config as config_mod
from wfctl import deploy, doctor, manual, views
from wfctl.bundle import Source
from wfctl.errors import WfError
from wfctl.store.base import KEY, Blob, Store
from wfctl.store.local import LocalStore
from wfctl.store.s3 import S3Store
from wfctl.store.url import open_store

if TYPE_CHECKING:
    from reliability_figures import Tally

pytest_plugins = ("reliability_figures",)
pytestmark = pytest.mark.usefixtures("fake_aws_env")

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT / "workflows"
CODE_NAMES = ["customer-reprocess", "daily-sales", "finance-month-end", "hello-bash", "marketing-attribution",
              "orders-hourly-sync", "refresh-customers", "refresh-products"]
TIMEOUT = 120


# -- repos, stores and the CLI ------------------------------------------------------------


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True,
                          env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"})
    return done.stdout.strip()


def make_repo(root: Path, pipelines: tuple[str, ...] | None = None) -> Path:
    """The project's example workflows (all, or only the named ``pipelines/`` files, with every
    component and template), ``paths: [workflows]``, committed on ``main``."""
    root.mkdir(parents=True)
    shutil.copytree(EXAMPLES, root / "workflows")
    if pipelines is not None:
        for path in (root / "workflows" / "pipelines").iterdir():
            if path.stem not in pipelines:
                path.unlink()
    (root / "wfctl.yaml").write_text("paths: [workflows]\n")
    (root / ".gitignore").write_text(".wfctl/\n")
    git(root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Alice"), ("user.email", "alice@example.com"), ("commit.gpgsign", "false")):
        git(root, "config", key, value)
    commit(root, "initial import")
    return root


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@dataclass
class Backend:
    """A store: the CLI flags that select it, wfctl's own store object, and raw access."""

    name: str
    url: str
    endpoint_url: str | None = None
    client: Any = None  # boto3, for S3 backends
    root: Path | None = None  # local backends

    @property
    def atomic(self) -> bool:
        return self.name != "moto"

    def flags(self) -> list[str]:
        return ["--store", self.url, *(["--endpoint-url", self.endpoint_url] if self.endpoint_url else [])]

    def open(self) -> Store:
        return open_store(self.url, endpoint_url=self.endpoint_url)

    def _split(self) -> tuple[str, str]:
        bucket, _, prefix = self.url[len("s3://"):].partition("/")
        return bucket, (prefix.strip("/") + "/") if prefix else ""

    def all_keys(self) -> set[str]:
        if self.root is not None:
            if not self.root.exists():
                return set()
            return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                    if p.is_file() and not p.relative_to(self.root).as_posix().startswith(".locks/")}
        bucket, prefix = self._split()
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {item["Key"][len(prefix):] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        if self.root is not None:
            return (self.root / key).read_bytes()
        bucket, prefix = self._split()
        return bytes(self.client.get_object(Bucket=bucket, Key=prefix + key)["Body"].read())

    def write(self, key: str, data: bytes) -> None:
        if self.root is not None:
            (self.root / key).write_bytes(data)
        else:
            bucket, prefix = self._split()
            self.client.put_object(Bucket=bucket, Key=prefix + key, Body=data)

    def delete(self, key: str) -> None:
        if self.root is not None:
            (self.root / key).unlink(missing_ok=True)
        else:
            bucket, prefix = self._split()
            self.client.delete_object(Bucket=bucket, Key=prefix + key)

    def json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def fingerprint(self) -> dict[str, str]:
        """Every key with a digest of its content, in one listing on S3 (its ETags)."""
        if self.root is not None:
            return {key: hashlib.sha256(self.read(key)).hexdigest() for key in self.all_keys()}
        bucket, prefix = self._split()
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {item["Key"][len(prefix):]: item["ETag"] for page in pages for item in page.get("Contents", [])}

    def snapshot(self) -> dict[str, bytes]:
        return {key: self.read(key) for key in sorted(self.all_keys())}

    def reset(self, snapshot: dict[str, bytes], fingerprint: dict[str, str]) -> None:
        """Back to ``snapshot`` (whose fingerprint is given): remove new keys, rewrite changed ones."""
        now = self.fingerprint()
        for key in set(now) - set(snapshot):
            self.delete(key)
        for key, data in snapshot.items():
            if now.get(key) != fingerprint[key]:
                self.write(key, data)

    def live_version(self, source: str = "code") -> int:
        return int(self.json(f"{source}/current.json")["version"])


def local_backend(root: Path) -> Backend:
    return Backend("local", str(root), root=root)


def s3_backend(name: str, server: S3Server, prefix: str = "deploys/prod") -> Backend:
    return Backend(name, server.new_bucket(prefix), server.endpoint_url, client=server.client())


def backend_for(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Backend:
    if name == "local":
        return local_backend(tmp_path / "shared-store")
    return s3_backend(name, request.getfixturevalue("moto_server" if name == "moto" else "seaweedfs"))


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment (fake AWS credentials included) minus anything that steers wfctl."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WFCTL_", "GITHUB_")) and k not in {"NO_COLOR", "CI"}}
    env.update(extra)
    return env


def no_traceback(run: Result) -> Result:
    assert "Traceback" not in run.out + run.err and "WF899" not in run.out + run.err, str(run)
    return run


def wfctl(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """The real command in a subprocess: ``python -m wfctl --no-color ARGS``."""
    done = subprocess.run([sys.executable, "-m", "wfctl", "--no-color", *args], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    return no_traceback(Result(list(args), done.returncode, done.stdout, done.stderr))


def wfctl_inproc(*args: str) -> Result:
    """The same command in-process (click's runner): fast, and monkeypatches apply."""
    from click.testing import CliRunner

    from wfctl.cli import cli

    result = CliRunner().invoke(cli, ["--no-color", *args], catch_exceptions=False)
    return no_traceback(Result(list(args), result.exit_code, result.stdout, result.stderr))


def verify(root: Path, store: Store, *, allow_lag: bool = False) -> list[doctor.Check]:
    """``wfctl doctor --verify``'s audit; with ``allow_lag``, only ``effective/`` may lag behind."""
    checks = doctor.verify(config_mod.load(root), store)
    failed = [c for c in checks if not c.ok and not (allow_lag and c.name == "effective")]
    assert not failed, "\n".join(f"{c.name}: {c.detail}" for c in failed)
    return checks


def version_numbers(backend: Backend, source: str = "code") -> list[int]:
    found = (re.fullmatch(rf"{source}/versions/([0-9]+)\.json", k) for k in backend.all_keys())
    return sorted(int(m.group(1)) for m in found if m)


def live_object(backend: Backend, name: str, source: str = "code") -> dict[str, Any]:
    manifest = backend.json(f"{source}/versions/{backend.live_version(source)}.json")
    return dict(backend.json(manifest["workflows"][name]["object"]))


# -- races: 8 publishers at once ------------------------------------------------------------

# The racers are forked from one "zygote" that has imported wfctl once: importing costs
# more CPU than a publish does, and 8 racers x 20 rounds x 3 stores on 2 cores would spend
# minutes importing. Each racer is still its own OS process, in its clone's directory, with
# its own stdout, stderr and exit code, running exactly `python -m wfctl ARGS` (runpy runs
# wfctl/__main__.py as __main__); it says it is ready, then blocks opening the FIFO gate until
# the parent opens its write end, which releases all of them with one system call.
ZYGOTE = r"""
import json, os, runpy, sys, traceback
import git, wfctl.cli, wfctl.deploy, wfctl.doctor, wfctl.validate, wfctl.dagsync, wfctl.airflow_render, wfctl.manual
import wfctl.operations, wfctl.views, croniter, jsonschema, idna, jsonpointer, rfc3339_validator
if os.environ.get("RACE_S3"):  # boto3, and botocore's S3 model in the shared loader (no request is sent)
    import wfctl.store.s3
    wfctl.store.s3.S3Store("warm-up", endpoint_url="http://127.0.0.1:9")

def racer(job):
    os.chdir(job["cwd"])
    os.environ.update(job["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, job["out"]), (2, job["err"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    code = 0
    try:
        open(job["ready"], "w").close()
        with open(job["gate"], "rb"):
            pass
        sys.argv = ["wfctl", *job["args"]]
        runpy.run_module("wfctl", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 99
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)

for line in sys.stdin:
    pids = {}
    for job in json.loads(line):
        pid = os.fork()
        if pid == 0:
            racer(job)
        pids[pid] = job["id"]
    codes = {}
    while pids:
        pid, status = os.wait()
        codes[pids.pop(pid)] = os.waitstatus_to_exitcode(status)
    print(json.dumps(codes), flush=True)
"""


class Racers:
    """Runs batches of ``wfctl ARGS`` processes that start at the same instant."""

    def __init__(self, folder: Path, s3: bool, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        run_env = {**(env or cli_env()), **({"RACE_S3": "1"} if s3 else {})}
        self.zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE], env=run_env, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, cwd=folder)
        self.batch = 0

    def run(self, jobs: list[tuple[Path, list[str]]], envs: list[dict[str, str]] | None = None,
            check: bool = True) -> list[Result]:
        """Start ``wfctl ARGS`` in each ``cwd`` of ``jobs`` (with ``envs`` added to their environment),
        release them at once, collect the results (``check``: no traceback in them)."""
        self.batch += 1
        work = self.folder / f"batch-{self.batch}"
        work.mkdir()
        gate = work / "gate"
        os.mkfifo(gate)
        specs = [{"id": i, "cwd": str(cwd), "args": ["--no-color", *args], "out": str(work / f"{i}.out"),
                  "err": str(work / f"{i}.err"), "ready": str(work / f"{i}.ready"), "gate": str(gate),
                  "env": (envs or [{}] * len(jobs))[i]}
                 for i, (cwd, args) in enumerate(jobs)]
        assert self.zygote.stdin is not None and self.zygote.stdout is not None
        self.zygote.stdin.write(json.dumps(specs) + "\n")
        self.zygote.stdin.flush()
        deadline = time.monotonic() + 60
        while len(list(work.glob("*.ready"))) < len(jobs):
            assert self.zygote.poll() is None, "the zygote died"
            assert time.monotonic() < deadline, "the racers did not get ready"
            time.sleep(0.002)
        fd = -1
        while fd < 0:  # opening the write end releases every racer blocked in open()
            try:
                fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO and time.monotonic() < deadline, exc
                time.sleep(0.001)
        try:
            codes = json.loads(self.zygote.stdout.readline())
        finally:
            os.close(fd)
        runs = [Result(args, codes[str(i)], (work / f"{i}.out").read_text(), (work / f"{i}.err").read_text())
                for i, (_cwd, args) in enumerate(jobs)]
        if check:
            runs = [no_traceback(run) for run in runs]
        shutil.rmtree(work)
        return runs

    def close(self) -> None:
        assert self.zygote.stdin is not None
        self.zygote.stdin.close()
        try:
            self.zygote.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.zygote.kill()
            self.zygote.wait()


@contextlib.contextmanager
def racers(folder: Path, s3: bool, env: dict[str, str] | None = None) -> Iterator[Racers]:
    pool = Racers(folder, s3, env)
    try:
        yield pool
    finally:
        pool.close()


def cron_for(index: int) -> str:
    """A distinct daily cron per racer and round (never the example's own "0 2 * * *")."""
    return f"{index % 60} {10 + (index // 60) % 13} * * *"


def daily_cron(definition: dict[str, Any]) -> str:
    return str(definition["spec"]["schedule"]["cron"])


@dataclass
class RaceWorld:
    backend: Backend
    clones: list[Path]

    @property
    def main(self) -> Path:
        return self.clones[0]


def race_world(backend: Backend, tmp_path: Path, n: int) -> RaceWorld:
    """A repo published as version 1 to ``backend``, and ``n`` copies of it (the first is the repo)."""
    main = make_repo(tmp_path / "clone0")
    run = wfctl(main, *backend.flags(), "publish", "-o", "json")
    assert run.rc == 0 and run.json["version"] == 1, str(run)
    clones = [main]
    for i in range(1, n):
        shutil.copytree(main, tmp_path / f"clone{i}", ignore=shutil.ignore_patterns(".wfctl"))
        clones.append(tmp_path / f"clone{i}")
    return RaceWorld(backend, clones)


PUBLISH_ROUNDS = {"local": 20, "seaweedfs": 20, "moto": 10}
RACERS = 8


def effective_in_step(backend: Backend) -> None:
    """The cheap part of ``doctor --verify``: effective/ was computed from the live pointers."""
    view = backend.json("effective/current.json")
    assert view["computed_from"]["code"] == backend.live_version(), view["computed_from"]


def publish_round(race: Racers, world: RaceWorld, store: Store, rnd: int, losses: Counter[str], full: bool
                  ) -> tuple[int, bool]:
    """One round: 8 publishes of 8 different contents. Returns the number of winners, and whether
    the store let two processes create the same version (then the round's store is repaired).
    ``full``: a whole ``doctor --verify`` audit (every version, every object, effective/ and DAGs)."""
    backend = world.backend
    live = backend.live_version()
    crons = {i: cron_for(rnd * RACERS + i) for i in range(RACERS)}
    for i, clone in enumerate(world.clones):
        set_cron(clone, crons[i])
    before = backend.fingerprint()
    args = [*backend.flags(), "publish", "--allow-dirty", "--expect-version", str(live), "-o", "json"]
    results = race.run([(clone, args) for clone in world.clones])
    everything = "\n\n".join(map(str, results))
    assert all(r.rc in (0, 3) for r in results), everything
    winners = [i for i, r in enumerate(results) if r.rc == 0]
    lost: Counter[str] = Counter()
    for r in results:
        if r.rc == 3:
            message = assert_error(r, "WF803", 3)
            lost["the expected-version check" if "as expected" in message
                 else "the pointer" if "current.json" in message else "creating the version"] += 1
        else:
            assert r.json["published"] is True and r.json["version"] == live + 1, str(r)
    losses.update(lost)
    # Losing at the pointer means two processes both created version N+1: impossible on an atomic
    # store (asserted there); on moto it happens, and the manifest the pointer names may then have
    # been overwritten by the other creator. That is moto's doing: count it, repair, go on.
    double_create = len(winners) > 1 or lost["the pointer"] > 0
    assert not double_create or not backend.atomic, everything
    assert version_numbers(backend) == list(range(1, live + 2))
    assert backend.live_version() == live + 1
    if double_create:
        manifest = backend.read(f"code/versions/{live + 1}.json")
        pointer = backend.json("code/current.json")
        if pointer["manifest_sha256"] != hashlib.sha256(manifest).hexdigest():  # point at what is there
            backend.write("code/current.json", canonical({**pointer, "manifest_sha256": hashlib.sha256(manifest).hexdigest()}))
        from wfctl.dagsync import heal

        heal(config_mod.load(world.main), store)  # what the next command would do first
        verify(world.main, store)
        return len(winners), True
    # versions contiguous, the store consistent, the live content the winner's; losers changed nothing
    [winner] = winners
    assert daily_cron(live_object(backend, "daily-sales")) == crons[winner]
    effective_in_step(backend)
    if full:
        verify(world.main, store)
    after = backend.fingerprint()
    for key, data in before.items():
        if not key.startswith("effective/") and key != "code/current.json":
            assert after[key] == data, f"{key} changed in round {rnd}"
    new = {k for k in set(after) - set(before) if not k.startswith(("code/objects/", "effective/dags/"))}
    assert new == {f"code/versions/{live + 1}.json"}, new
    return 1, False


@pytest.mark.parametrize("backend_name", ["local", "seaweedfs", "moto"])
def test_publish_races(backend_name: str, request: pytest.FixtureRequest, tmp_path: Path, figures: Tally) -> None:
    """Rounds of 8 ``wfctl publish`` processes, each from its own copy with its own content, all
    planned against the same live version and released together. On the local store and
    SeaweedFS exactly one wins each round and every loser exits 3 with WF803 having changed
    nothing live; versions stay contiguous, effective/ follows every round, and ``doctor --verify``
    (a full audit of every version and object) passes every 4th round and at the end.
    On moto (its conditional writes are check-then-write) every process exits 0 or 3 and versions
    stay contiguous; a round where moto let two processes create the same version (two winners,
    or a loser that lost at the pointer) is counted, not hidden, and the store is repaired and
    audited; every other round gets the full checks."""
    backend = backend_for(request, backend_name, tmp_path)
    world = race_world(backend, tmp_path, RACERS)
    store = backend.open()
    label = f"publish, {RACERS} processes per round, {backend_name}"
    losses: Counter[str] = Counter()
    with racers(tmp_path / "racers", backend_name != "local") as race:
        rounds = PUBLISH_ROUNDS[backend_name]
        for rnd in range(rounds):
            winners, double_create = publish_round(race, world, store, rnd, losses,
                                                   full=rnd % 4 == 3 or rnd == rounds - 1)
            figures.add("Races", label, 1, unit="rounds")
            figures.add("Races", f"{label}: racing processes", RACERS, unit="processes")
            figures.add("Races", f"{label}: rounds with more than one winner", int(winners > 1), unit="rounds",
                        total=False)
            figures.add("Races", f"{label}: rounds where two processes created the same version", int(double_create),
                        unit="rounds", total=False)
    figures.add("Races", f"{label}: losers (exit 3, WF803, nothing changed)", sum(losses.values()), unit="processes",
                total=False, **{f"lost at {reason}": count for reason, count in sorted(losses.items())})
    # On an atomic store a loser loses at the expected-version check or when creating version
    # N+1; losing at the pointer would mean that two processes both created version N+1.
    assert losses["creating the version"] > 0, f"no loser reached the store's conditional create: {losses}"


# -- races: publish, rollback, register, unregister, pause and unpause at once ---------------

MIXED_ROUNDS = {"local": 8, "seaweedfs": 4}


def adhoc_text(name: str, command: str = "echo hi") -> str:
    """An operator's workflow file for ``register`` (outside the repo's ``paths``, using its components)."""
    return (f"apiVersion: wfctl/v1\nkind: Workflow\nmetadata:\n  name: {name}\n  owner: ops-team\n"
            f"  description: ad-hoc {name}\nspec:\n"
            f'  schedule: {{cron: "0 3 * * *", timezone: UTC, start_date: 2025-01-01}}\n'
            f'  tasks:\n    - {{name: hello, component: bash, with: {{command: "{command}"}}}}\n')


def manifest_of(backend: Backend, source: str, version: int) -> dict[str, Any]:
    return dict(backend.json(f"{source}/versions/{version}.json"))


@pytest.mark.parametrize("backend_name", list(MIXED_ROUNDS))
def test_mixed_races_lose_no_update(backend_name: str, request: pytest.FixtureRequest, tmp_path: Path,
                                    figures: Tally) -> None:
    """Each round starts together: two publishes of different content, a rollback to version 1,
    two registers, an unregister, a pause and an unpause. Every command exits 0 or 3 (WF803);
    every command that reports a new version has exactly that version in the store, with its
    content, and every new version belongs to exactly one such command (no lost update, no
    phantom); the operator state holds every successful pause and unpause; and ``doctor --verify``
    finds ``effective/`` in step with the final pointers."""
    backend = backend_for(request, backend_name, tmp_path)
    world = race_world(backend, tmp_path, 3)  # clone0 runs the operators' commands, clone1/2 publish
    main, store = world.main, backend.open()
    adhoc = tmp_path / "adhoc"
    adhoc.mkdir()
    v1 = {n: e["sha256"] for n, e in manifest_of(backend, "code", 1)["workflows"].items()}
    registered: list[str] = []
    paused: set[str] = set()
    unpaused_pool = list(CODE_NAMES)
    label = f"mixed publish/rollback/register/unregister/pause/unpause, {backend_name}"
    outcomes: Counter[str] = Counter()
    with racers(tmp_path / "racers", backend_name != "local") as race:
        for rnd in range(MIXED_ROUNDS[backend_name]):
            code_before = backend.live_version("code")
            # every round has a winner on each source, so only round 0 starts without a pointer
            manual_before = backend.live_version("manual") if rnd else 0
            state_before = backend.live_version("state") if rnd else 0
            crons = {1: cron_for(600 + 2 * rnd), 2: cron_for(601 + 2 * rnd)}
            for i, cron in crons.items():
                set_cron(world.clones[i], cron)
            new_names = [f"race{rnd}-a", f"race{rnd}-b"]
            for name in new_names:
                (adhoc / f"{name}.yaml").write_text(adhoc_text(name, f"echo {name}"))
            to_pause = unpaused_pool.pop(0)
            to_unpause = sorted(paused)[0] if paused else None
            to_unregister = registered[0] if registered else None
            jobs: list[tuple[str, str, Path, list[str]]] = [
                ("publish", crons[1], world.clones[1], ["publish", "--allow-dirty"]),
                ("publish", crons[2], world.clones[2], ["publish", "--allow-dirty"]),
                ("rollback", "1", main, ["rollback", "--to", "1"]),
                *(("register", n, main, ["register", str(adhoc / f"{n}.yaml")]) for n in new_names),
                ("pause", to_pause, main, ["pause", to_pause]),
            ]
            if to_unpause:
                jobs.append(("unpause", to_unpause, main, ["unpause", to_unpause]))
            if to_unregister:
                jobs.append(("unregister", to_unregister, main, ["unregister", to_unregister]))
            results = race.run([(cwd, [*backend.flags(), *args, "-o", "json"]) for _, _, cwd, args in jobs])
            everything = "\n\n".join(map(str, results))
            assert all(r.rc in (0, 3) for r in results), everything
            code_wins: dict[int, tuple[str, str]] = {}
            manual_wins: dict[int, tuple[str, str]] = {}
            state_wins = 0
            for (kind, subject, _, _), r in zip(jobs, results, strict=True):
                outcomes[f"{kind} {'won' if r.rc == 0 else 'lost (exit 3)'}"] += 1
                if r.rc == 3:
                    assert_error(r, "WF803", 3)
                    continue
                if kind in ("publish", "rollback", "register", "unregister") and r.json["published"]:
                    wins = code_wins if kind in ("publish", "rollback") else manual_wins
                    assert r.json["version"] not in wins, f"two commands claim version {r.json['version']}:\n{everything}"
                    wins[r.json["version"]] = (kind, subject)
                elif kind in ("pause", "unpause"):
                    assert r.json["status"] == ("paused" if kind == "pause" else "active"), str(r)
                    state_wins += 1
                    paused.add(subject) if kind == "pause" else paused.discard(subject)
                    if kind == "unpause":
                        unpaused_pool.append(subject)
                else:
                    assert kind == "rollback" and r.json["published"] is False, str(r)  # already at version 1's content
            if to_pause not in paused:
                unpaused_pool.insert(0, to_pause)
            assert code_wins and manual_wins and state_wins, f"a source saw no winner:\n{everything}"
            # every new version is exactly one winner's, with that winner's content
            code_after, manual_after = backend.live_version("code"), backend.live_version("manual")
            assert sorted(code_wins) == list(range(code_before + 1, code_after + 1)), (code_wins, everything)
            assert sorted(manual_wins) == list(range(manual_before + 1, manual_after + 1)), (manual_wins, everything)
            assert version_numbers(backend, "code") == list(range(1, code_after + 1))
            assert version_numbers(backend, "manual") == list(range(1, manual_after + 1))
            for version, (kind, subject) in code_wins.items():
                manifest = manifest_of(backend, "code", version)
                assert manifest["parent_version"] == version - 1
                if kind == "rollback":
                    assert {n: e["sha256"] for n, e in manifest["workflows"].items()} == v1
                else:
                    assert daily_cron(backend.json(manifest["workflows"]["daily-sales"]["object"])) == subject
            for version, (kind, subject) in manual_wins.items():
                names, parent = set(manifest_of(backend, "manual", version)["workflows"]), set()
                if version > 1:
                    parent = set(manifest_of(backend, "manual", version - 1)["workflows"])
                assert (subject in names, subject in parent) == ((True, False) if kind == "register" else (False, True))
                registered.append(subject) if kind == "register" else registered.remove(subject)
            live_manual = set(manifest_of(backend, "manual", manual_after)["workflows"])
            assert live_manual == set(registered), (live_manual, registered, everything)
            state = backend.json("state/current.json")
            assert state["version"] == state_before + state_wins
            assert {key.split("/", 1)[1] for key in state["paused"]} == paused
            verify(main, store)  # effective/ and the DAG files match the final pointers
            figures.add("Races", label, 1, unit="rounds")
    figures.add("Races", f"{label}: racing processes", sum(outcomes.values()), unit="processes",
                **dict(sorted(outcomes.items())))


# -- crash injection at every store call ------------------------------------------------------


class Crash(BaseException):
    """A simulated process death: not an Exception, so no handler in wfctl can swallow it."""


class CrashSwitch:
    """Counts store calls (or S3 requests) and dies at the k-th; once dead, every later call dies too
    (threads of a parallel upload included), as they would in a killed process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arm(None, after=False)

    def arm(self, crash_at: int | None, after: bool) -> None:
        self.crash_at, self.after, self.calls, self.dead = crash_at, after, 0, False
        self.log: list[str] = []

    def before(self, what: str) -> bool:
        """Called before a call: raises if this call is the crash point (mode before) or the process is dead;
        returns whether the call must crash once it has taken effect (mode after)."""
        with self.lock:
            if self.dead:
                raise Crash(f"dead before {what}")
            self.calls += 1
            self.log.append(what)
            hit = self.calls == self.crash_at
            if hit:
                self.dead = True
                if not self.after:
                    raise Crash(f"crash before call {self.calls}: {what}")
            return hit

    def effect(self, what: str) -> None:
        raise Crash(f"crash after call {self.calls}: {what}")


class CrashingStore(Store):
    """The local store, dying at its k-th call (before or after the call takes effect)."""

    def __init__(self, inner: Store, switch: CrashSwitch) -> None:
        self.inner, self.switch, self.url = inner, switch, inner.url

    def _call(self, what: str, action: Callable[[], Any]) -> Any:
        hit = self.switch.before(what)
        result = action()
        if hit:
            self.switch.effect(what)
        return result

    def get(self, key: str) -> Blob | None:
        return self._call(f"get {key}", lambda: self.inner.get(key))  # type: ignore[no-any-return]

    def exists(self, key: str) -> bool:
        return self._call(f"exists {key}", lambda: self.inner.exists(key))  # type: ignore[no-any-return]

    def put(self, key: str, data: bytes) -> None:
        self._call(f"put {key}", lambda: self.inner.put(key, data))

    def put_if_absent(self, key: str, data: bytes) -> None:
        self._call(f"put_if_absent {key}", lambda: self.inner.put_if_absent(key, data))

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> None:
        self._call(f"put_if_match {key}", lambda: self.inner.put_if_match(key, data, etag))

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", lambda: self.inner.delete(key))

    def list(self, prefix: str) -> Iterator[str]:
        return iter(self._call(f"list {prefix}", lambda: list(self.inner.list(prefix))))  # type: ignore[no-any-return]

    def describe(self) -> str:
        return self.inner.describe()


def crashing_s3(backend: Backend, switch: CrashSwitch) -> S3Store:
    """An S3 store whose botocore hooks kill it: ``before-send`` (the k-th HTTP request is never
    sent) or, in mode after, ``after-call`` (the k-th request took effect, its answer is lost)."""
    store = backend.open()
    assert isinstance(store, S3Store)
    pending: dict[int, bool] = {}

    def before_send(request: Any, **_: Any) -> None:
        hit = switch.before(f"{request.method} {request.url.split('?')[0].rsplit('/', 3)[-2:]}")
        if hit:
            pending[threading.get_ident()] = True

    def after_call(**_: Any) -> None:
        if pending.pop(threading.get_ident(), False):
            switch.effect("the answer")

    store.client.meta.events.register("before-send.s3.*", before_send)
    store.client.meta.events.register("after-call.s3.*", after_call)
    return store


@dataclass
class LiveState:
    """What readers can see: versions and content of CODE, MANUAL and the operator state."""

    versions: tuple[int, int, int]
    code: dict[str, str]
    manual: dict[str, str]
    paused: frozenset[str]

    @property
    def content(self) -> tuple[Any, ...]:
        return self.code, self.manual, self.paused


def read_back(store: Store) -> LiveState:
    """What is live, read like a reader would: pointers, manifests (checked against the pointers'
    digests) and the operator state; ``verify`` then reads and checks every object."""
    from wfctl.overrides import read_live

    live = read_live(store)
    code, manual_ = (m.digests if m else {} for m in (live.code, live.manual))
    return LiveState((live.code.version if live.code else 0, live.manual.version if live.manual else 0,
                      live.state.version), code, manual_, frozenset(k.split("/", 1)[1] for k in live.state.paused))


class CrashWorld:
    """A repo published as CODE versions 1 and 2 (different content) with one MANUAL registration;
    every attempt starts from exactly that store (so the k-th call of an attempt is the same
    call whatever happened before) and runs one operation, prepared with a healthy store."""

    def __init__(self, root: Path, backend: Backend, pipelines: tuple[str, ...] | None = None) -> None:
        self.root = make_repo(root, pipelines)
        self.adhoc = root.parent / f"{root.name}-adhoc"
        self.adhoc.mkdir()
        self.config = config_mod.load(self.root)
        self.backend = backend
        self.store = backend.open()
        self.options = deploy.PublishOptions(allow_dirty=True)
        self.attempt = 0
        assert deploy.publish(self.config, self.store, self.options, self.warn).version == 1
        set_description(self.root, "version two")
        assert deploy.publish(self.config, self.store, self.options, self.warn).version == 2
        assert manual.register(self.config, self.store, [self.adhoc_file("registered")], False).version == 1
        self.v1 = Source(self.store).manifest(1).digests
        verify(self.root, self.store)
        self.base = backend.snapshot()
        self.base_print = backend.fingerprint()

    def healthy(self) -> Store:
        return self.store

    def warn(self, message: str) -> None:
        raise AssertionError(f"unexpected warning: {message}")

    def adhoc_file(self, name: str) -> Path:
        path = self.adhoc / f"{name}.yaml"
        path.write_text(adhoc_text(name, f"echo {name}"))
        return path

    def reset(self) -> None:
        self.backend.reset(self.base, self.base_print)

    def prepare(self, kind: str) -> tuple[Callable[[Store], Any], Callable[[LiveState], bool]]:
        """Set up one attempt: the operation to run, and the test that its effect is live."""
        self.reset()
        self.attempt += 1
        tag = f"{kind}-{self.attempt}"
        config = self.config
        if kind == "publish":
            set_description(self.root, f"attempt {tag}")
            return (lambda s: deploy.publish(config, s, self.options, self.warn),
                    lambda live: views.show(self.store, "hello-bash")["definition"]["metadata"]["description"]
                    == f"attempt {tag}")
        if kind == "register":
            path = self.adhoc_file(tag)
            return lambda s: manual.register(config, s, [path], False), lambda live: tag in live.manual
        if kind == "unregister":
            return lambda s: manual.unregister(config, s, "registered"), lambda live: "registered" not in live.manual
        if kind == "pause":
            return lambda s: manual.set_paused(config, s, "hello-bash", True), lambda live: "hello-bash" in live.paused
        assert kind == "rollback"
        return lambda s: deploy.rollback(config, s, 1), lambda live: live.code == self.v1


CRASH_OPS = ["publish", "register", "unregister", "pause", "rollback"]


def crash_every_call(world: CrashWorld, kind: str, dying: Store, switch: CrashSwitch, after: bool,
                     figures: Tally, label: str) -> int:
    """Crash ``kind`` at call k = 1, 2, ... until it completes; returns the number of crash points."""
    before = None
    for k in range(1, 500):
        operation, done = world.prepare(kind)
        before = before or read_back(world.healthy())  # every attempt starts from the same store
        switch.arm(k, after)
        try:
            operation(dying)
        except Crash:
            pass
        else:
            assert switch.calls < k, f"no crash at call {k}?"
            verify(world.root, world.healthy())
            assert done(read_back(world.healthy()))
            return k - 1
        where = f"{kind}, crash {'after' if after else 'before'} call {k} ({switch.log[-1]})"
        # the previous state is still live and whole, or (once the decisive write took effect) the new one
        crashed = read_back(world.healthy())
        moved = crashed.content != before.content
        assert all(c in (b, b + 1) for b, c in zip(before.versions, crashed.versions, strict=True)), where
        assert moved == (crashed.versions != before.versions), where
        if moved:
            assert done(crashed), where
        if world.backend.fingerprint() == world.base_print:
            figures.add("Crash points", f"{label}: crashes that left the store byte-identical", 1, unit="crash points",
                        total=False)  # the base store, audited once: the same bytes pass the same audit
        else:
            verify(world.root, world.healthy(), allow_lag=True)  # only effective/ may lag behind the pointers
        # re-running the command finishes the job and heals effective/
        try:
            operation(world.healthy())
        except WfError as exc:  # unregister found its work already done
            assert kind == "unregister" and moved and exc.code == "WF800", f"{where}: retry failed: {exc.code} {exc}"
            figures.add("Crash points", f"{label}: retries that found the work done (unregister: WF800)", 1,
                        unit="retries", total=False)
        final = read_back(world.healthy())
        assert done(final), where
        if moved:
            assert final.code == crashed.code and final.manual == crashed.manual, where
        verify(world.root, world.healthy())
        figures.add("Crash points", label, 1, unit="crash points")
    raise AssertionError(f"{kind} never completed")


@pytest.mark.parametrize("after", [False, True], ids=["before-call", "after-call"])
def test_crash_at_every_local_store_call(after: bool, tmp_path: Path, figures: Tally) -> None:
    """A local store that dies at its k-th call, for every k of publish, register, unregister,
    pause and rollback: readers see the previous state whole (or, once the decisive write took
    effect, the new one), ``doctor --verify`` passes except that ``effective/`` may lag, and
    re-running the command succeeds and heals ``effective/``."""
    root = tmp_path / "store"
    world = CrashWorld(tmp_path / "repo", local_backend(root))
    switch = CrashSwitch()
    dying = CrashingStore(LocalStore(root), switch)
    mode = "after" if after else "before"
    for kind in CRASH_OPS:
        label = f"{kind}, local store, crash {mode} the call"
        points = crash_every_call(world, kind, dying, switch, after, figures, label)
        assert points >= 10, f"{kind} made only {points} store calls?"


def _crash_every_s3_request(kind: str, endpoint_url: str, folder: str) -> list[tuple[Any, ...]]:
    """One operation's crash loop, in a worker process (botocore is CPU-bound: threads would share
    one core); returns the figures it counted."""
    from reliability_figures import Tally as Counter_

    tally = Counter_("worker")
    backend = s3_backend("moto", S3Server("moto", endpoint_url), "crash")
    world = CrashWorld(Path(folder) / kind, backend, ("hello-bash", "daily-sales"))  # fewer requests per audit
    switch = CrashSwitch()
    label = f"{kind}, S3 (moto), crash before the request"
    points = crash_every_call(world, kind, crashing_s3(backend, switch), switch, False, tally, label)
    assert points >= 8, f"{kind} made only {points} requests?"
    return [(category, name, row["count"], row["unit"], row["total"]) for (category, name), row in tally._rows.items()]


def test_crash_at_every_s3_request(request: pytest.FixtureRequest, tmp_path: Path, figures: Tally) -> None:
    """The same on moto's S3 server, through a botocore ``before-send`` hook that kills the k-th
    request before it leaves (the local test's "after" mode covers a death once a call took effect)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    server: S3Server = request.getfixturevalue("moto_server")
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        jobs = [pool.submit(_crash_every_s3_request, kind, server.endpoint_url, str(tmp_path)) for kind in CRASH_OPS]
        for job in jobs:
            for category, name, count, unit, total in job.result():
                figures.add(category, name, count, unit=unit, total=total)


# -- transient and permanent S3 errors ----------------------------------------------------------


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def s3_error(status: int, code: str) -> Any:
    """A fabricated S3 error answer, as the server would send it."""
    from botocore.awsrequest import AWSResponse

    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>injected {code}</Message>'
            f"<RequestId>INJECTED</RequestId></Error>").encode()
    return AWSResponse("http://injected", status, {"Content-Type": "application/xml", "x-amz-request-id": "INJECTED"},
                       _Body(body))


def attempt_of(request: Any) -> int:
    """Which attempt of its request this is (botocore's ``amz-sdk-request: attempt=N; max=M`` header)."""
    header = request.headers.get("amz-sdk-request", b"attempt=1")
    header = header.decode() if isinstance(header, bytes) else header
    return int(re.search(r"attempt=(\d+)", header).group(1))  # type: ignore[union-attr]


def is_conditional_put(request: Any, key_suffix: str = "") -> bool:
    headers = {k.lower() for k in request.headers}
    return (request.method == "PUT" and bool(headers & {"if-match", "if-none-match"})
            and request.url.split("?")[0].endswith(key_suffix))


@dataclass
class FaultPlan:
    """Which requests fail, how, and on how many attempts."""

    name: str
    fault: Callable[[Any], Any]  # request -> a fabricated answer, or raises
    fails: Callable[[int, Any], int]  # (request number, request) -> how many first attempts fail
    injected: int = 0
    requests: int = 0


def inject(store: S3Store, plan: FaultPlan) -> None:
    lock = threading.Lock()
    numbers: dict[int, int] = {}

    def before_send(request: Any, **_: Any) -> Any:
        attempt = attempt_of(request)
        with lock:
            if attempt == 1:
                plan.requests += 1
                numbers[id(request.headers)] = plan.requests  # headers are copied per attempt: key by content
            number = plan.requests if attempt == 1 else numbers.get(id(request.headers), plan.requests)
            if attempt > plan.fails(number, request):
                return None
            plan.injected += 1
        return plan.fault(request)

    store.client.meta.events.register("before-send.s3.*", before_send)


def raise_(exc_type: type[Exception]) -> Callable[[Any], Any]:
    def fault(request: Any) -> Any:
        raise exc_type(endpoint_url=request.url)  # type: ignore[call-arg]

    return fault


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries as botocore's standard mode decides them, minus the sleeping between attempts."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


def transient_plans() -> list[FaultPlan]:
    from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

    return [
        FaultPlan("503 SlowDown on every request's first attempt", lambda r: s3_error(503, "SlowDown"), lambda n, r: 1),
        FaultPlan("503 SlowDown on every 3rd request's first 3 attempts", lambda r: s3_error(503, "SlowDown"),
                  lambda n, r: 3 if n % 3 == 0 else 0),
        FaultPlan("500 InternalError on every 2nd request's first attempt", lambda r: s3_error(500, "InternalError"),
                  lambda n, r: 1 if n % 2 == 0 else 0),
        FaultPlan("connection reset (ConnectionClosedError) on every 2nd request", raise_(ConnectionClosedError),
                  lambda n, r: 1 if n % 2 == 1 else 0),
        FaultPlan("read timeout (ReadTimeoutError) on every 3rd request", raise_(ReadTimeoutError),
                  lambda n, r: 1 if n % 3 == 1 else 0),
        FaultPlan("500 InternalError on every conditional write (pointers, manifests, state, view)",
                  lambda r: s3_error(500, "InternalError"), lambda n, r: 1 if is_conditional_put(r) else 0),
    ]


def operations_sequence(world: CrashWorld) -> list[tuple[str, Callable[[Store], Any], Callable[[LiveState], bool]]]:
    """publish, register, pause, unregister and rollback, each prepared on the healthy store."""
    return [(kind, *world.prepare(kind)) for kind in CRASH_OPS]


@pytest.mark.usefixtures("no_backoff")
def test_transient_s3_errors_are_retried(request: pytest.FixtureRequest, tmp_path: Path, figures: Tally) -> None:
    """503 SlowDown, 500 InternalError, connection resets and read timeouts on first attempts:
    every operation succeeds through botocore's standard retries, and the store is whole."""
    server: S3Server = request.getfixturevalue("moto_server")

    def one(plan: FaultPlan) -> FaultPlan:
        world = CrashWorld(tmp_path / re.sub(r"\W+", "-", plan.name), s3_backend("moto", server, "faults"),
                           ("hello-bash", "daily-sales"))
        for kind in CRASH_OPS:
            operation, done = world.prepare(kind)
            store = world.backend.open()
            assert isinstance(store, S3Store)
            inject(store, plan)
            before = plan.injected
            operation(store)
            assert plan.injected > before, f"{plan.name}: nothing injected into {kind}"
            assert done(read_back(world.store)), f"{plan.name}: {kind} did not take effect"
            verify(world.root, world.store)
            figures.add("Transient faults", plan.name, plan.injected - before, unit="faults injected",
                    **{kind: plan.injected - before})
        return plan

    with ThreadPoolExecutor(max_workers=3) as pool:
        plans = list(pool.map(one, transient_plans()))
    assert all(p.injected for p in plans)


@pytest.mark.usefixtures("no_backoff")
def test_answer_lost_after_a_conditional_write_took_effect(request: pytest.FixtureRequest, tmp_path: Path,
                                                           figures: Tally) -> None:
    """A connection reset *after* the server applied a conditional write (the answer is lost,
    botocore retries, the retry finds the key already written): the operation still succeeds,
    because the write that "conflicts" is its own."""
    from botocore.exceptions import ConnectionClosedError

    server: S3Server = request.getfixturevalue("moto_server")
    world = CrashWorld(tmp_path / "repo", s3_backend("moto", server, "lost"), ("hello-bash", "daily-sales"))
    failures = []
    for kind in CRASH_OPS:
        operation, done = world.prepare(kind)
        store = world.backend.open()
        assert isinstance(store, S3Store)
        session = store.client._endpoint.http_session
        send, lost = session.send, []

        def send_then_reset(request: Any, send: Callable[[Any], Any] = send, lost: list[str] = lost) -> Any:
            answer = send(request)
            if is_conditional_put(request) and attempt_of(request) == 1 and answer.status_code == 200:
                lost.append(request.url.rsplit("/", 2)[-2:][-1])
                raise ConnectionClosedError(endpoint_url=request.url)
            return answer

        session.send = send_then_reset
        reported_failure = False
        try:
            operation(store)
        except WfError as exc:
            reported_failure = True
            failures.append(f"{kind}: error[{exc.code}] {exc.message} (answers lost: {lost})")
        label = "answer lost after a conditional write took effect (connection reset)"
        figures.add("Transient faults", label, len(lost), unit="faults injected", **{kind: len(lost)})
        figures.add("Transient faults", f"{label}: operations that still succeed", 1, unit="operations", total=False,
                    failed=int(reported_failure))
        assert lost, f"{kind} made no conditional write?"
        assert done(read_back(world.store)), kind
    assert not failures, "operations that succeeded but reported a failure:\n" + "\n".join(failures)


PERMANENT = [
    ("403 AccessDenied", 403, "AccessDenied", "WF804", ("access denied", "credentials")),
    ("404 NoSuchBucket", 404, "NoSuchBucket", "WF804", ("bucket does not exist", "bucket name")),
]


def test_permanent_s3_errors(request: pytest.FixtureRequest, tmp_path: Path, figures: Tally) -> None:
    """403 AccessDenied and 404 NoSuchBucket are not retried and end in WF804 with a hint that
    names what to check; 409 ConditionalRequestConflict and 412 PreconditionFailed on a
    compare-and-swap end in WF803 (exit 3), with nothing changed."""
    server: S3Server = request.getfixturevalue("moto_server")
    world = CrashWorld(tmp_path / "repo", s3_backend("moto", server, "permanent"), ("hello-bash", "daily-sales"))
    for label, status, code, expected, words in PERMANENT:
        for kind in CRASH_OPS:
            operation, _done = world.prepare(kind)
            store = world.backend.open()
            assert isinstance(store, S3Store)
            plan = FaultPlan(label, lambda r, s=status, c=code: s3_error(s, c), lambda n, r: 99)
            inject(store, plan)
            with pytest.raises(WfError) as caught:
                operation(store)
            exc = caught.value
            assert exc.code == expected and exc.exit_code == 1, (kind, exc.code, exc.message)
            text = f"{exc.message} {exc.hint}".lower()
            assert all(word in text for word in words), (kind, exc.message, exc.hint)
            assert plan.injected == plan.requests == 1, f"{label} was retried or went on: {plan.injected} injected"
            assert world.backend.fingerprint() == world.base_print, f"{kind} changed the store"
            figures.add("Permanent faults", f"{label} -> {expected} with a hint", 1, unit="operations", failed=0)
    # a real missing bucket, for good measure
    missing = open_store(f"s3://wfctl-missing-{os.getpid()}/x", endpoint_url=server.endpoint_url)
    with pytest.raises(WfError) as caught:
        manual.list_rows(missing)
    assert caught.value.code == "WF804" and "does not exist" in caught.value.message
    figures.add("Permanent faults", "404 NoSuchBucket -> WF804 with a hint", 1, unit="operations", failed=0)
    # a lost race on a conditional write, as AWS reports it (409: another conditional write on
    # the key is in flight, so the key may not exist yet; 412: the condition failed)
    wrong = []
    for label, status, code in (("409 ConditionalRequestConflict", 409, "ConditionalRequestConflict"),
                                ("412 PreconditionFailed", 412, "PreconditionFailed")):
        targets = [("publish", "code/current.json"), ("rollback", "code/current.json"),
                   ("register", "manual/current.json"), ("unregister", "manual/current.json"),
                   ("pause", "state/current.json")]
        if status == 409:  # a create racing another create still in flight: the key is not there yet
            targets += [("publish", "code/versions/3.json"), ("register", "manual/versions/2.json")]
        for kind, target in targets:
            operation, _done = world.prepare(kind)
            store = world.backend.open()
            assert isinstance(store, S3Store)
            plan = FaultPlan(label, lambda r, s=status, c=code: s3_error(s, c),
                             lambda n, r, t=target: 99 if is_conditional_put(r, t) else 0)
            inject(store, plan)
            with pytest.raises(WfError) as caught:
                operation(store)
            exc = caught.value
            lost_race = (exc.code, exc.exit_code) == ("WF803", 3)
            if not lost_race:
                wrong.append(f"{label} on {target} ({kind}): error[{exc.code}] {exc.message} (exit {exc.exit_code})")
            assert plan.injected == 1
            after = world.backend.fingerprint()
            changed = {k for k in set(after) | set(world.base_print) if after.get(k) != world.base_print.get(k)}
            assert all(k.startswith(("code/objects/", "manual/objects/", "code/versions/", "manual/versions/"))
                       for k in changed), f"{kind} changed {changed}"  # no pointer, no state, no view moved
            where = "a pointer or the state" if target.endswith("current.json") else "a version's create"
            figures.add("Permanent faults", f"{label} on {where} -> WF803 (exit 3)", 1, unit="operations",
                        failed=int(not lost_race))
    assert not wrong, "a lost race that is not reported as a conflict (WF803, exit 3):\n" + "\n".join(wrong)


# -- tampering -----------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def rehashed(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """A manifest edited by someone who also recomputed its self-digest."""
    body = json.loads(data)
    body.pop("self_sha256")
    edit(body)
    return canonical({**body, "self_sha256": hashlib.sha256(canonical(body)).hexdigest()})


MARK = "TAMPERED-7f3a"


def _code_manifest(backend: Backend) -> str:
    return f"code/versions/{backend.live_version('code')}.json"


def _retarget(body: dict[str, Any]) -> None:
    body["workflows"]["hello-bash"]["owner"] = MARK


# (what, key of the tampered data, new bytes from old bytes)
TAMPERS: dict[str, Callable[[Backend], tuple[str, Callable[[bytes], bytes]]]] = {
    "object": lambda b: (b.json(_code_manifest(b))["workflows"]["daily-sales"]["object"],
                         lambda d: d.replace(b"Load the previous day", MARK.encode())),
    "live manifest": lambda b: (_code_manifest(b), lambda d: d.replace(b"sales-analytics", MARK.encode())),
    "live manifest, self-digest recomputed": lambda b: (_code_manifest(b), lambda d: rehashed(d, _retarget)),
    "old manifest": lambda b: ("code/versions/1.json", lambda d: d.replace(b"sales-analytics", MARK.encode())),
    "pointer": lambda b: ("code/current.json",
                          lambda d: canonical({**json.loads(d), "manifest_sha256": hashlib.sha256(MARK.encode()).hexdigest()})),
    "manual manifest": lambda b: ("manual/versions/1.json", lambda d: d.replace(b"ops-team", MARK.encode())),
    "operator state": lambda b: ("state/current.json", lambda d: d.replace(b'"version":1', f'"version":"{MARK}"'.encode())),
}
READ_PATHS = ["show", "status", "list", "history", "plan", "publish", "register", "pause", "rollback", "snapshot",
              "doctor --verify"]
# What must NOT refuse: commands that never read the tampered data (everything else must refuse).
UNAFFECTED = {
    "object": {"list", "history", "register", "pause", "rollback"},  # none reads the live daily-sales object
    "live manifest": set(),
    "live manifest, self-digest recomputed": set(),
    "old manifest": {"show", "status", "list", "plan", "publish", "register", "pause", "snapshot"},
    "pointer": set(),
    "manual manifest": {"show", "history"},
    "operator state": {"show", "history", "plan", "snapshot"},
}
TAMPER_BACKENDS = {"local": list(TAMPERS), "moto": ["object", "live manifest", "pointer", "operator state"]}


@pytest.mark.parametrize("backend_name", list(TAMPER_BACKENDS))
def test_tampering_is_refused_on_every_read_path(backend_name: str, request: pytest.FixtureRequest, tmp_path: Path,
                                                 figures: Tally) -> None:
    """An object, a manifest (plainly, or with its self-digest recomputed), an old manifest, the
    pointer, a MANUAL manifest or the operator state modified behind wfctl's back: every command
    that reads it refuses with WF806 (doctor --verify: a failed check) and writes nothing; the
    commands that do not read it work, and the tampered bytes never reach their output or the store."""
    backend = local_backend(tmp_path / "store") if backend_name == "local" else \
        s3_backend("moto", request.getfixturevalue("moto_server"))
    root = make_repo(tmp_path / "repo")
    flags = ["--repo", str(root), *backend.flags()]
    assert wfctl_inproc(*flags, "publish").rc == 0
    set_cron(root, "30 3 * * *")
    commit(root, "03:30")
    assert wfctl_inproc(*flags, "publish").rc == 0
    adhoc = tmp_path / "adhoc"
    adhoc.mkdir()
    (adhoc / "registered.yaml").write_text(adhoc_text("registered"))
    (adhoc / "newcomer.yaml").write_text(adhoc_text("newcomer"))
    assert wfctl_inproc(*flags, "register", str(adhoc / "registered.yaml")).rc == 0
    assert wfctl_inproc(*flags, "pause", "finance-month-end").rc == 0
    set_cron(root, "45 4 * * *")  # plan and publish must now read the live daily-sales object
    pristine, pristine_print = backend.snapshot(), backend.fingerprint()
    commands = {
        "show": ["show", "daily-sales"], "status": ["status", "daily-sales"], "list": ["list"], "history": ["history"],
        "plan": ["plan"], "publish": ["publish", "--allow-dirty"], "register": ["register", str(adhoc / "newcomer.yaml")],
        "pause": ["pause", "hello-bash"], "rollback": ["rollback", "--to", "1"],
        "snapshot": ["snapshot", "--out", str(tmp_path / "snapshot.json")], "doctor --verify": ["doctor", "--verify"],
    }
    wrong = []
    for what in TAMPER_BACKENDS[backend_name]:
        for path in READ_PATHS:
            backend.reset(pristine, pristine_print)
            key, change = TAMPERS[what](backend)
            tampered = change(backend.read(key))
            assert tampered != backend.read(key), what
            backend.write(key, tampered)
            before = backend.fingerprint()
            run = wfctl_inproc(*flags, *commands[path])
            after = backend.fingerprint()
            refused, errors = run.rc != 0, len(wrong)
            if path in UNAFFECTED[what]:
                if refused:
                    wrong.append(f"{what} / {path}: refused although it does not read the tampered data\n{run}")
                leaked = [k for k in set(after) - {key} if after[k] != before.get(k) and MARK.encode() in backend.read(k)]
                if MARK in run.out or leaked:
                    wrong.append(f"{what} / {path}: the tampered data was used: {leaked or run.out}")
                figures.add("Tampering", f"{what} ({backend_name}): commands that do not read it, unaffected", 1,
                            unit="commands", failed=int(len(wrong) > errors))
                continue
            if path == "doctor --verify":
                ok = run.rc == 1 and "FAIL" in run.out and not run.codes and (
                    "integrity check failed" in run.out or "unreadable" in run.out)
            else:
                ok = run.rc == 1 and run.codes == ["WF806"]
            if not ok:
                wrong.append(f"{what} / {path}: expected WF806\n{run}")
            if after != before:
                wrong.append(f"{what} / {path}: wrote to a tampered store: "
                             f"{sorted(k for k in set(after) | set(before) if after.get(k) != before.get(k))}")
            figures.add("Tampering", f"{what} ({backend_name}): read paths that refuse it (WF806)", 1, unit="commands",
                        failed=int(len(wrong) > errors))
    assert not wrong, "\n\n".join(wrong)


# -- fuzzing plan and register ---------------------------------------------------------------------


class RecordingStore(Store):
    """A store that records every key it is asked for (and can refuse every write)."""

    def __init__(self, inner: Store, read_only: bool = False) -> None:
        self.inner, self.url, self.read_only = inner, inner.url, read_only
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def _note(self, op: str, key: str) -> None:
        with self.lock:
            self.calls.append((op, key))
        if self.read_only and op not in ("get", "exists", "list"):
            raise AssertionError(f"a read-only command wrote: {op} {key}")

    @property
    def keys(self) -> list[str]:
        """Every key asked for; a listed prefix (``effective/dags/``) appears without its trailing slash."""
        return [key.rstrip("/") if op == "list" else key for op, key in self.calls]

    def get(self, key: str) -> Blob | None:
        self._note("get", key)
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        self._note("exists", key)
        return self.inner.exists(key)

    def put(self, key: str, data: bytes) -> None:
        self._note("put", key)
        self.inner.put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> None:
        self._note("put_if_absent", key)
        self.inner.put_if_absent(key, data)

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> None:
        self._note("put_if_match", key)
        self.inner.put_if_match(key, data, etag)

    def delete(self, key: str) -> None:
        self._note("delete", key)
        self.inner.delete(key)

    def list(self, prefix: str) -> Iterator[str]:
        self._note("list", prefix)
        return self.inner.list(prefix)

    def describe(self) -> str:
        return self.inner.describe()


STORE_KEY_SHAPES = re.compile(r"^(?:(?:code|manual)/(?:current\.json|versions/[1-9][0-9]*\.json|objects/[0-9a-f]{64}\.json)"
                              r"|state/current\.json|effective/current\.json|effective/dags/(?P<dag>[^/]+)\.py"
                              r"|doctor/[a-z0-9.-]+\.json|(?:code|manual)/versions|effective/dags)$")


def check_keys(keys: list[str]) -> None:
    """Every key is a store key, of a known shape, and a DAG file is named by a valid workflow name."""
    from wfctl.names import is_valid

    for key in keys:
        assert KEY.match(key) and "\n" not in key, f"unsafe key {key!r}"
        shape = STORE_KEY_SHAPES.match(key)
        assert shape, f"unexpected key {key!r}"
        assert shape.group("dag") is None or is_valid(shape.group("dag")), f"a DAG file from an invalid name: {key!r}"


TOKENS = ["", "~", "null", "yes", "no", "on", "0o17", "0x1F", "1e3", ".inf", ".nan", "[", "]", "{", "}", "[]", "{}",
          "&a", "*a", "&a [*a]", "<<: *a", "!!python/object:os.system", "!!binary", "!foo", "- ", ": ", "|", ">-", "#",
          "'", '"', "---", "...", "${{ values.x }}", "${{", "{{ ds }}", "../x", "a/b", "/abs", "%2e%2e", "dаily-sales",
          "ｄaily-sales", "Daily-Sales", "x" * 129, "\x00", "\t", "\u2028", "\ufeff", "9" * 30, "@hourly",
          "*/0 * * * *", "0 0 31 2 *", "Asia/Nowhere", "2025-13-45", "hello-bash", "daily-sales", "bash", "say_hello"]
INVALID_NAMES = ["../x", "a/b", "/abs", "%2e%2e", "a\x00b", "dаily-sales", "ｄaily-sales", "x" * 129, "Daily-Sales",
                 "..", ".", "", "a..b", "-a", "a-", "a b", "a\nb", "~", "a\\b", "con", "ＡＢＣ", "x" * 1000]
REPO_FILES = sorted(p.relative_to(PROJECT).as_posix() for p in EXAMPLES.rglob("*.yaml"))


def _text_mutations() -> Any:
    from hypothesis import strategies as st

    index = st.integers(min_value=0, max_value=10_000)
    return st.lists(st.one_of(
        st.tuples(st.just("delete"), index), st.tuples(st.just("duplicate"), index),
        st.tuples(st.just("swap"), index, index), st.tuples(st.just("token"), index, st.sampled_from(TOKENS)),
        st.tuples(st.just("insert"), index, index, st.text(min_size=1, max_size=6)),
        st.tuples(st.just("indent"), index, st.integers(min_value=-4, max_value=4)),
        st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=20_000)),
    ), min_size=1, max_size=4)


def _tree_mutations() -> Any:
    from hypothesis import strategies as st

    values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
                       st.text(max_size=12), st.sampled_from(TOKENS), st.sampled_from(INVALID_NAMES),
                       st.lists(st.sampled_from(TOKENS), max_size=3),
                       st.dictionaries(st.sampled_from(["name", "component", "with", "depends_on", "cron", "x"]),
                                       st.sampled_from(TOKENS), max_size=3))
    op = st.sampled_from(["set", "set", "retype", "retype", "delete", "rename", "duplicate", "name", "depends-on-itself"])
    return st.lists(st.tuples(op, st.integers(min_value=0, max_value=10**6), values), min_size=1, max_size=5)


STRUCTURAL = {"spec", "metadata", "tasks", "groups", "depends_on", "with", "schedule", "template", "values", "params",
              "defaults", "retry", "name", "component", "inputs", "workflow", "parameters", "cron", "timezone"}


def _nodes(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _nodes(child, (*path, key))


def _at(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        root = root[key]
    return root


def mutate_tree(doc: Any, mutations: list[tuple[str, int, Any]]) -> Any:
    """Structural edits of a parsed document: values replaced, keys deleted or renamed, items
    duplicated, names changed, tasks made to depend on themselves."""
    for op, index, value in mutations:
        if not isinstance(doc, dict):
            return doc
        if op == "name":
            doc.setdefault("metadata", {})
            if isinstance(doc["metadata"], dict):
                doc["metadata"]["name"] = value if isinstance(value, str) else CODE_NAMES[index % len(CODE_NAMES)]
            continue
        paths = [p for p in _nodes(doc) if p]
        if op == "retype":  # the structural keys wfctl walks: their type is what a bug trips over
            paths = [p for p in paths if p[-1] in STRUCTURAL] or paths
        if not paths:
            return value
        path = paths[index % len(paths)]
        parent, key = _at(doc, path[:-1]), path[-1]
        if op in ("set", "retype"):
            parent[key] = value
        elif op == "delete":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[str(value)[:20] if value is not None else "renamed"] = parent.pop(key)
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(parent[key], default=str)))
        elif op == "depends-on-itself" and isinstance(parent, dict) and "name" in parent:
            parent["depends_on"] = [parent["name"]]
    return doc


def dump_documents(docs: list[Any]) -> str:
    import yaml

    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, default_flow_style=False)


def parse_documents(text: str) -> list[Any]:
    import yaml

    return list(yaml.safe_load_all(text))


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """A hang fails the example instead of the suite."""
    def expired(*_: Any) -> None:
        raise TimeoutError(f"no answer within {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class FuzzWorld:
    root: Path
    store: Store
    originals: dict[str, str]
    config: Any = None

    def restore(self) -> None:
        for rel, text in self.originals.items():
            (self.root / rel).write_text(text)


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> FuzzWorld:
    """The example repo (no git: publish with --allow-dirty --allow-branch) published to a local store,
    with one MANUAL registration, so plans have a base and registers have neighbours."""
    tmp = tmp_path_factory.mktemp("fuzz")
    root = tmp / "repo"
    shutil.copytree(EXAMPLES, root / "workflows")
    (root / "wfctl.yaml").write_text("paths: [workflows]\n")
    store = LocalStore(tmp / "store")
    config = config_mod.load(root)
    deploy.publish(config, store, deploy.PublishOptions(allow_dirty=True, allow_branch=True), lambda m: None)
    (tmp / "registered.yaml").write_text(adhoc_text("registered"))
    manual.register(config, store, [tmp / "registered.yaml"], False)
    originals = {rel: (root / rel).read_text() for rel in REPO_FILES}
    return FuzzWorld(root, store, originals, config)


PLAN_ERRORS = {"WF812"}  # validation failed: the only way a plan of a bad repo may refuse


def plan_or_refuse(world: FuzzWorld) -> Any:
    recording = RecordingStore(world.store, read_only=True)
    with time_limit(30):
        try:
            planned, _ = deploy.plan(config_mod.load(world.root), lambda: recording)
        except WfError as exc:
            assert exc.code in PLAN_ERRORS, f"plan refused with {exc.code}: {exc.message}"
            planned = None
    check_keys(recording.keys)
    if planned is not None:
        live = Source(world.store).manifest(1).digests
        assert planned.base.version == 1
        assert {c.name for c in planned.changes} <= set(live) | set(planned.desired)
    return planned


def fuzz_settings(max_examples: int) -> Any:
    """No deadline (a validation's time is not the property); no shrinking: failures are collected
    per distinct bug (:class:`Problems`) with their smallest input, so the time stays bounded."""
    from hypothesis import HealthCheck, Phase, settings

    return settings(max_examples=max_examples, deadline=None, print_blob=True, derandomize=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # `figures` only counts


class Problems:
    """Unexpected failures found by a fuzz test, one per distinct (exception, wfctl frame); the
    examples go on, so the figures count every case and every distinct bug is listed."""

    def __init__(self) -> None:
        self.found: dict[str, tuple[int, str]] = {}
        self.failed = False  # whether the last checked example failed

    @contextlib.contextmanager
    def check(self, example: Any) -> Iterator[None]:
        import traceback

        self.failed = False
        try:
            yield
        except Exception as exc:
            self.failed = True
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/wfctl/" in f.filename]
            where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "test"
            signature = f"{type(exc).__name__} at {where}"  # one bug, whatever the values in its message
            first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
            text = f"{first_line}\n  smallest input: {example!r}"
            if signature not in self.found or len(text) < self.found[signature][0]:
                self.found[signature] = (len(text), text[:3000])

    def __len__(self) -> int:
        return len(self.found)

    def report(self) -> str:
        return "\n\n".join(f"{sig}: {text}" for sig, (_, text) in sorted(self.found.items()))


def documents_in(text: str) -> int:
    try:
        return max(1, len(parse_documents(text)))
    except Exception:
        return 1


def test_fuzz_plan_on_mutated_text(fuzz_world: FuzzWorld, figures: Tally) -> None:
    """Text mutations (lines deleted, duplicated, swapped, re-indented, truncated; YAML tokens,
    lookalike names and control characters inserted) of 1-3 example files: ``plan`` against the
    published base returns a plan or refuses with WF812, never raises anything else, never
    writes, never hangs."""
    from hypothesis import given
    from hypothesis import strategies as st

    problems = Problems()
    sizes = {rel: documents_in(text) for rel, text in fuzz_world.originals.items()}

    @fuzz_settings(200)
    @given(st.lists(st.tuples(st.sampled_from(REPO_FILES), _text_mutations()), min_size=1, max_size=3))
    def run(edits: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        planned = None
        with problems.check(edits):
            try:
                for rel, mutations in edits:
                    path = fuzz_world.root / rel
                    path.write_text(mutate(path.read_text(), mutations))
                planned = plan_or_refuse(fuzz_world)
            finally:
                fuzz_world.restore()
        figures.add("Fuzzing", "plan: text-mutated example documents", sum(sizes[rel] for rel, _ in edits),
                    unit="documents", cases=1, refused=int(planned is None),
                    failed=sum(sizes[rel] for rel, _ in edits) * problems.failed)

    run()
    figures.add("Fuzzing", "plan: unexpected failures (distinct)", len(problems), unit="bugs",
                failed=len(problems))
    assert not problems, problems.report()


def test_fuzz_plan_on_mutated_documents(fuzz_world: FuzzWorld, figures: Tally) -> None:
    """Structural mutations of parsed example documents (values of every type replaced, keys
    deleted and renamed, items duplicated, names changed to invalid or duplicate ones, tasks
    depending on themselves), written back as valid YAML: the same properties as above."""
    from hypothesis import given
    from hypothesis import strategies as st

    problems = Problems()

    @fuzz_settings(300)
    @given(st.lists(st.tuples(st.sampled_from(REPO_FILES), st.integers(0, 20), _tree_mutations()), min_size=1,
                    max_size=3))
    def run(edits: list[tuple[str, int, list[tuple[str, int, Any]]]]) -> None:
        planned, documents = None, 0
        with problems.check(edits):
            try:
                for rel, which, mutations in edits:
                    path = fuzz_world.root / rel
                    docs = parse_documents(path.read_text())
                    docs[which % len(docs)] = mutate_tree(docs[which % len(docs)], mutations)
                    path.write_text(dump_documents(docs))
                    documents += len(docs)
                planned = plan_or_refuse(fuzz_world)
            finally:
                fuzz_world.restore()
        figures.add("Fuzzing", "plan: structurally mutated example documents", documents, unit="documents", cases=1,
                    refused=int(planned is None), failed=documents * problems.failed)

    run()
    figures.add("Fuzzing", "plan: unexpected failures (distinct)", len(problems), unit="bugs",
                failed=len(problems))
    assert not problems, problems.report()


REGISTER_ERRORS = {"WF812", "WF801", "WF807", "WF813"}  # invalid; managed by CODE; exists (no --force); no workflow


def test_fuzz_register(fuzz_world: FuzzWorld, tmp_path_factory: pytest.TempPathFactory, figures: Tally) -> None:
    """Generated operator files of 1-5 documents (an ad-hoc workflow, structurally mutated, with
    names drawn from valid, taken, CODE-owned and invalid ones): ``register`` (with or without
    --force) publishes or refuses with a user error, never raises anything else, builds every
    store key from valid names only, and the store passes ``doctor --verify`` throughout."""
    from hypothesis import example, given
    from hypothesis import strategies as st

    folder = tmp_path_factory.mktemp("register-fuzz")
    names = st.one_of(st.sampled_from(["reg-a", "reg-b", "reg-c", "registered"]), st.sampled_from(CODE_NAMES),
                      st.sampled_from(INVALID_NAMES), st.from_regex(r"[a-z0-9][a-z0-9._-]{0,30}[a-z0-9]", fullmatch=True),
                      st.text(max_size=20))
    document = st.tuples(names, st.booleans(), _tree_mutations())
    counter = iter(range(10**9))
    problems = Problems()

    @fuzz_settings(300)
    @given(st.lists(document, min_size=1, max_size=5), st.booleans())
    @example([("reg-a", True, [("retype", 2, True)])], False)  # a workflow whose `spec` is `true`
    @example([("reg-b", True, [("retype", 6, True)])], False)  # ... whose `tasks` is `true`
    def run(spec: list[tuple[str, bool, list[tuple[str, int, Any]]]], force: bool) -> None:
        docs = []
        for name, mutated, mutations in spec:
            doc = parse_documents(adhoc_text("placeholder"))[0]
            doc["metadata"]["name"] = name
            docs.append(mutate_tree(doc, mutations) if mutated else doc)
        path = folder / f"ops-{next(counter)}.yaml"
        path.write_text(dump_documents(docs))
        outcome = None
        with problems.check((dump_documents(docs), force)):
            recording = RecordingStore(fuzz_world.store)
            with time_limit(30):
                try:
                    outcome = manual.register(fuzz_world.config, recording, [path], force)
                except WfError as exc:
                    assert exc.code in REGISTER_ERRORS, f"register refused with {exc.code}: {exc.message}"
            check_keys(recording.keys)
            if outcome is not None:
                live = read_back(fuzz_world.store)
                registered = {d["metadata"]["name"] for d in docs if isinstance(d, dict) and d.get("kind") == "Workflow"
                              and isinstance(d.get("metadata"), dict) and isinstance(d["metadata"].get("name"), str)}
                assert registered & set(live.manual), (registered, live.manual)
            if next(counter) % 40 == 0:
                verify(fuzz_world.root, fuzz_world.store)
        figures.add("Fuzzing", "register: generated operator documents", len(docs), unit="documents", cases=1,
                    registered=int(outcome is not None and outcome.published), refused=int(outcome is None),
                    failed=len(docs) * problems.failed)

    run()
    verify(fuzz_world.root, fuzz_world.store)
    figures.add("Fuzzing", "register: unexpected failures (distinct)", len(problems), unit="bugs",
                failed=len(problems))
    assert not problems, problems.report()


def test_fuzz_cli_plan_and_register_exit_codes(fuzz_world: FuzzWorld, tmp_path_factory: pytest.TempPathFactory,
                                               figures: Tally) -> None:
    """Through the command line: ``plan -o json`` on mutated repos and ``register`` of mutated
    files exit 0 or 1 (register: 2 for a file without workflows), with the documented error
    shape and no traceback."""
    from hypothesis import given
    from hypothesis import strategies as st

    folder = tmp_path_factory.mktemp("cli-fuzz")
    counter = iter(range(10**9))
    flags = ["--repo", str(fuzz_world.root), "--store", str(fuzz_world.store.url)]
    problems = Problems()

    @fuzz_settings(40)
    @given(st.sampled_from(REPO_FILES), _text_mutations(), _tree_mutations())
    def run(rel: str, text_mutations: list[tuple[Any, ...]], tree_mutations: list[tuple[str, int, Any]]) -> None:
        path = fuzz_world.root / rel
        with problems.check(("plan", rel, text_mutations)):
            try:
                path.write_text(mutate(path.read_text(), text_mutations))
                run = wfctl_inproc(*flags, "plan", "-o", "json")
            finally:
                fuzz_world.restore()
            assert run.rc in (0, 1), str(run)
            assert "error" in run.json if run.rc else "changes" in run.json, str(run)
        failed = problems.failed
        ops = folder / f"ops-{next(counter)}.yaml"
        ops.write_text(dump_documents([mutate_tree(parse_documents(adhoc_text("cli-fuzz"))[0], tree_mutations)]))
        with problems.check(("register", ops.read_text())):
            run = wfctl_inproc(*flags, "register", str(ops), "-o", "json")
            assert run.rc in (0, 1) or (run.rc == 2 and run.codes == ["WF813"]), str(run)
            assert run.rc == 0 or run.json["error"]["code"] in REGISTER_ERRORS, str(run)
        figures.add("Fuzzing", "CLI: plan and register of mutated documents (exit 0/1)", 2, unit="documents", cases=2,
                    failed=int(failed) + int(problems.failed))

    run()
    figures.add("Fuzzing", "CLI: unexpected failures (distinct)", len(problems), unit="bugs",
                failed=len(problems))
    assert not problems, problems.report()


# -- names -------------------------------------------------------------------------------------------

BAD_NAMES = {
    "traversal": "../x", "slash": "a/b", "absolute": "/abs", "encoded dots": "%2e%2e", "encoded slash": "a%2fb",
    "NUL": "a\x00b", "newline": "hello-bash\n", "Cyrillic a": "dаily-sales", "full-width": "ｄaily-sales",
    "Greek omicron": "hellο-bash", "unicode hyphen": "daily‐sales", "129 characters": "a" * 129,
    "upper case": "Daily-Sales", "dot-dot inside": "a..b", "dot": ".", "dot-dot": "..", "empty": "",
    "backslash": "a\\b", "space": "daily sales", "tilde": "~", "leading dash": "-x", "trailing dot": "x.",
}
NAME_COMMANDS: dict[str, Callable[[str], list[str]]] = {  # `--`: a name like "-x" is a name, not an option
    "show": lambda n: ["show", "--", n], "status": lambda n: ["status", "--", n], "pause": lambda n: ["pause", "--", n],
    "unpause": lambda n: ["unpause", "--", n], "unregister": lambda n: ["unregister", "--", n],
    "history": lambda n: ["history", "--", n], "schedule": lambda n: ["schedule", "--", n],
    "run": lambda n: ["run", "--", n], "runs": lambda n: ["runs", "--", n],
    "backfill": lambda n: ["backfill", "--from", "2025-01-01", "--to", "2025-01-02", "--", n],
    "stop": lambda n: ["stop", "--", n, "manual__1"],
}


def distinctive(name: str) -> bool:
    """Long enough to be searched for in paths and keys without matching them by chance."""
    return len(name.strip(".-_ ~")) >= 2
BAD_VERSIONS = ["../1", "1/2", "%2e%2e", "-1", "0", "1\x00", "1e3", "", "one", "0x1"]

_AUDITED: list[str] | None = None
_AUDIT_EVENTS = ("open", "os.listdir", "os.scandir", "os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.link",
                 "os.symlink", "os.truncate", "os.chmod", "shutil.copyfile", "shutil.rmtree")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _AUDITED is not None and event in _AUDIT_EVENTS:
        _AUDITED.extend(f"{event} {os.fsdecode(a)}" for a in args if isinstance(a, str | bytes | os.PathLike))


sys.addaudithook(_audit)


@contextlib.contextmanager
def file_accesses() -> Iterator[list[str]]:
    """Every path this process opens, lists, creates or removes meanwhile (``sys.addaudithook``)."""
    global _AUDITED
    _AUDITED = []
    try:
        yield _AUDITED
    finally:
        _AUDITED = None


@pytest.fixture
def name_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[RecordingStore]]:
    """A published repo whose every store is a recorder; Airflow is configured but unreachable, so
    any request to it would show up as WF809 instead of the name being refused."""
    root = make_repo(tmp_path / "repo")
    store_root = tmp_path / "store"
    assert wfctl_inproc("--repo", str(root), "--store", str(store_root), "publish").rc == 0
    opened: list[RecordingStore] = []

    def open_recording(self: Any, config: Any) -> Store:
        opened.append(RecordingStore(LocalStore(store_root)))
        return opened[-1]

    from wfctl import cli

    monkeypatch.setattr(cli.State, "open_store", open_recording)
    monkeypatch.setenv("WFCTL_AIRFLOW_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("WFCTL_AIRFLOW_USERNAME", "admin")
    monkeypatch.setenv("WFCTL_AIRFLOW_PASSWORD", "not-used")
    return root, opened


def test_invalid_names_are_refused_before_any_store_or_file_access(name_world: tuple[Path, list[RecordingStore]],
                                                                   figures: Tally) -> None:
    """Traversal, separators, absolute paths, percent-encoding, NUL, newline, unicode lookalikes,
    129 characters, upper case...: every command that takes a workflow name refuses it (WF813,
    exit 2) before asking the store for any key and before touching any file named after it;
    ``rollback --to`` refuses what is not a version number the same way."""
    root, opened = name_world
    wrong = []
    for label, name in BAD_NAMES.items():
        for command, argv in NAME_COMMANDS.items():
            opened.clear()
            with file_accesses() as files:
                run = wfctl_inproc("--repo", str(root), *argv(name))
            asked = [key for store in opened for key in store.keys]
            touched = [f for f in files if distinctive(name) and name in f]
            errors = len(wrong)
            if run.rc != 2 or run.codes != ["WF813"] or "invalid workflow name" not in run.message:
                wrong.append(f"{command} {label} ({name!r}): not refused as an invalid name: exit {run.rc}, "
                             f"{run.codes} {run.message}")
            if asked or touched:
                wrong.append(f"{command} {label} ({name!r}): store keys {asked[:4]}, files {touched[:4]}")
            figures.add("Names", f"invalid names refused before any access: {command}", 1, unit="cases",
                        failed=int(len(wrong) > errors))
    for version in BAD_VERSIONS:
        opened.clear()
        run = wfctl_inproc("--repo", str(root), "rollback", "--to", version)
        bad = run.rc != 2 or any(store.calls for store in opened)
        if bad:
            wrong.append(f"rollback --to {version!r}: exit {run.rc}, store calls {[s.calls for s in opened]}")
        figures.add("Names", "invalid versions refused before any access: rollback --to", 1, unit="cases", failed=int(bad))
    # the control: a valid name of 128 characters is not refused, it is looked up (and not found)
    run = wfctl_inproc("--repo", str(root), "show", "a" * 128)
    assert run.rc == 1 and run.codes == ["WF800"], str(run)
    assert not wrong, "\n".join(wrong)


def test_register_of_documents_with_invalid_names(name_world: tuple[Path, list[RecordingStore]], tmp_path: Path,
                                                  figures: Tally) -> None:
    """A file whose workflow is named with any of the invalid names: ``register`` refuses it
    (validation, WF812) and no store key, file or DAG file is ever built from that name."""
    root, opened = name_world
    wrong = []
    for i, (label, name) in enumerate(BAD_NAMES.items()):
        doc = parse_documents(adhoc_text("placeholder"))[0]
        doc["metadata"]["name"] = name
        path = tmp_path / f"ops-{i}.yaml"
        path.write_text(dump_documents([doc]))
        opened.clear()
        with file_accesses() as files:
            run = wfctl_inproc("--repo", str(root), "register", str(path), "-o", "json")
        asked = [key for store in opened for key in store.keys]
        writes = [c for store in opened for c in store.calls if c[0] not in ("get", "exists", "list")]
        touched = [f for f in files if distinctive(name) and name in f and not f.endswith(path.name)]
        errors = len(wrong)
        if run.rc != 1 or run.json.get("error", {}).get("code") != "WF812":
            wrong.append(f"register {label} ({name!r}): exit {run.rc} {run.out[:300]}")
        if writes or touched or any(distinctive(name) and name in key for key in asked):
            wrong.append(f"register {label} ({name!r}): writes {writes}, files {touched[:4]}")
        check_keys(asked)
        figures.add("Names", "register of a document with an invalid name: refused, no key or file from it", 1,
                    unit="cases", failed=int(len(wrong) > errors))
    assert not wrong, "\n".join(wrong)


def test_store_keys_come_from_valid_names_only(request: pytest.FixtureRequest, tmp_path: Path, figures: Tally) -> None:
    """A publish, a register, a pause and a rollback through a backend that records every key it
    is asked for (the local store wrapped, and every request an S3 store sends to moto): each key
    has one of the layout's shapes, and DAG files are named by valid workflow names. The store's
    own last line of defence refuses unsafe keys, a trailing newline included."""
    from wfctl.store.base import check_key

    root = make_repo(tmp_path / "repo")
    config = config_mod.load(root)
    server: S3Server = request.getfixturevalue("moto_server")
    s3 = s3_backend("moto", server, "keys")
    s3_store = s3.open()
    assert isinstance(s3_store, S3Store)
    sent: list[str] = []
    bucket, prefix = s3._split()
    def key_of(request: Any, **_: Any) -> None:
        from urllib.parse import parse_qs, unquote, urlsplit

        url = urlsplit(request.url)
        path = unquote(url.path)
        assert path.startswith(f"/{bucket}"), path
        sent.append(path[len(f"/{bucket}/"):] or parse_qs(url.query).get("prefix", [""])[0])

    s3_store.client.meta.events.register("before-send.s3.*", key_of)
    (tmp_path / "ops.yaml").write_text(adhoc_text("ops-report"))
    recording = RecordingStore(LocalStore(tmp_path / "store"))
    for store in (recording, s3_store):
        options = deploy.PublishOptions(allow_dirty=True)
        deploy.publish(config, store, options, lambda m: None)
        set_description(root, f"changed for {store.url}")
        deploy.publish(config, store, options, lambda m: None)
        manual.register(config, store, [tmp_path / "ops.yaml"], False)
        manual.set_paused(config, store, "daily-sales", True)
        deploy.rollback(config, store, 1)
        doctor.require_conditional_writes(store)
    check_keys(recording.keys)
    figures.add("Names", "store keys checked (local store, recorded)", len(recording.keys), unit="keys", failed=0)
    assert all(k.startswith(prefix) for k in sent), [k for k in sent if not k.startswith(prefix)][:5]
    s3_keys = [k[len(prefix):].rstrip("/") for k in sent]
    check_keys(s3_keys)
    figures.add("Names", "store keys checked (S3 requests to moto)", len(s3_keys), unit="keys", failed=0)
    unsafe = ["code/current.json\n", "../x", "/abs", "a//b", "A", "a/../b", "a\x00b", "", "a/", ".hidden", "x" * 600,
              "effective/dags/Daily.py", "code/objects/x.json\n"]
    accepted = []
    for key in unsafe:
        try:
            check_key(key)
            accepted.append(key)
        except WfError as exc:
            assert exc.code == "WF806"
        figures.add("Names", "unsafe keys offered to the store's last line of defence", 1, unit="keys",
                    failed=int(bool(accepted) and accepted[-1] == key))
    assert not accepted, f"check_key accepted unsafe keys: {accepted}"


# -- limits ----------------------------------------------------------------------------------------


def validate_report(root: Path) -> Any:
    from wfctl import validate as validate_mod

    return validate_mod.validate(config_mod.load(root)).report


def rules_in(report: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for d in report.diagnostics:
        found.setdefault(d.rule, []).append(d)
    return found


def limit_repo(tmp_path: Path, name: str, files: dict[str, str | bytes]) -> Path:
    root = tmp_path / name
    root.mkdir(parents=True)
    (root / "wfctl.yaml").write_text("paths: [workflows]\n")
    for rel, content in files.items():
        path = root / "workflows" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


LIMIT_HEADER = "apiVersion: wfctl/v1\nkind: Workflow\nmetadata: {name: w, owner: x}\n"


def assert_limit(tmp_path: Path, figures: Tally, label: str, rule: str, ok: dict[str, str | bytes],
                 over: dict[str, str | bytes], words: tuple[str, ...]) -> None:
    """``ok`` stays under the limit (no ``rule``), ``over`` passes it: ``rule`` with a message that
    names the limit, a hint, and through the CLI exit 1 and the JSON report, no traceback."""
    assert rule not in rules_in(validate_report(limit_repo(tmp_path, f"{rule}-ok", ok))), f"{label}: refused at the limit"
    root = limit_repo(tmp_path, f"{rule}-over", over)
    found = rules_in(validate_report(root)).get(rule)
    assert found, f"{label}: not refused past the limit"
    for d in found:
        assert all(w in d.message for w in words) and len(d.hint) > 20, (d.message, d.hint)
    run = wfctl_inproc("--repo", str(root), "validate", "-o", "json")
    assert run.rc == 1 and rule in {d["rule"] for d in run.json["diagnostics"]}, str(run)
    figures.add("Limits", label, 2, unit="cases", rule=rule, message=found[0].message)


def test_limit_file_size(tmp_path: Path, figures: Tally, monkeypatch: pytest.MonkeyPatch) -> None:
    from wfctl import loader

    body = LIMIT_HEADER + "spec: {tasks: []}\n# padding\n"
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", len(body.encode()))
    assert_limit(tmp_path, figures, "file size (a limit of exactly the file's size, then one byte less)", "WF104",
                 {"x.yaml": body}, {"x.yaml": body + "#"}, ("bytes", "the limit is"))
    monkeypatch.undo()
    root = limit_repo(tmp_path, "real", {"x.yaml": LIMIT_HEADER})
    with (root / "workflows" / "x.yaml").open("r+b") as handle:  # sparse: one byte past 4 MiB costs nothing
        handle.truncate(loader.MAX_FILE_BYTES + 1)
    [d] = rules_in(validate_report(root))["WF104"]
    assert f"{loader.MAX_FILE_BYTES:,}" in d.message
    figures.add("Limits", f"file size: the real limit ({loader.MAX_FILE_BYTES:,} bytes) plus one byte", 1, unit="cases",
                rule="WF104")


def test_limit_alias_expansion(tmp_path: Path, figures: Tally) -> None:
    from wfctl import loader

    def aliased(times: int) -> str:
        items = ", ".join(f"i{i}" for i in range(1000))
        return LIMIT_HEADER + f"x-anchor: &a [{items}]\nspec:\n  refs: [{', '.join(['*a'] * times)}]\n"

    assert loader.MAX_NODES == 100_000
    assert_limit(tmp_path, figures, "alias expansion (1,000 items aliased 90 times, then 110 times)", "WF103",
                 {"x.yaml": aliased(90)}, {"x.yaml": aliased(110)}, ("expands to more than", "100,000"))
    levels = [LIMIT_HEADER, "spec:\n", '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n']
    levels += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 9)]
    started = time.monotonic()
    assert "WF103" in rules_in(validate_report(limit_repo(tmp_path, "laughs", {"x.yaml": "".join(levels)})))
    assert time.monotonic() - started < 5, "a billion laughs took long to refuse"
    figures.add("Limits", "alias expansion: a billion laughs (10^9 nodes) refused at once", 1, unit="cases", rule="WF103")


def test_limit_nesting_depth(tmp_path: Path, figures: Tally) -> None:
    from wfctl import loader

    def nested(brackets: int, flow: bool) -> str:
        if flow:
            return LIMIT_HEADER + "spec: " + "[" * brackets + "]" * brackets + "\n"
        return LIMIT_HEADER + "spec:\n" + "".join(" " * (i + 1) + "k:\n" for i in range(brackets))

    depth = loader.MAX_DEPTH  # the root mapping is level 1, `spec:`'s value level 2...
    for flow in (True, False):
        assert_limit(tmp_path / ("flow" if flow else "block"), figures,
                     f"nesting depth, {'flow' if flow else 'block'} style ({depth} levels, then {depth + 1})", "WF106",
                     {"x.yaml": nested(depth - 1, flow)}, {"x.yaml": nested(depth, flow)}, (f"more than {depth} levels",))


def test_limit_documents_per_file(tmp_path: Path, figures: Tally) -> None:
    from wfctl import loader

    def documents(n: int) -> str:
        return "---\n".join(f"apiVersion: wfctl/v1\nkind: Component\nmetadata: {{name: c{i}, owner: x}}\nspec: {{type: bash}}\n"
                            for i in range(n))

    limit = loader.MAX_DOCUMENTS
    assert_limit(tmp_path, figures, f"documents per file ({limit:,}, then {limit + 1:,})", "WF107",
                 {"x.yaml": documents(limit)}, {"x.yaml": documents(limit + 1)}, (f"more than {limit}", "documents"))


def test_limit_total_repo_size(tmp_path: Path, figures: Tally, monkeypatch: pytest.MonkeyPatch) -> None:
    """WF110: the YAML under the configured paths may not exceed ``MAX_REPO_BYTES`` in total
    (patched down to this repo's size): at the limit it validates, one byte less and validate,
    plan and publish refuse with WF110 and a hint, exit 1, no traceback, nothing published."""
    from wfctl import validate as validate_mod

    root = make_repo(tmp_path / "repo")
    total = sum(p.stat().st_size for p in (root / "workflows").rglob("*.yaml"))
    monkeypatch.setattr(validate_mod, "MAX_REPO_BYTES", total)
    assert "WF110" not in rules_in(validate_report(root))
    monkeypatch.setattr(validate_mod, "MAX_REPO_BYTES", total - 1)
    [d] = rules_in(validate_report(root))["WF110"]
    assert f"{total - 1:,}" in d.message and "paths" in d.hint, (d.message, d.hint)
    run = wfctl_inproc("--repo", str(root), "validate", "-o", "json")
    assert run.rc == 1 and [x["rule"] for x in run.json["diagnostics"]] == ["WF110"], str(run)
    assert run.json["diagnostics"][0]["hint"], str(run)
    store = tmp_path / "store"
    for command in (["plan"], ["publish"]):
        run = wfctl_inproc("--repo", str(root), "--store", str(store), *command)
        assert run.rc == 1 and run.codes == ["WF812"] and "WF110" in run.err, str(run)
    assert not (store / "code").exists(), "a repo over the size limit was published"
    figures.add("Limits", "total repo size (patched to the repo's size, then one byte less)", 2,
                unit="cases", rule="WF110", message=d.message)
    figures.add("Limits", "total repo size: plan and publish refuse, nothing written", 2, unit="cases", rule="WF110")


# -- secrets -------------------------------------------------------------------------------------

SECRETS = {  # distinctive, high-entropy fake credentials
    "AWS_ACCESS_KEY_ID": "AKIAWFCTLQ7ZK3XN9PRM",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY9e4c1a7d2f8b3e",
    "AWS_SESSION_TOKEN": "FQoGZXIvYXdzEJr/wfctl/9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4",
    "WFCTL_AIRFLOW_PASSWORD": "af-P4ssw0rd-7c3e9a1b5d8f2e6a",
}
URL_PASSWORD = "url-Pw-3b8e1d6c9a2f5e7b"
AIRFLOW_TOKEN = "eyJhbGciOiJIUzI1NiJ9.wfctl-token-5a9c2e7b1d3f8e6a.sig"
AIRFLOW_USER = "wfctl-admin"


def secret_fragments() -> dict[str, str]:
    """Every 10-character window of every secret, and whose it is: a clipped leak is a leak too."""
    values = {**SECRETS, "password in a URL": URL_PASSWORD, "Airflow token": AIRFLOW_TOKEN}
    return {v[i:i + 10]: name for name, v in values.items() for i in range(len(v) - 9)}


class AirflowStub(http.server.BaseHTTPRequestHandler):
    """Airflow's REST API as far as pause and run need it; the first path segment picks a
    behaviour: ``ok``, ``login-echo`` (refuses the login, echoing the request back) or
    ``api-echo`` (issues a token, then fails every call echoing its headers and body)."""

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mode, _, rest = self.path.lstrip("/").partition("/")
        echo = f"{self.command} {self.path}\n{self.headers}\n{body.decode('utf-8', 'replace')}"
        if rest.startswith("auth/token"):
            if mode == "login-echo":
                return self._reply(401, json.dumps({"detail": echo}))
            return self._reply(201, json.dumps({"access_token": AIRFLOW_TOKEN, "token_type": "bearer"}))
        if mode == "api-echo":
            return self._reply(500, echo, "text/plain")
        dag_id = rest.split("/")[3] if rest.count("/") >= 3 else "x"
        if self.command == "PATCH":
            return self._reply(200, json.dumps({"dag_id": dag_id, "is_paused": json.loads(body)["is_paused"]}))
        if self.command == "POST" and rest.endswith("/dagRuns"):
            run = {"dag_id": dag_id, "dag_run_id": "manual__2025-01-01", "state": "queued", "run_type": "manual",
                   "conf": json.loads(body)["conf"], "logical_date": json.loads(body)["logical_date"]}
            return self._reply(200, json.dumps(run))
        return self._reply(404, json.dumps({"detail": f"no route {self.path}"}))

    do_GET = do_POST = do_PATCH = _serve

    def _reply(self, status: int, text: str, content_type: str = "application/json") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def airflow_stub() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AirflowStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def scan(where: str, data: bytes, fragments: dict[str, str]) -> list[str]:
    return sorted({f"{where}: {name}" for f, name in fragments.items() if f.encode() in data})


def test_secrets_never_leak(request: pytest.FixtureRequest, tmp_path: Path, airflow_stub: str, figures: Tally) -> None:
    """Fake AWS credentials (key id, secret, session token), an Airflow password and token, and
    passwords inside endpoint and Airflow URLs: publish, plan, doctor, snapshot, config, pause and
    run, succeeding and failing (unreachable endpoint, missing bucket, Airflow refusing the login,
    failing while echoing the request, unreachable), each with -v and with -vv: no 10-character
    piece of any secret appears in stdout, stderr, or any file written into the repo or the store."""
    server: S3Server = request.getfixturevalue("moto_server")
    backend = s3_backend("moto", server, "secrets")
    root = make_repo(tmp_path / "repo")
    out = tmp_path / "out"
    out.mkdir()
    env = cli_env(**SECRETS, WFCTL_AIRFLOW_USERNAME=AIRFLOW_USER, AWS_EC2_METADATA_DISABLED="true")
    s3 = backend.flags()
    closed = f"http://127.0.0.1:{closed_port()}"
    with_password = server.endpoint_url.replace("http://", f"http://{AIRFLOW_USER}:{URL_PASSWORD}@")
    airflow_with_password = airflow_stub.replace("http://", f"http://{AIRFLOW_USER}:{URL_PASSWORD}@") + "/ok"
    missing = f"s3://wfctl-missing-{os.getpid()}/x"
    # (label, argv, extra environment, expected exit code)
    cases: list[tuple[str, list[str], dict[str, str], int]] = [
        ("publish", [*s3, "publish", "--allow-dirty"], {}, 0),
        ("plan --out", [*s3, "plan", "--out", str(out / "plan.json")], {}, 0),
        ("doctor --verify", [*s3, "doctor", "--verify"], {}, 0),
        ("snapshot", [*s3, "snapshot", "--out", str(out / "snapshot.json")], {}, 0),
        ("config", [*s3, "config", "-o", "json"], {"WFCTL_AIRFLOW_URL": airflow_stub}, 0),
        ("pause (Airflow answers)", [*s3, "pause", "daily-sales"], {"WFCTL_AIRFLOW_URL": f"{airflow_stub}/ok"}, 0),
        ("unpause (Airflow answers)", [*s3, "unpause", "daily-sales"], {"WFCTL_AIRFLOW_URL": f"{airflow_stub}/ok"}, 0),
        ("run (Airflow answers)", [*s3, "run", "hello-bash"], {"WFCTL_AIRFLOW_URL": f"{airflow_stub}/ok"}, 0),
        ("pause (Airflow refuses the login, echoing it)", [*s3, "pause", "daily-sales"],
         {"WFCTL_AIRFLOW_URL": f"{airflow_stub}/login-echo"}, 1),
        ("run (Airflow fails, echoing the request)", [*s3, "run", "hello-bash"],
         {"WFCTL_AIRFLOW_URL": f"{airflow_stub}/api-echo"}, 1),
        ("pause (Airflow unreachable)", [*s3, "pause", "daily-sales"], {"WFCTL_AIRFLOW_URL": closed}, 1),
        ("run (Airflow unreachable)", [*s3, "run", "hello-bash"], {"WFCTL_AIRFLOW_URL": closed}, 1),
        ("publish (endpoint unreachable)", ["--store", backend.url, "--endpoint-url", closed, "publish"], {}, 1),
        ("plan (endpoint unreachable)", ["--store", backend.url, "--endpoint-url", closed, "plan"], {}, 1),
        ("doctor (endpoint unreachable)", ["--store", backend.url, "--endpoint-url", closed, "doctor"], {}, 1),
        ("publish (missing bucket)", ["--store", missing, "--endpoint-url", server.endpoint_url, "publish"], {}, 1),
        ("doctor (missing bucket)", ["--store", missing, "--endpoint-url", server.endpoint_url, "doctor"], {}, 1),
        ("config (password in the endpoint URL)", ["--store", backend.url, "--endpoint-url", with_password, "config"],
         {}, 0),
        ("config (password in the Airflow URL)", [*s3, "config"], {"WFCTL_AIRFLOW_URL": airflow_with_password}, 0),
        ("doctor (password in the endpoint URL)", ["--store", backend.url, "--endpoint-url", with_password, "doctor"],
         {}, 0),
        ("pause (password in the Airflow URL)", [*s3, "pause", "daily-sales"],
         {"WFCTL_AIRFLOW_URL": airflow_with_password}, 1),
    ]
    fragments = secret_fragments()
    leaks: list[str] = []
    unexpected: list[str] = []

    def check(batch: list[tuple[tuple[str, list[str], dict[str, str], int], str]], race: Racers) -> None:
        runs = race.run([(root, [verbosity, *case[1]]) for case, verbosity in batch],
                         [{**env, **case[2]} for case, _ in batch], check=False)
        for ((label, _argv, _extra, rc), verbosity), run in zip(batch, runs, strict=True):
            name = f"{label} {verbosity}"
            found = scan(f"{name}: stdout", run.out.encode(), fragments) + scan(f"{name}: stderr", run.err.encode(),
                                                                                   fragments)
            leaks.extend(found)
            if run.rc != rc:
                unexpected.append(f"{name}: exit {run.rc}, expected {rc}\n{run.err[-1500:]}")
            if verbosity == "-v":  # -vv prints tracebacks on purpose
                no_traceback(run)
            figures.add("Secrets", f"runs scanned (stdout and stderr), {verbosity}", 1, unit="runs",
                        failed=int(bool(found) or run.rc != rc))

    set_cron(root, "7 7 * * *")
    runs = [(c, v) for c in cases for v in ("-v", "-vv")]
    writers = [r for r in runs[1:] if r[0][1][len(s3) if r[0][1][:len(s3)] == s3 else 0] in ("pause", "unpause")]
    readers = [r for r in runs[1:] if r not in writers]
    with racers(tmp_path / "racers", s3=True, env=cli_env()) as race:
        check(runs[:1], race)  # publish first: the rest reads what it wrote
        for start in range(0, len(readers), 8):  # commands that write nothing, 8 at a time
            check(readers[start:start + 8], race)
        for run in writers:  # pause and unpause, one at a time: they would race on the operator state
            check([run], race)
    for path in [*root.rglob("*"), *out.rglob("*")]:
        if path.is_file():
            found = scan(f"file {path.relative_to(tmp_path)}", path.read_bytes(), fragments)
            leaks.extend(found)
            figures.add("Secrets", "files scanned (repo, plan, snapshot)", 1, unit="files", failed=int(bool(found)))
    for key in backend.all_keys():
        found = scan(f"store key {key}", backend.read(key), fragments)
        leaks.extend(found)
        figures.add("Secrets", "store objects scanned", 1, unit="objects", failed=int(bool(found)))
    figures.add("Secrets", "secret values planted (each looked for as every 10-character piece)", len(SECRETS) + 2,
                unit="secrets", failed=0, pieces=len(fragments))
    figures.add("Secrets", "leaks found (place, secret)", len(set(leaks)), unit="leaks", total=False,
                failed=len(set(leaks)), leaks=sorted({leak.split(" -v")[0] for leak in leaks}))
    assert not leaks and not unexpected, "secrets leaked:\n" + "\n".join(sorted(set(leaks))) + "\n\n" + "\n\n".join(unexpected)


# -- the local store: permissions and the lock --------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022, 0o077], ids=["umask-000", "umask-002", "umask-022", "umask-077"])
def test_local_store_files_follow_the_umask_never_world_writable(umask: int, tmp_path: Path, figures: Tally) -> None:
    """A real publish, register and pause under each umask (0 included): every file and folder of the
    store gets 0o664 / 0o775 minus the umask, so nothing is ever world-writable."""
    root = make_repo(tmp_path / "repo")
    (tmp_path / "ops.yaml").write_text(adhoc_text("ops-report"))
    for argv in (["publish"], ["register", str(tmp_path / "ops.yaml")], ["pause", "daily-sales"]):
        done = subprocess.run([sys.executable, "-m", "wfctl", *argv], cwd=root, env=cli_env(), capture_output=True,
                              text=True, timeout=TIMEOUT, preexec_fn=lambda: os.umask(umask))
        assert done.returncode == 0, done.stderr
    store = root / ".wfctl" / "store"
    paths = [store, *store.rglob("*")]
    wrong = []
    for path in paths:
        mode = path.stat().st_mode & 0o777
        expected = (0o775 if path.is_dir() else 0o664) & ~umask
        if mode != expected or mode & 0o002:
            wrong.append(f"{path.relative_to(store)}: {oct(mode)}, expected {oct(expected)}")
    figures.add("Local store", f"umask {umask:03o}: files and folders get 0o664/0o775 minus the umask, none "
                "world-writable", len(paths), unit="paths", failed=len(wrong))
    assert not wrong, "\n".join(wrong)


LOCK_HOLDER = """
import sys, time
from wfctl.store.local import LocalStore
with LocalStore(sys.argv[1])._locked("code/current.json"):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_killed_lock_holder_blocks_no_one(tmp_path: Path, figures: Tally) -> None:
    """A process takes the store's compare-and-swap lock on the CODE pointer (through LocalStore's
    own locking) and hangs: a publish writes its version, then waits at the pointer (the lock is
    real). The holder is SIGKILLed: the kernel drops its flock, the waiting publish finishes
    promptly, and the next writer does not wait at all."""
    root = make_repo(tmp_path / "repo")
    store = root / ".wfctl" / "store"
    assert wfctl(root, "publish").rc == 0
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(store)], stdout=subprocess.PIPE, text=True,
                              env=cli_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        set_cron(root, "5 5 * * *")
        publisher = subprocess.Popen([sys.executable, "-m", "wfctl", "publish", "--allow-dirty", "-o", "json"], cwd=root,
                                     env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (store / "code" / "versions" / "2.json").exists():  # it reached the pointer's compare-and-swap
            assert publisher.poll() is None and time.monotonic() < deadline, publisher.communicate()
            time.sleep(0.05)
        time.sleep(1.0)
        assert publisher.poll() is None, "the publish did not wait for the lock"
        assert json.loads((store / "code" / "current.json").read_text())["version"] == 1
        os.kill(holder.pid, signal.SIGKILL)
        killed = time.monotonic()
        holder.wait(timeout=10)
        out, err = publisher.communicate(timeout=20)
        waited = time.monotonic() - killed
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert publisher.returncode == 0 and json.loads(out)["version"] == 2, err
    assert waited < 5, f"the publish took {waited:.1f}s after the holder died"
    assert wfctl(root, "publish", "--allow-dirty").rc == 0  # and the next writer does not wait at all
    figures.add("Local store", "lock held by a process that is then SIGKILLed: the waiting publish goes on", 1,
                unit="cases", seconds_after_kill=round(waited, 2))
