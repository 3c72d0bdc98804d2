"""A real Apache Airflow 3.3.2 server for the operations tests, on 127.0.0.1.

Use with ``pytest_plugins = ("airflow_server",)`` in a test module; fixture
``airflow_server`` (session-scoped) yields an :class:`AirflowServer`: its ``url``,
``username``/``password``, ``dags`` (the DAG folder: drop rendered files in with
:meth:`AirflowServer.add_dag`) and ``client()`` (a :class:`wfctl.airflow_client.AirflowClient`).

What runs, each from the Airflow venv of ``tests/airflow_env.py`` in its own session
(process group), logging to ``<home>/logs/<name>.log``:

* ``airflow db migrate`` into a sqlite database in a temporary ``AIRFLOW_HOME``;
* ``airflow api-server -H 127.0.0.1 -p PORT`` (one worker);
* ``airflow scheduler --skip-serve-logs`` (LocalExecutor: tasks run as its subprocesses
  and reach the api-server through ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL``);
* ``airflow dag-processor`` (refresh interval and minimum file process interval of 1 s,
  so a new file is parsed within seconds).

Auth: the simple auth manager with an ADMIN user (``admin``) and a VIEWER (``viewer``)
whose random passwords are written to the passwords file beforehand; fixed JWT secret and API secret key (every process must
agree on them). Examples are off. Ready = ``GET /api/v2/monitor/health`` answers with a
healthy metadatabase (bounded by ``START_TIMEOUT``); at teardown each process group
gets SIGTERM, then SIGKILL. Without the Airflow venv the fixture skips, except under
``CI=true`` where it fails (``airflow_env.airflow_python``).

Run ``python tests/airflow_server.py`` to start one by hand (Ctrl-C stops it).
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from airflow_env import airflow_env, airflow_python

from wfctl.airflow_client import AirflowClient, AirflowSettings
from wfctl.errors import WfError

HOST = "127.0.0.1"  # never 0.0.0.0: test servers must not be reachable from the network
USERNAME = "admin"
VIEWER = "viewer"  # a second user with the VIEWER role, for the 403 tests
START_TIMEOUT = 90.0
STOP_GRACE = 5.0


@dataclass
class AirflowServer:
    """A running Airflow: where it answers, who may log in, and where its DAG files go."""

    url: str
    home: Path
    dags: Path
    username: str
    password: str = field(repr=False)
    viewer_password: str = field(default="", repr=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    def settings(self, **overrides: Any) -> AirflowSettings:
        values = {"url": self.url, "username": self.username, "password": self.password, **overrides}
        return AirflowSettings(values["url"], values["username"], values["password"])

    def client(self, timeout: float = 30.0, **overrides: Any) -> AirflowClient:
        return AirflowClient(self.settings(**overrides), timeout=timeout)

    def add_dag(self, name: str, source: str) -> Path:
        """Write a DAG file atomically (the dag-processor never sees half a file)."""
        target = self.dags / name
        staging = self.home / "staging"
        staging.mkdir(exist_ok=True)
        temp = staging / name
        temp.write_text(source, encoding="utf-8")
        os.replace(temp, target)
        return target

    def log(self, name: str, lines: int = 60) -> str:
        path = self.home / "logs" / f"{name}.log"
        if not path.exists():
            return f"({path} does not exist)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def logs(self, lines: int = 40) -> str:
        """The tails of every process's log (for assertion messages)."""
        return "\n".join(f"--- {name} ---\n{self.log(name, lines)}" for name in ("api-server", "scheduler",
                                                                                   "dag-processor"))

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"airflow {name} exited with {process.returncode}:\n{self.log(name)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


SQLITE_SETTINGS = """\
# Written by wfctl's tests: three Airflow processes share one SQLite file, and under
# load a writer can wait longer than sqlite3's default 5 s for the lock (Airflow then
# answers 500 or 503 "database is locked"). The database is in WAL mode, so readers
# never block the writer; a writer waits up to 15 s, well inside wfctl's 30 s timeout
# (a one-minute wait once stalled every process for a minute).
SYNC = {"timeout": 15}
ASYNC = {"timeout": 15}
"""


def server_env(python: Path, home: Path, dags: Path, port: int, passwords: Path) -> dict[str, str]:
    """The environment every Airflow process of the server shares."""
    (home / "wfctl_sqlite.py").write_text(SQLITE_SETTINGS)
    env = airflow_env(home, dags, {
        "PYTHONPATH": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "wfctl_sqlite.SYNC",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "wfctl_sqlite.ASYNC",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin,{VIEWER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{port}/execution/",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://{HOST}:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": "wfctl-tests-api-secret-key",
        "AIRFLOW__API_AUTH__JWT_SECRET": "wfctl-tests-jwt-secret-0123456789abcdef",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "1",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "1",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD": "3600",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "task-logs"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return env


@contextlib.contextmanager
def start_airflow(python: Path, base: Path, timeout: float = START_TIMEOUT) -> Iterator[AirflowServer]:
    """Migrate, start the three processes, wait until healthy; stop them all at the end."""
    home = base / "home"
    dags = base / "dags"
    (home / "logs").mkdir(parents=True, exist_ok=True)
    dags.mkdir(parents=True, exist_ok=True)
    password, viewer_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USERNAME: password, VIEWER: viewer_password}))
    port = free_port()
    env = server_env(python, home, dags, port, passwords)
    server = AirflowServer(f"http://{HOST}:{port}", home, dags, USERNAME, password, viewer_password)
    migrate = subprocess.run([str(python), "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                             env=env, cwd=str(home), timeout=300, check=False)
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed ({migrate.returncode}):\n{migrate.stdout[-3000:]}\n"
                           f"{migrate.stderr[-3000:]}")
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:  # WAL: readers never block the writer
        db.execute("PRAGMA journal_mode=WAL")
    commands = {
        "api-server": ["api-server", "-H", HOST, "-p", str(port)],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
    }
    try:
        for name, args in commands.items():
            with (home / "logs" / f"{name}.log").open("wb") as out:
                server.processes[name] = subprocess.Popen(
                    [str(python), "-m", "airflow", *args], stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, cwd=str(home), env=env, start_new_session=True)
        wait_healthy(server, timeout)
        yield server
    finally:
        stop(server)


def wait_healthy(server: AirflowServer, timeout: float) -> None:
    """Until the api-server answers /api/v2/monitor/health with a healthy metadatabase and a token works."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        server.check_alive()
        try:
            with urllib.request.urlopen(f"{server.url}/api/v2/monitor/health", timeout=5) as response:
                health = json.loads(response.read())
            if health.get("metadatabase", {}).get("status") == "healthy":
                server.client(timeout=10).version()
                return
            last = json.dumps(health)
        except (OSError, urllib.error.URLError, ValueError, WfError) as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise RuntimeError(f"Airflow not ready after {timeout:.0f}s ({last}):\n{server.logs()}")
        time.sleep(0.5)


def stop(server: AirflowServer, grace: float = STOP_GRACE) -> None:
    """SIGTERM every process group, then SIGKILL what is left (tasks run in those groups too)."""
    running = {name: p for name, p in server.processes.items() if p.poll() is None}
    for process in running.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in server.processes.values():  # the leaders may be gone while children linger
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    python = airflow_python()  # skips (or fails under CI=true) without the Airflow venv
    with start_airflow(python, tmp_path_factory.mktemp("airflow-server")) as server:
        yield server


# --- waiting --------------------------------------------------------------------------------


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5,
         server: AirflowServer | None = None) -> Any:
    """Call ``check`` until it returns something truthy; fail with ``what`` (and the logs) after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if server is not None:
            server.check_alive()
        if time.monotonic() > deadline:
            logs = f"\n{server.logs()}" if server is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){logs}")
        time.sleep(interval)


def wait_for_dag(client: AirflowClient, dag_id: str, timeout: float = 60.0,
                 server: AirflowServer | None = None) -> dict[str, Any]:
    """Until Airflow has parsed the DAG (GET /dags/{id} answers, without import errors)."""

    def parsed() -> dict[str, Any] | None:
        try:
            dag = client.get_dag(dag_id)
        except WfError as exc:
            if "HTTP 404" in exc.message:
                return None
            raise
        if dag.get("has_import_errors"):
            raise AssertionError(f"DAG {dag_id} has import errors: {dag}")
        return dag

    result: dict[str, Any] = poll(parsed, timeout, f"DAG {dag_id} to be parsed", server=server)
    return result


def wait_for_run_state(client: AirflowClient, dag_id: str, run_id: str, states: str | tuple[str, ...],
                       timeout: float = 90.0, server: AirflowServer | None = None) -> dict[str, Any]:
    """Until the run is in one of ``states``; fails early when it ends in another final state."""
    wanted = (states,) if isinstance(states, str) else states

    def reached() -> dict[str, Any] | None:
        run = client.get_run(dag_id, run_id)
        if run["state"] in wanted:
            return run
        if run["state"] in ("success", "failed"):
            tasks = client.task_instances(dag_id, run_id)
            logs = f"\n{server.logs()}" if server is not None else ""
            raise AssertionError(f"run {run_id} of {dag_id} ended {run['state']}, wanted {wanted}: {tasks}{logs}")
        return None

    result: dict[str, Any] = poll(reached, timeout, f"run {run_id} of {dag_id} to be {'/'.join(wanted)}",
                                  server=server)
    return result


if __name__ == "__main__":  # start one by hand: python tests/airflow_server.py [FOLDER]
    import tempfile

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="wfctl-airflow-"))
    started = time.monotonic()
    with start_airflow(airflow_python(), folder) as running:
        print(f"Airflow up in {time.monotonic() - started:.1f}s at {running.url} "
              f"(user {running.username}, password {running.password}); DAGs: {running.dags}; home: {running.home}",
              flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                running.check_alive()
                time.sleep(1)
