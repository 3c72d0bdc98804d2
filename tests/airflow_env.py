"""A real Apache Airflow for the tests, in its own virtual environment.

wfctl never depends on Airflow: the tests that need one run its interpreter in a
subprocess. Where it comes from, first match wins:

1. ``WFCTL_AIRFLOW_PYTHON``: path to a python that has ``apache-airflow`` installed;
2. ``<repo>/.airflow-venv/bin/python``, built by ``.ci/airflow-venv``
   (``apache-airflow==3.3.2`` from ``.ci/airflow-requirements.txt``).

Without either the tests skip, except under ``CI=true``, where they fail: CI must
never pass by not running them.

Helpers:

* ``airflow_python()`` / fixture ``airflow_python_path``: that interpreter (checked once:
  it imports airflow at the pinned version);
* ``airflow_env(home, dags)``: the environment for a subprocess of it (own
  ``AIRFLOW_HOME``, DAG folder, sqlite database, no examples, no wfctl on the path);
* ``run_airflow(python, script, *args, env=..., cwd=...)``: run a Python script there;
* fixture ``airflow_home``: a session's ``AIRFLOW_HOME`` with a migrated sqlite
  database (``airflow db migrate``), for ``dag.test()``.

Use the fixtures with ``pytest_plugins = ("airflow_env",)`` in a test module.
PYTEST_DONT_REWRITE (plain helpers; test modules import them before pytest loads the plugin)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_VERSION = "3.3.2"
ENV_VAR = "WFCTL_AIRFLOW_PYTHON"
VENV_PYTHON = REPO_ROOT / ".airflow-venv" / "bin" / "python"
BUILD_HINT = "build it with `bash .ci/airflow-venv` (or point WFCTL_AIRFLOW_PYTHON at a python with apache-airflow)"

_checked: dict[Path, str] = {}


def _unavailable(reason: str) -> None:
    """Skip on a laptop; fail under CI, where Airflow must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the Airflow tests must run); {BUILD_HINT}", pytrace=False)
    pytest.skip(f"{reason}; {BUILD_HINT}")


def find_airflow_python() -> Path | None:
    """The configured Airflow interpreter, or None when there is none."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured)
    return VENV_PYTHON if VENV_PYTHON.exists() else None


def airflow_python() -> Path:
    """The Airflow interpreter, checked to import airflow at the pinned version (skip/fail otherwise)."""
    python = find_airflow_python()
    if python is None:
        _unavailable(f"no Airflow interpreter: {ENV_VAR} is unset and {VENV_PYTHON} does not exist")
        raise AssertionError("unreachable")
    if python not in _checked:
        try:
            proc = subprocess.run([str(python), "-c", "import airflow; print(airflow.__version__)"],
                                  capture_output=True, text=True, timeout=120, env=_base_env(), check=False)
        except OSError as exc:
            _unavailable(f"cannot run {python}: {exc}")
            raise AssertionError("unreachable") from exc
        if proc.returncode != 0:
            _unavailable(f"{python} cannot import airflow: {proc.stderr.strip()[-500:]}")
        _checked[python] = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "?"
    if _checked[python] != AIRFLOW_VERSION:
        _unavailable(f"{python} has apache-airflow {_checked[python]}, the tests pin {AIRFLOW_VERSION}")
    return python


def _base_env() -> dict[str, str]:
    """The caller's environment without anything that would put wfctl or another venv on the path."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AIRFLOW") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def airflow_env(home: Path, dags: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for an Airflow subprocess: its own home, DAG folder and sqlite database."""
    env = _base_env()
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    })
    if dags is not None:
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    env.update(extra or {})
    return env


def run_airflow(python: Path, script: str, *args: str, env: Mapping[str, str], cwd: Path,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (Python source) with the Airflow interpreter; ``cwd`` should not be the repo."""
    return subprocess.run([str(python), "-c", script, *args], capture_output=True, text=True,
                          env=dict(env), cwd=str(cwd), timeout=timeout, check=False)


def migrate(python: Path, home: Path) -> None:
    """``airflow db migrate`` into ``home`` (a sqlite database)."""
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([str(python), "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                          env=airflow_env(home), cwd=str(home), timeout=300, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"airflow db migrate failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


@pytest.fixture(scope="session")
def airflow_python_path() -> Path:
    return airflow_python()


@pytest.fixture(scope="session")
def airflow_home(airflow_python_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AIRFLOW_HOME with a migrated sqlite database, shared by the session's dag.test() runs."""
    home = tmp_path_factory.mktemp("airflow-home")
    migrate(airflow_python_path, home)
    return home


if __name__ == "__main__":  # `python tests/airflow_env.py`: which Airflow the tests would use
    found = find_airflow_python()
    print(found or f"none ({BUILD_HINT})")
    sys.exit(0 if found else 1)
