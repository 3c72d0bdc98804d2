"""Next run times of a resolved schedule, in the workflow's timezone (croniter)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from wfctl.rules.schedule import parse_date


def next_runs(schedule: dict[str, Any] | None, count: int = 3, after: datetime | None = None) -> list[str]:
    """ISO times of the next ``count`` runs, honouring start and end dates.

    A run at the schedule's start boundary counts; none are returned past
    ``end_date`` or for a workflow without a schedule.
    """
    if not schedule:
        return []
    from croniter import croniter

    tz = ZoneInfo(schedule.get("timezone") or "UTC")
    now = (after or datetime.now(UTC)).astimezone(tz)
    start = _bound(schedule.get("start_date"), tz, end=False)
    end = _bound(schedule.get("end_date"), tz, end=True)
    base = max(now, start) if start else now
    it = croniter(schedule["cron"], base)
    runs: list[str] = []
    while len(runs) < count:
        when: datetime = it.get_next(datetime)
        if end and when > end:
            break
        runs.append(when.isoformat())
    return runs


def _bound(value: str | None, tz: ZoneInfo, end: bool) -> datetime | None:
    parsed = parse_date(value) if isinstance(value, str) else None
    if parsed is None:
        return None
    if isinstance(parsed, datetime):
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    return datetime.combine(parsed, time.max if end else time.min, tzinfo=tz)
