"""One contract for every store backend, plus what is specific to each.

The contract runs against the local directory store, moto's in-process
``mock_aws``, moto's real HTTP server and SeaweedFS: whatever sits above the
store can then rely on the same create-if-absent / compare-and-swap behaviour
everywhere, races included.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from servers import REGION, S3Server, closed_port, fake_aws_env, moto_server, seaweedfs  # noqa: F401

from wfctl.errors import CONFLICT, INTEGRITY, INVALID_CONFIG, STORE_UNAVAILABLE, WfError
from wfctl.store.base import ConflictError, Store
from wfctl.store.local import LocalStore
from wfctl.store.s3 import S3Store
from wfctl.store.url import open_store

S3_BACKENDS = ["moto", "moto_server", "seaweedfs"]
BACKENDS = ["local", *S3_BACKENDS]
ATOMIC_BACKENDS = {"local", "seaweedfs"}  # moto's conditional put is check-then-write, without a lock
UNSAFE_KEYS = ["../x", "/abs", "a//b", "A", "a/../b", "a\0b", "", "a/", ".hidden", "a/./b", "a\\b", "x" * 600]
SECRET = "wfctl-Distinctive-Secret-0123456789abcdef"
KEY_ID = "AKIAWFCTLDISTINCTIVE"


# -- backends -----------------------------------------------------------------


@dataclass
class S3Env:
    """Where an S3 store of one backend lives: its endpoint (None: AWS default) and fresh buckets."""

    name: str
    endpoint_url: str | None
    new_bucket: Callable[[], str]

    def open(self) -> S3Store:
        store = open_store(self.new_bucket(), endpoint_url=self.endpoint_url)
        assert isinstance(store, S3Store)
        return store


@contextlib.contextmanager
def _s3_backend(request: pytest.FixtureRequest, name: str) -> Iterator[S3Env]:
    """One S3 backend: moto's in-process mock for this test only, or a session-wide server."""
    request.getfixturevalue("fake_aws_env")
    if name != "moto":
        server: S3Server = request.getfixturevalue(name)
        yield S3Env(name, server.endpoint_url, server.new_bucket)
        return
    with mock_aws(config={"core": {"mock_credentials": False}}):  # keep fake_aws_env's credentials
        counter = iter(range(1_000_000))

        def new_bucket() -> str:
            bucket = f"wfctl-mock-{next(counter)}"
            _client(open_store(f"s3://{bucket}")).create_bucket(Bucket=bucket)  # a store's client loads fastest
            return f"s3://{bucket}/some/prefix"

        yield S3Env(name, None, new_bucket)


@pytest.fixture(params=S3_BACKENDS)
def s3_env(request: pytest.FixtureRequest) -> Iterator[S3Env]:
    with _s3_backend(request, request.param) as env:
        yield env


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    with _s3_backend(request, request.param) as env:
        yield env.open()


def count_requests(store: Store) -> list[str]:
    """Every request the S3 store sends from now on (empty list for the local store)."""
    sent: list[str] = []
    if isinstance(store, S3Store):
        store.client.meta.events.register("before-send.s3.*", lambda **kw: sent.append(kw["event_name"]))
    return sent


# -- the contract ---------------------------------------------------------------


def test_get_missing_is_none(store: Store) -> None:
    assert store.get("code/current.json") is None
    assert store.exists("code/current.json") is False


def test_put_get_round_trip(store: Store) -> None:
    store.put("code/objects/abc.json", b'{"a": 1}')
    first = store.get("code/objects/abc.json")
    assert first is not None and first.data == b'{"a": 1}' and first.etag
    assert store.exists("code/objects/abc.json")
    store.put("code/objects/abc.json", b'{"a": 2}')
    second = store.get("code/objects/abc.json")
    assert second is not None and second.data == b'{"a": 2}' and second.etag != first.etag


def test_put_if_absent_twice_conflicts(store: Store) -> None:
    store.put_if_absent("code/versions/1.json", b"first")
    with pytest.raises(ConflictError) as caught:
        store.put_if_absent("code/versions/1.json", b"second")
    assert caught.value.code == CONFLICT and caught.value.key == "code/versions/1.json"
    assert _data(store, "code/versions/1.json") == b"first"


def test_put_if_match_with_current_etag(store: Store) -> None:
    store.put_if_absent("code/current.json", b"v1")
    old = store.get("code/current.json")
    assert old is not None
    store.put_if_match("code/current.json", b"v2", old.etag)
    new = store.get("code/current.json")
    assert new is not None and new.data == b"v2" and new.etag != old.etag


def test_put_if_match_with_stale_etag_conflicts(store: Store) -> None:
    store.put("code/current.json", b"v1")
    stale = _etag(store, "code/current.json")
    store.put("code/current.json", b"v2")
    with pytest.raises(ConflictError):
        store.put_if_match("code/current.json", b"v3", stale)
    assert _data(store, "code/current.json") == b"v2"


def test_put_if_match_none_on_existing_conflicts(store: Store) -> None:
    store.put("state/current.json", b"v1")
    with pytest.raises(ConflictError):
        store.put_if_match("state/current.json", b"v2", None)
    assert _data(store, "state/current.json") == b"v1"


def test_put_if_match_none_on_missing_creates(store: Store) -> None:
    store.put_if_match("state/current.json", b"v1", None)
    assert _data(store, "state/current.json") == b"v1"


def test_put_if_match_on_missing_key_conflicts(store: Store) -> None:
    store.put("code/current.json", b"v1")
    etag = _etag(store, "code/current.json")
    store.delete("code/current.json")
    with pytest.raises(ConflictError):
        store.put_if_match("code/current.json", b"v2", etag)
    assert store.get("code/current.json") is None


def test_list_is_sorted_and_relative(store: Store) -> None:
    keys = ["code/versions/2.json", "code/versions/10.json", "code/current.json", "code/objects/ab.json",
            "manual/current.json", "effective/dags/x.py"]
    for key in keys:
        store.put(key, b"x")
    store.put_if_match("state/current.json", b"s", None)  # leaves a lock file behind locally
    assert list(store.list("code/")) == ["code/current.json", "code/objects/ab.json", "code/versions/10.json",
                                         "code/versions/2.json"]
    assert list(store.list("code/versions/")) == ["code/versions/10.json", "code/versions/2.json"]
    assert list(store.list("nothing/")) == []
    assert list(store.list("")) == sorted([*keys, "state/current.json"])


def test_delete(store: Store) -> None:
    store.put("effective/dags/x.py", b"x")
    store.delete("effective/dags/x.py")
    assert store.get("effective/dags/x.py") is None
    store.delete("effective/dags/x.py")  # absent: no error
    assert list(store.list("effective/")) == []


def test_unsafe_keys_never_reach_the_backend(store: Store) -> None:
    sent = count_requests(store)
    calls: list[Callable[[str], Any]] = [
        store.get, store.exists, store.delete, lambda k: store.put(k, b"x"), lambda k: store.put_if_absent(k, b"x"),
        lambda k: store.put_if_match(k, b"x", None), lambda k: store.put_if_match(k, b"x", "etag"),
        lambda k: list(store.list(k + "/")),
    ]
    for key in UNSAFE_KEYS:
        for call in calls:
            with pytest.raises(WfError) as caught:
                call(key)
            assert caught.value.code == INTEGRITY, (key, caught.value)
    assert sent == []
    store.get("fine.json")  # the counter does see real requests
    assert len(sent) == (1 if isinstance(store, S3Store) else 0)
    if isinstance(store, LocalStore):
        assert not store.root.exists()  # nothing was created either


def test_exactly_one_of_8_threads_wins(store: Store, request: pytest.FixtureRequest) -> None:
    """10 rounds: 8 writers read the same etag, then all try to swap; one wins, 7 conflict.

    The rounds run at the same time, one key and one client each: SeaweedFS makes the
    losers of a same-key race wait 1-3 s, so 10 rounds in a row would take up to 30 s.
    moto checks the precondition, then writes, without a lock: it lets two writers win
    now and then (seen in-process about once in 150 rounds), so on moto this only checks
    that every writer either wins or gets a ConflictError.
    """
    rounds, writers = 10, 8
    keys = [f"code/round-{n}.json" for n in range(rounds)]
    for key in keys:
        store.put_if_absent(key, b"start")
    stores = [_reopen(store) for _ in keys]
    barriers = [threading.Barrier(writers) for _ in keys]

    def contend(round_: int, writer: int) -> str:
        mine, key = stores[round_], keys[round_]
        etag = _etag(mine, key)
        barriers[round_].wait(timeout=30)
        try:
            mine.put_if_match(key, f"{round_}-{writer}".encode(), etag)
        except ConflictError:
            return "lost"
        return f"{round_}-{writer}"

    jobs = [(round_, writer) for round_ in range(rounds) for writer in range(writers)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: contend(*job), jobs))
    atomic = request.node.callspec.params["store"] in ATOMIC_BACKENDS
    for round_, key in enumerate(keys):
        mine = results[round_ * writers:(round_ + 1) * writers]
        winners = [r for r in mine if r != "lost"]
        assert len(winners) == 1 if atomic else winners, mine
        assert _data(store, key) in {w.encode() for w in winners}


# -- local store specifics --------------------------------------------------------


def _cas_in_process(root: str, key: str, etag: str, data: bytes) -> str:
    """One competing writer in its own process (its own flock)."""
    try:
        LocalStore(root).put_if_match(key, data, etag)
    except ConflictError:
        return "lost"
    return "won"


def test_local_exactly_one_of_8_processes_wins(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_if_absent("code/current.json", b"start")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        for round_ in range(10):
            etag = _etag(store, "code/current.json")
            jobs = [(str(store.root), "code/current.json", etag, f"{round_}-{n}".encode()) for n in range(8)]
            results = pool.starmap(_cas_in_process, jobs, chunksize=1)
            assert sorted(results) == ["lost"] * 7 + ["won"], results


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o000, 0o664, 0o775), (0o022, 0o644, 0o755),
                                                               (0o077, 0o600, 0o700)])
def test_local_permissions_follow_umask_never_world_writable(tmp_path: Path, umask: int, file_mode: int,
                                                             dir_mode: int) -> None:
    store = LocalStore(tmp_path / "deep" / "store")
    old = os.umask(umask)
    try:
        _exercise(store)
    finally:
        os.umask(old)
    for path in [tmp_path / "deep", *(tmp_path / "deep").rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (dir_mode if path.is_dir() else file_mode), (path, oct(mode))


def test_local_leaves_no_temp_files_after_conflicts(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_if_absent("code/versions/1.json", b"v1")
    store.put("code/current.json", b"p1")
    attempts: list[Callable[[], None]] = [lambda: store.put_if_absent("code/versions/1.json", b"again"),
                                          lambda: store.put_if_match("code/current.json", b"p2", "stale"),
                                          lambda: store.put_if_match("code/current.json", b"p2", None),
                                          lambda: store.put_if_match("code/missing.json", b"p2", "stale")]
    for attempt in attempts:
        with pytest.raises(ConflictError):
            attempt()
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())
    assert files == [".locks/code%current.json", ".locks/code%missing.json", "code/current.json",
                     "code/versions/1.json"]


def test_local_etag_is_sha256_of_bytes(tmp_path: Path) -> None:
    import hashlib

    store = LocalStore(tmp_path)
    store.put("a.json", b"hello")
    assert _etag(store, "a.json") == hashlib.sha256(b"hello").hexdigest()
    assert store.url == str(tmp_path)


def test_local_directory_in_place_of_a_key_is_unavailable(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("code/versions/1.json", b"x")
    calls: list[Callable[[], object]] = [lambda: store.get("code/versions"), lambda: store.exists("code/versions"),
                                         lambda: store.put("code/versions", b"x")]
    for call in calls:
        with pytest.raises(WfError) as caught:
            call()
        assert caught.value.code == STORE_UNAVAILABLE and str(tmp_path) in caught.value.hint


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_local_unreadable_key_is_unavailable(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a.json", b"x")
    (tmp_path / "a.json").chmod(0)
    with pytest.raises(WfError) as caught:
        store.get("a.json")
    assert caught.value.code == STORE_UNAVAILABLE


# -- S3 specifics -------------------------------------------------------------------


def test_server_honours_conditional_writes(s3_env: S3Env) -> None:
    """The raw protocol: a second create-if-absent is refused with 412 (a server ignoring it is useless)."""
    store = s3_env.open()
    client, bucket = store.client, store.bucket
    client.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=bucket, Key="k", Body=b"2", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"1"


def test_s3_keys_sit_under_the_prefix(s3_env: S3Env) -> None:
    store = s3_env.open()
    client, bucket = store.client, store.bucket
    for url, expected in [(f"s3://{bucket}", "a/b.json"), (f"s3://{bucket}/pre/fix/", "pre/fix/a/b.json")]:
        other = open_store(url, endpoint_url=s3_env.endpoint_url)
        other.put("a/b.json", b"x")
        client.head_object(Bucket=bucket, Key=expected)
        assert list(other.list("a/")) == ["a/b.json"]
        other.delete("a/b.json")


def test_s3_one_request_per_operation(s3_env: S3Env) -> None:
    store = s3_env.open()
    sent = count_requests(store)
    store.put_if_absent("k.json", b"1")
    store.put_if_match("k.json", b"2", _etag(store, "k.json"))
    store.exists("k.json")
    store.delete("k.json")
    assert len(sent) == 5


@pytest.mark.parametrize("s3_env", ["moto", "moto_server"], indirect=True)  # SeaweedFS checks signatures: see below
def test_missing_bucket_is_wf804_without_secrets(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    store = open_store("s3://wfctl-no-such-bucket/pre", endpoint_url=s3_env.endpoint_url)
    calls: list[Callable[[], object]] = [lambda: store.get("a.json"), lambda: store.put("a.json", b"x"),
                                         lambda: list(store.list("a/")), lambda: store.put_if_match("a.json", b"x", None)]
    for call in calls:
        with pytest.raises(WfError) as caught:
            call()
        error = caught.value
        text = f"{error.message}\n{error.hint}"
        assert error.code == STORE_UNAVAILABLE and "does not exist" in error.message, text
        assert "wfctl-no-such-bucket" in error.message and REGION in error.hint and "credentials: env" in error.hint
        assert (s3_env.endpoint_url or "AWS default") in error.hint
        assert SECRET not in text and KEY_ID not in text


def test_wrong_secret_is_wf804_without_secrets(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    seaweed: S3Server = request.getfixturevalue("seaweedfs")
    url = seaweed.new_bucket()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    store = open_store(url, endpoint_url=seaweed.endpoint_url)
    with pytest.raises(WfError) as caught:
        store.get("a.json")
    text = f"{caught.value.message}\n{caught.value.hint}"
    assert caught.value.code == STORE_UNAVAILABLE and "SignatureDoesNotMatch" in text
    assert seaweed.endpoint_url in text and "credentials: env" in text and SECRET not in text


def test_no_credentials_is_wf804(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    server: S3Server = request.getfixturevalue("moto_server")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = open_store(server.new_bucket(), endpoint_url=server.endpoint_url)
    with pytest.raises(WfError) as caught:
        store.get("a.json")
    assert caught.value.code == STORE_UNAVAILABLE and "none found" in caught.value.hint


@pytest.mark.usefixtures("fake_aws_env")
def test_unreachable_endpoint_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = open_store("s3://wfctl-bucket/pre", endpoint_url=endpoint)
    assert isinstance(store, S3Store) and store.client.meta.config.retries["total_max_attempts"] == 1
    started = time.monotonic()
    with pytest.raises(WfError) as caught:
        store.get("a.json")
    assert time.monotonic() - started < 5
    assert caught.value.code == STORE_UNAVAILABLE and "could not connect" in caught.value.message
    assert endpoint in caught.value.hint and REGION in caught.value.hint and "credentials: env" in caught.value.hint


@pytest.mark.usefixtures("fake_aws_env")
def test_s3_client_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store("s3://wfctl-bucket/pre", endpoint_url="http://127.0.0.1:9")
    assert isinstance(store, S3Store)
    config = store.client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert (config.connect_timeout, config.read_timeout) == (5, 30)
    assert config.s3 == {"addressing_style": "path"}
    assert store.describe() == "s3://wfctl-bucket/pre (endpoint http://127.0.0.1:9, region us-east-1)"
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:10")
    store = open_store("s3://wfctl-bucket")
    assert isinstance(store, S3Store)
    assert store.client.meta.region_name == "eu-west-3" and store.client.meta.config.s3 == {"addressing_style": "path"}
    assert store.describe() == "s3://wfctl-bucket (endpoint http://127.0.0.1:10, region eu-west-3)"


@pytest.mark.usefixtures("fake_aws_env")
def test_unknown_profile_is_wf804(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "wfctl-no-such-profile")
    with pytest.raises(WfError) as caught:
        open_store("s3://wfctl-bucket")
    assert caught.value.code == STORE_UNAVAILABLE and "wfctl-no-such-profile" in caught.value.message


# -- store URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(("url", "bucket", "prefix"), [
    ("s3://my-bucket", "my-bucket", ""), ("s3://my-bucket/", "my-bucket", ""),
    ("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b"), ("s3://abc/wfctl", "abc", "wfctl"),
])
@pytest.mark.usefixtures("fake_aws_env")
def test_open_store_s3(url: str, bucket: str, prefix: str) -> None:
    store = open_store(url)
    assert isinstance(store, S3Store) and (store.bucket, store.prefix) == (bucket, prefix)


@pytest.mark.parametrize(("url", "path"), [("file:///tmp/wf%20store", "/tmp/wf store"), ("/tmp/x", "/tmp/x"),
                                           ("rel/store", "rel/store"), (".wfctl/store", ".wfctl/store")])
def test_open_store_local(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, LocalStore) and store.url == path


@pytest.mark.parametrize("url", [
    "http://example.com/store", "gs://bucket/prefix", "S3://bucket", "s3://", "s3:///prefix", "s3://Bad_Bucket/p",
    "s3://ab", "s3://" + "a" * 64, "s3://-bucket", "s3://bucket-", "s3://my..bucket", "s3://192.168.1.1/p",
    "s3://bucket//p", "s3://bucket/a//b", "s3://bucket/a/../b", "s3://bucket/./b", "s3://bucket/a\\b",
    "s3://bucket/a\nb", "file://host/path", "file://", "file:///x?y=1", "", "a\0b",
])
@pytest.mark.usefixtures("fake_aws_env")
def test_open_store_rejects_bad_urls(url: str) -> None:
    with pytest.raises(WfError) as caught:
        open_store(url)
    assert caught.value.code == INVALID_CONFIG == "WF808" and repr(url) in caught.value.message
    assert "s3://BUCKET/PREFIX" in caught.value.hint and "file://" in caught.value.hint


@pytest.mark.parametrize("endpoint", ["127.0.0.1:9000", "ftp://host", "http://"])
@pytest.mark.usefixtures("fake_aws_env")
def test_open_store_rejects_bad_endpoints(endpoint: str) -> None:
    with pytest.raises(WfError) as caught:
        open_store("s3://bucket/p", endpoint_url=endpoint)
    assert caught.value.code == INVALID_CONFIG


# -- helpers ---------------------------------------------------------------------------


def _client(store: Store) -> Any:
    assert isinstance(store, S3Store)
    return store.client


def _reopen(store: Store) -> Store:
    """Another handle on the same store (its own client and connection pool)."""
    if isinstance(store, LocalStore):
        return LocalStore(store.root)
    assert isinstance(store, S3Store)
    return open_store(store.url, endpoint_url=store.endpoint_url)


def _data(store: Store, key: str) -> bytes:
    blob = store.get(key)
    assert blob is not None, key
    return blob.data


def _etag(store: Store, key: str) -> str:
    blob = store.get(key)
    assert blob is not None, key
    return blob.etag


def _exercise(store: Store) -> None:
    """Every kind of write, so every kind of file and folder gets created."""
    store.put("code/objects/a.json", b"a")
    store.put_if_absent("code/versions/1.json", b"v")
    store.put_if_match("code/current.json", b"p", None)
    store.put_if_match("code/current.json", b"q", _etag(store, "code/current.json"))
