"""Run operations in Airflow for live workflows: run, backfill, stop, runs, and
pause propagation. The store says what is live; Airflow's REST API does it.

Every run carries ``{source, version, sha256}`` of the definition it runs, so
a run can always be traced back to the exact deployed content.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from wfctl.airflow_client import (
    AirflowClient,
    AirflowSettings,
    check_params,
    default_logical_date,
    describe_failure,
    run_conf,
    run_summary,
)
from wfctl.config import Config
from wfctl.errors import USAGE, WfError
from wfctl.manual import effective_definition
from wfctl.names import check_name
from wfctl.overrides import read_live
from wfctl.store.base import Store


def _client(config: Config) -> AirflowClient:
    return AirflowClient(AirflowSettings.from_config(config.values))


def trigger(config: Config, store: Store, name: str, params: dict[str, str], conf: dict[str, Any],
            logical_date: str | None = None) -> dict[str, Any]:
    """Check ``params`` against the live definition, then start a run that records it."""
    live = effective_definition(store, check_name(name))
    checked = check_params(live["definition"]["spec"].get("params") or {}, params)
    version = _changed_version(store, name, live)
    body = run_conf(live["source"], version, live["sha256"], checked, conf)
    return run_summary(_client(config).trigger(name, body, logical_date or default_logical_date()))


def _changed_version(store: Store, name: str, live: dict[str, Any]) -> int:
    """The version in which the live content was published (what the DAG file shows)."""
    row = read_live(store).effective()[name]
    return row.changed_version or live["version"]


def backfill(config: Config, store: Store, name: str, start: str, end: str, *, dry_run: bool,
             max_active_runs: int | None) -> dict[str, Any]:
    """Dates are whole days in the workflow's timezone: ``--to 2025-02-03`` includes
    the runs whose intervals start on February 3rd."""
    live = effective_definition(store, check_name(name))
    schedule = live["definition"]["spec"].get("schedule")
    if schedule is None:
        raise WfError(USAGE, f"{name!r} has no schedule, so there are no dates to backfill",
                      f"trigger single runs with `wfctl run {name} --logical-date ...`")
    tz = ZoneInfo(schedule["timezone"])
    return _client(config).backfill(name, _day_bound(start, tz, end=False), _day_bound(end, tz, end=True),
                                    max_active_runs=max_active_runs, dry_run=dry_run)


def _day_bound(value: str, tz: ZoneInfo, end: bool) -> str:
    """A date-only bound as the start (or last second) of that day in ``tz``; a
    date-time passes through."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    return datetime.combine(day, time(23, 59, 59) if end else time.min, tzinfo=tz).isoformat()


def stop(config: Config, name: str, run_id: str) -> dict[str, Any]:
    return _client(config).stop(check_name(name), run_id)


def runs(config: Config, name: str, run_id: str | None = None, limit: int = 25) -> dict[str, Any]:
    """Run history (with the wfctl provenance of each run), or one run with its task states."""
    client = _client(config)
    check_name(name)
    if run_id is None:
        return {"name": name, "runs": [run_summary(r) for r in client.list_runs(name, limit)]}
    run = run_summary(client.get_run(name, run_id))
    return {"name": name, "run": run, "tasks": client.task_instances(name, run_id)}


def propagate_pause(config: Config, name: str, paused: bool) -> bool:
    """Mirror a pause into Airflow when it is configured; the store change stands
    either way, and the error says so. Returns whether Airflow was updated."""
    settings = AirflowSettings.optional(config.values)
    if settings is None:
        return False
    try:
        AirflowClient(settings).set_paused(name, paused)
    except WfError as exc:
        raise describe_failure(f"{'pause' if paused else 'unpause'} of {name!r}", exc) from None
    return True


