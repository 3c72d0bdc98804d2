"""Benchmark: plan and publish of ONE changed workflow among N, on the local store
and on moto's S3 server, with wall times of the real CLI and store request counts.

    python benchmarks/bench_gitops.py --count 10000 [--backends local,moto] [--json]

Steps per backend: generate N workflows (bench_validate's generator), commit,
publish them all (timed, reported), change one workflow's cron and commit, then
time `wfctl plan` (with the validation cache the earlier runs filled, and with
`--no-cache`) and `wfctl publish` (subprocesses, cold processes). Request
counts come from an in-process run of the same plan/publish functions with a
counting wrapper (local) or botocore's event hooks (S3).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import git
from bench_validate import generate_repo, workflow_files

from wfctl import config as config_mod
from wfctl import deploy
from wfctl.store.base import Blob, Store
from wfctl.store.url import open_store

WFCTL = [sys.executable, "-m", "wfctl"]


class CountingStore(Store):
    """Counts every call a backend is asked for (the local store has no wire to watch)."""

    def __init__(self, inner: Store) -> None:
        self.inner, self.url, self.calls = inner, inner.url, Counter[str]()

    def _count(self, name: str) -> None:
        self.calls[name] += 1

    def get(self, key: str) -> Blob | None:
        self._count("get")
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        self._count("exists")
        return self.inner.exists(key)

    def put(self, key: str, data: bytes) -> None:
        self._count("put")
        self.inner.put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> None:
        self._count("put_if_absent")
        self.inner.put_if_absent(key, data)

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> None:
        self._count("put_if_match")
        self.inner.put_if_match(key, data, etag)

    def delete(self, key: str) -> None:
        self._count("delete")
        self.inner.delete(key)

    def list(self, prefix: str):  # type: ignore[no-untyped-def]
        self._count("list")
        return self.inner.list(prefix)

    def describe(self) -> str:
        return self.inner.describe()


def run(repo: Path, *args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([*WFCTL, "--repo", str(repo), *args], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"wfctl {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def make_repo(base: Path, count: int) -> tuple[Path, git.Repo]:
    repo = base / "repo"
    generate_repo(repo, count)
    (repo / ".gitignore").write_text(".wfctl/\n")
    handle = git.Repo.init(repo, initial_branch="main")
    handle.git.add(A=True)
    actor = git.Actor("bench", "bench@example.com")
    handle.index.commit("workflows", author=actor, committer=actor)
    return repo, handle


def change_one(repo: Path, handle: git.Repo, round_: int) -> None:
    target = workflow_files(repo, 1)[0]
    text = target.read_text()
    marker = "description: "
    target.write_text(text.replace(marker, f"{marker}changed {round_} ", 1))
    handle.git.add(A=True)
    actor = git.Actor("bench", "bench@example.com")
    handle.index.commit(f"change {round_}", author=actor, committer=actor)


def counted(store_url: str, endpoint: str | None, repo: Path) -> dict[str, Any]:
    """Request counts of one plan and one publish of a single change, in-process."""
    config = config_mod.load(repo, {"store": store_url, "endpoint_url": endpoint})
    base = open_store(store_url, endpoint_url=endpoint)
    store = CountingStore(base)
    requests: Counter[str] = Counter()
    client = getattr(base, "client", None)
    if client is not None:
        client.meta.events.register("before-send.s3.*", lambda request, **_: requests.update([request.method]))
    deploy.plan(config, lambda: store)
    plan_calls, plan_http = dict(store.calls), dict(requests)
    store.calls.clear()
    requests.clear()
    handle = git.Repo(repo)
    change_one(repo, handle, 99)
    deploy.publish(config, store, deploy.PublishOptions(), lambda _msg: None)
    return {"plan_store_calls": plan_calls, "plan_http": plan_http,
            "publish_store_calls": dict(store.calls), "publish_http": dict(requests)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    for _ in range(100):
        try:
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench")
            return proc, endpoint
        except Exception:  # not up yet
            time.sleep(0.1)
    raise SystemExit("moto server did not start")


def bench_backend(backend: str, count: int, base: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFCTL_")}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    proc = None
    repo, handle = make_repo(base / backend, count)
    if backend == "moto":
        proc, endpoint = start_moto(env)
        store_args, store_url = ["--store", "s3://bench/wfctl", "--endpoint-url", endpoint], "s3://bench/wfctl"
    else:
        endpoint, store_args, store_url = None, [], str(repo / ".wfctl" / "store")
    try:
        out: dict[str, Any] = {"backend": backend, "workflows": count}
        out["publish_all_s"] = run(repo, *store_args, "publish", env=env)
        out["noop_publish_s"] = run(repo, *store_args, "publish", env=env)
        change_one(repo, handle, 1)
        out["plan_one_change_s"] = run(repo, *store_args, "plan", env=env)
        out["plan_one_change_no_cache_s"] = run(repo, *store_args, "--no-cache", "plan", env=env)
        out["publish_one_change_s"] = run(repo, *store_args, "publish", env=env)
        change_one(repo, handle, 2)
        out.update(counted(store_url, endpoint, repo))
        return out
    finally:
        if proc is not None:
            os.killpg(proc.pid, 15)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| backend | workflows | publish all (s) | no-op publish (s) | plan 1 change (s) |"
             " plan 1 change, --no-cache (s) | publish 1 change (s) |"
             " plan store calls | publish store calls | publish HTTP requests |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['workflows']} | {r['publish_all_s']:.2f} | {r['noop_publish_s']:.2f} | "
                     f"{r['plan_one_change_s']:.2f} | {r['plan_one_change_no_cache_s']:.2f} | "
                     f"{r['publish_one_change_s']:.2f} | "
                     f"{sum(r['plan_store_calls'].values())} {r['plan_store_calls']} | "
                     f"{sum(r['publish_store_calls'].values())} {r['publish_store_calls']} | {r['publish_http'] or '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--backends", default="local,moto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="wfctl-bench-gitops-"))
    try:
        rows = [bench_backend(b, args.count, base) for b in args.backends.split(",")]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(rows, indent=2) if args.json else markdown(rows))
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
