"""WF500-WF503: a schedule must parse, name a real timezone and a sane date range."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wfctl import rules
from wfctl.diagnostics import Diagnostic
from wfctl.model import WorkflowView

MIN_INTERVAL = timedelta(minutes=5)
_PATH = ("spec", "schedule")


def check(view: WorkflowView) -> list[Diagnostic]:
    schedule = view.spec.get("schedule")
    if not isinstance(schedule, dict):
        return []
    out: list[Diagnostic] = []
    cron = schedule.get("cron")
    if isinstance(cron, str):
        out += _check_cron(view, cron)
    tz = schedule.get("timezone", "UTC")
    if isinstance(tz, str) and not valid_timezone(tz):
        file, pos = view.locate((*_PATH, "timezone"))
        out.append(rules.INVALID_TIMEZONE.at(file, pos, f"unknown timezone {tz!r}",
                                             "use an IANA name such as UTC, Europe/Berlin or Asia/Seoul"))
    out += _check_dates(view, schedule)
    return out


def _check_cron(view: WorkflowView, cron: str) -> list[Diagnostic]:
    file, pos = view.locate((*_PATH, "cron"))
    problem, gap = cron_facts(cron)
    if problem:
        return [rules.INVALID_CRON.at(file, pos, f"invalid cron {cron!r}: {problem}",
                                      "use 5 fields (minute hour day-of-month month day-of-week), e.g. \"0 2 * * *\", "
                                      "or a preset such as @daily or @hourly")]
    if gap is not None and gap < MIN_INTERVAL:
        return [rules.FREQUENT_SCHEDULE.at(file, pos, f"cron {cron!r} runs every {_minutes(gap)}",
                                           "schedule at most every 5 minutes (e.g. \"*/5 * * * *\"), or use a sensor")]
    return []


def _minutes(gap: timedelta) -> str:
    seconds = int(gap.total_seconds())
    return f"{seconds // 60} minute(s)" if seconds >= 60 else f"{seconds} second(s)"


PRESETS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


@cache
def cron_facts(cron: str) -> tuple[str | None, timedelta | None]:
    """(problem, shortest gap between runs); cached: repos reuse a few expressions."""
    from croniter import croniter  # imported lazily: costly, and only schedules need it

    text = cron.strip()
    if text.startswith("@"):
        if text not in PRESETS:
            return f"unknown preset (use one of {', '.join(PRESETS)})", None
    elif len(text.split()) != 5:
        return f"expected 5 fields, found {len(text.split())}", None
    try:
        it = croniter(text, datetime(2025, 1, 1))
        runs = [it.get_next(datetime) for _ in range(12)]
    except Exception as exc:  # croniter raises several unrelated types for bad input
        return str(exc) or type(exc).__name__, None
    return None, min(b - a for a, b in itertools.pairwise(runs))


@cache
def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder, an over-long name
        return False
    return True


def parse_date(value: str) -> date | datetime | None:
    try:
        return datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    except ValueError:
        return None


def _check_dates(view: WorkflowView, schedule: dict[str, Any]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    parsed: dict[str, date] = {}
    for key in ("start_date", "end_date"):
        value = schedule.get(key)
        if not isinstance(value, str):
            continue
        when = parse_date(value)
        if when is None:
            file, pos = view.locate((*_PATH, key))
            out.append(rules.DATE_ORDER.at(file, pos, f"{key} {value!r} is not a real date",
                                           "write an ISO date such as 2025-01-31"))
        else:
            parsed[key] = when.date() if isinstance(when, datetime) else when
    start, end = parsed.get("start_date"), parsed.get("end_date")
    if start and end and end < start:
        file, pos = view.locate((*_PATH, "end_date"))
        out.append(rules.DATE_ORDER.at(file, pos, f"end_date {end} is before start_date {start}",
                                       "move end_date after start_date, or remove it"))
    return out
