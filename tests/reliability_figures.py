"""Figures for ``docs/reliability.md``: what the reliability suite exercised, and whether it held.

Tests count what they do (rounds raced, crash points injected, faults injected, fuzz
cases, limits...) and the counts are appended as JSON lines to
``.reliability/figures.jsonl`` in the repo root (or the file named by
``WFCTL_FIGURES``). ``benchmarks/reliability_report.py`` turns the newest session's
lines into the tables of ``docs/reliability.md``: every number there comes from a
test run, none is written by hand.

Two ways to record:

* ``record(category, name, count, result, unit=..., total=True, **detail)`` appends one line now;
* the ``figures`` fixture (load this module with ``pytest_plugins = ("reliability_figures",)``)
  gives a :class:`Tally`; ``figures.add(category, name, count, unit=...)`` accumulates
  during the test and is written when the test ends, with the test's real outcome
  (``passed`` or ``failed``): a test that fails half-way still reports what it did.

``total=False`` marks a breakdown of another figure (e.g. how the losers of the races
lost): the report lists it but leaves it out of the category's totals. ``failed=N`` makes a
figure keep its own score: its result is ``failed`` when any of its cases failed and
``passed`` otherwise, whatever other figures of the same test did (without it, a figure
takes the outcome of its test).

Lines: ``{"kind": "figure", "session", "at", "test", "category", "name", "count", "unit",
"total", "failures", "result", "detail"}``; plus one ``{"kind": "test", "test", "result", "seconds"}``
per test of a module that loads the plugin, and one ``{"kind": "session", ...}`` with the
versions and git commit the session ran. A session is one pytest run (all xdist workers
of a run share it).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV = "WFCTL_FIGURES"
DEFAULT = REPO_ROOT / ".reliability" / "figures.jsonl"
_SESSION = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}"
_LOCK = threading.Lock()
_STARTED: list[bool] = []


def figures_file() -> Path:
    return Path(os.environ.get(ENV) or DEFAULT)


def _append(entry: dict[str, Any]) -> None:
    line = json.dumps({"session": _SESSION, "at": datetime.now(UTC).isoformat(timespec="seconds"), **entry},
                      sort_keys=True, ensure_ascii=False, default=str)
    path = figures_file()
    with _LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))  # one write per line: O_APPEND keeps lines whole
        finally:
            os.close(fd)


def _session_line() -> None:
    """Once per session: what ran (wfctl version, git commit of the repo under test, Python, CPUs)."""
    with _LOCK:
        if _STARTED:
            return
        _STARTED.append(True)
    try:
        import wfctl

        version = wfctl.__version__
    except Exception:  # the figures must not fail a test
        version = "unknown"
    _append({"kind": "session", "wfctl": version, "commit": _git("rev-parse", "HEAD"),
             "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
             "python": platform.python_version(), "platform": platform.platform(terse=True),
             "cpus": os.cpu_count(), "argv": " ".join(sys.argv[1:])})


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def record(category: str, name: str, count: int, result: str, *, unit: str = "", total: bool = True, test: str = "",
           failures: int | None = None, **detail: Any) -> None:
    """Append one figure now. ``result`` is ``passed``/``failed`` (or any short word); ``failures``:
    how many of its ``count`` cases failed, when the figure keeps its own score."""
    _session_line()
    _append({"kind": "figure", "test": test, "category": category, "name": name, "count": int(count), "unit": unit,
             "total": total, "failures": failures, "result": result, "detail": detail})


class Tally:
    """The figures of one test, written with its outcome when it ends (thread-safe)."""

    def __init__(self, test: str) -> None:
        self.test = test
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def add(self, category: str, name: str, count: int = 1, *, unit: str = "", total: bool = True,
            failed: int | None = None, **detail: Any) -> None:
        """Add ``count`` cases to a figure (created at 0), ``failed`` of which failed (given: the figure
        keeps its own score); numeric ``detail`` values add up, others are replaced."""
        with self._lock:
            row = self._rows.setdefault((category, name), {"count": 0, "unit": unit, "total": total, "detail": {},
                                                           "failures": None})
            row["count"] += count
            if failed is not None:
                row["failures"] = (row["failures"] or 0) + int(failed)
            row["unit"] = unit or row["unit"]
            for key, value in detail.items():
                old = row["detail"].get(key)
                numbers = (int, float)
                if isinstance(value, numbers) and not isinstance(value, bool) and isinstance(old, numbers):
                    row["detail"][key] = old + value
                else:
                    row["detail"][key] = value

    def count(self, category: str, name: str) -> int:
        with self._lock:
            return int(self._rows.get((category, name), {"count": 0})["count"])

    def flush(self, result: str) -> None:
        with self._lock:
            rows, self._rows = self._rows, {}
        for (category, name), row in rows.items():
            own = row["failures"]
            score = result if own is None or result not in ("passed", "failed") else "failed" if own else "passed"
            record(category, name, row["count"], score, unit=row["unit"], total=row["total"], test=self.test,
                   failures=own, **row["detail"])


# -- pytest plugin: the ``figures`` fixture and one line per test ----------------------------------

_OUTCOME = pytest.StashKey[str]()
_SECONDS = pytest.StashKey[float]()


def _ours(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    return __name__ in tuple(getattr(module, "pytest_plugins", ()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not _ours(item):
        return
    item.stash[_SECONDS] = item.stash.get(_SECONDS, 0.0) + report.duration
    first = item.stash.get(_OUTCOME, "passed") == "passed"  # a failed teardown does not hide a failed call
    if (report.when == "call" or not report.passed) and first:
        item.stash[_OUTCOME] = "failed" if report.failed else report.outcome
    if report.when == "teardown":
        _session_line()
        _append({"kind": "test", "test": item.nodeid, "result": item.stash.get(_OUTCOME, "passed"),
                 "seconds": round(item.stash.get(_SECONDS, 0.0), 2)})


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Tally]:
    tally = Tally(request.node.nodeid)
    yield tally
    tally.flush(request.node.stash.get(_OUTCOME, "failed"))
