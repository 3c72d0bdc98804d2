"""Next run times of a resolved schedule, in the workflow's timezone (croniter)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wfctl.rules.schedule import parse_date


def next_runs(schedule: dict[str, Any] | None, count: int = 3, after: datetime | None = None) -> list[str]:
    """ISO times at which the next ``count`` runs start, as Airflow schedules them.

    The rendered DAGs use data intervals: the run for the interval that starts at
    one cron tick starts at the next tick. So the first run starts one interval
    after ``start_date``, and the last covers the interval starting at or before
    ``end_date``. A workflow without a schedule has no runs.
    """
    if not schedule:
        return []
    from croniter import croniter

    tz = ZoneInfo(schedule.get("timezone") or "UTC")
    now = (after or datetime.now(UTC)).astimezone(tz)
    start = _bound(schedule.get("start_date"), tz, end=False)
    end = _bound(schedule.get("end_date"), tz, end=True)
    cron = _CRON_ALIASES.get(schedule["cron"], schedule["cron"])
    interval_start: datetime = croniter(cron, now).get_prev(datetime)  # the interval that is open now
    if start and interval_start < start:
        interval_start = croniter(cron, start - timedelta(microseconds=1)).get_next(datetime)
    it = croniter(cron, interval_start)
    runs: list[str] = []
    while len(runs) < count and not (end and interval_start > end):
        run_at: datetime = it.get_next(datetime)
        runs.append(run_at.isoformat())
        interval_start = run_at
    return runs


_CRON_ALIASES = {"@annually": "@yearly", "@midnight": "@daily"}


def to_utc(iso: str) -> str:
    """A local ISO time as UTC with ``Z`` (JSON outputs use UTC throughout)."""
    return datetime.fromisoformat(iso).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _bound(value: str | None, tz: ZoneInfo, end: bool) -> datetime | None:
    parsed = parse_date(value) if isinstance(value, str) else None
    if parsed is None:
        return None
    if isinstance(parsed, datetime):
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    return datetime.combine(parsed, time.max if end else time.min, tzinfo=tz)
