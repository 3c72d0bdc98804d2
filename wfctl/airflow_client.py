"""Talk to a running Apache Airflow 3 through its stable REST API (``/api/v2``).

Only the standard library (``urllib.request`` + ``json``): wfctl never imports
Airflow and adds no HTTP dependency. Every call returns plain JSON data (dicts and
lists) that the CLI can print as a table or as JSON.

Authentication: a JWT from ``POST {url}/auth/token`` with ``{"username", "password"}``
(the simple, FAB and Keycloak auth managers all answer there), fetched lazily on the
first call and sent as ``Authorization: Bearer``; a token that expires mid-session is
fetched again once. Without credentials the client asks ``GET {url}/auth/token``,
which only a deployment with ``[core] simple_auth_manager_all_admins`` answers.

Errors: every failure is a :class:`~wfctl.errors.WfError` with code ``WF809``
(:data:`wfctl.errors.AIRFLOW`) naming the method and the URL and carrying a hint for
the usual causes: unreachable, 401/403 (credentials), 404 (the DAG is not loaded:
the dag-processor has not parsed the file, or ``effective/dags/`` is not synced), 409
(a run id that exists, a backfill already running), 400/422 (Airflow's ``detail``).
Busy answers: HTTP 503 and 429 mean "not processed, come back later" (Airflow answers
503 while its metadata database is locked, common on SQLite), so every call, a POST
included, is sent again up to :data:`RETRIES` times with exponential backoff, honouring
a short ``Retry-After``. Nothing else is retried: a 500 or a lost connection may have
been applied, and sending a trigger twice could start two runs.
Messages never contain the password or the token. A command whose store side already
succeeded (pause/unpause) wraps the error with :func:`describe_failure`.

Run parameters: :func:`check_params` turns ``--param K=V`` strings into the types the
workflow's ``params`` declare and validates them (WF813, exit 2, before anything is
sent); :func:`run_conf` builds the conf of a run, which always carries the
``{source, version, sha256}`` of the definition it ran (``conf["wfctl"]``). Airflow
takes a run's param values from the conf keys of the same name
(``[core] dag_run_conf_overrides_params``, on by default).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wfctl.config import redact_url
from wfctl.errors import AIRFLOW, USAGE, WfError

API = "/api/v2"
DEFAULT_TIMEOUT = 30.0
PAGE_LIMIT = 100  # Airflow's default [api] maximum_page_limit
REPROCESS_BEHAVIORS = ("none", "failed", "completed")
TERMINAL_RUN_STATES = ("success", "failed")
CREDENTIALS_HINT = ("check WFCTL_AIRFLOW_USERNAME and WFCTL_AIRFLOW_PASSWORD (or airflow.username in wfctl.yaml; "
                    "the password only in the environment)")
URL_HINT = "check WFCTL_AIRFLOW_URL (or airflow.url in wfctl.yaml) and that Airflow's api-server is running"
NOT_LOADED_HINT = ("Airflow has not loaded this DAG: the dag-processor may not have parsed its file yet (wait a "
                   "few seconds), or the file is not in Airflow's DAG folder: check that `effective/dags/` is "
                   "synced to it, and look for import errors in Airflow (`airflow dags list-import-errors`)")
_RUN_KEYS = ("dag_id", "run_id", "state", "run_type", "logical_date", "run_after", "data_interval_start",
             "data_interval_end", "queued_at", "start_date", "end_date", "duration", "triggered_by",
             "triggering_user_name", "note", "conf")
_TASK_KEYS = ("task_id", "map_index", "state", "try_number", "max_tries", "operator", "queued_when", "start_date",
              "end_date", "duration", "hostname")
_PARAM_META = ("default", "description")
TRIGGER_INVALID_HINT = ("fix the value Airflow names: a logical date is ISO 8601 with a timezone "
                        "(2025-01-31T00:00:00Z); params are checked against the DAG Airflow has loaded, which may be "
                        "older than the definition (check the `effective/dags/` sync)")
BACKFILL_INVALID_HINT = ("give --from/--to as ISO dates or date-times (from <= to, not both in the future); "
                         "only a workflow with a schedule can be backfilled")
_MAX_DETAIL = 600
BUSY_STATUSES = frozenset({429, 503})  # the server did not process the request: safe to send again
RETRIES = 5
BACKOFF = 0.5  # seconds before the first retry; doubles each time (0.5 + 1 + 2 + 4 + 8 = 15.5 s at most)
MAX_RETRY_AFTER = 30.0


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AirflowSettings:
    """Where Airflow is and whom wfctl logs in as; the password never shows in ``repr``."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _normalise_url(self.url))

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> AirflowSettings:
        """From wfctl's merged configuration (``airflow_url``, ``airflow_username``, ``airflow_password``).

        Raises WF809 when no URL is configured; use :meth:`optional` where Airflow is optional.
        """
        settings = cls.optional(values)
        if settings is None:
            raise WfError(AIRFLOW, "Airflow is not configured: no URL",
                          "set WFCTL_AIRFLOW_URL (or `airflow: {url: ...}` in wfctl.yaml), "
                          "plus WFCTL_AIRFLOW_USERNAME and WFCTL_AIRFLOW_PASSWORD")
        return settings

    @classmethod
    def optional(cls, values: Mapping[str, Any]) -> AirflowSettings | None:
        """The settings, or None when no Airflow URL is configured (pause/unpause then touch the store only)."""
        url = values.get("airflow_url")
        if url is None or (isinstance(url, str) and not url.strip()):
            return None
        username = values.get("airflow_username")
        password = values.get("airflow_password")
        return cls(str(url), None if username in (None, "") else str(username),
                   None if password in (None, "") else str(password))


def _normalise_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash; credentials in the URL are refused."""
    text = url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WfError(AIRFLOW, f"the Airflow URL {redact_url(text)!r} is not an http(s) URL",
                      "set WFCTL_AIRFLOW_URL (or airflow.url in wfctl.yaml) to e.g. http://localhost:8080")
    if parts.username or parts.password:
        raise WfError(AIRFLOW, f"the Airflow URL {redact_url(text)!r} contains credentials",
                      "remove them from the URL; set WFCTL_AIRFLOW_USERNAME and WFCTL_AIRFLOW_PASSWORD instead")
    if parts.query or parts.fragment:
        raise WfError(AIRFLOW, f"the Airflow URL {text!r} has a query or fragment",
                      "give the api-server's base URL only, e.g. http://localhost:8080")
    return text


# --- the client -----------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is reported, not followed: urllib would turn a POST into a body-less GET."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


class AirflowClient:
    """The operations wfctl needs, each one or a few REST calls."""

    def __init__(self, settings: AirflowSettings, timeout: float = DEFAULT_TIMEOUT, retries: int = RETRIES,
                 backoff: float = BACKOFF) -> None:
        self.settings = settings
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._token: str | None = None
        self._opener = urllib.request.build_opener(_NoRedirect())

    def __repr__(self) -> str:
        return f"AirflowClient({self.settings.url!r}, user={self.settings.username!r})"

    # -- runs ------------------------------------------------------------------------------

    def trigger(self, dag_id: str, conf: Mapping[str, Any], logical_date: str | None = None,
                run_id: str | None = None) -> dict[str, Any]:
        """Start a manual run. ``logical_date`` is always sent (null: a run with no logical date,
        whose tasks cannot use ``{{ ds }}`` and friends)."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": dict(conf)}
        if run_id is not None:
            body["dag_run_id"] = run_id
        raw = self._call("POST", f"/dags/{_q(dag_id)}/dagRuns", body, dag_id=dag_id,
                         conflict_hint="a run with this run id (or logical date) already exists: give another "
                                       "run id or logical date, or leave them out",
                         invalid_hint=TRIGGER_INVALID_HINT)
        return run_summary(raw)

    def list_runs(self, dag_id: str, limit: int = 25) -> list[dict[str, Any]]:
        """The latest ``limit`` runs, newest first (by ``run_after``, which every run has)."""
        limit = max(1, int(limit))
        runs: list[dict[str, Any]] = []
        while len(runs) < limit:
            page = self._call("GET", f"/dags/{_q(dag_id)}/dagRuns",
                              query={"limit": min(PAGE_LIMIT, limit - len(runs)), "offset": len(runs),
                                     "order_by": ["-run_after", "-id"]}, dag_id=dag_id)
            batch = page.get("dag_runs") or []
            runs.extend(run_summary(r) for r in batch)
            if not batch or len(runs) >= int(page.get("total_entries") or 0):
                break
        return runs[:limit]

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return run_summary(self._call("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", dag_id=dag_id, run_id=run_id))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances (all pages), ordered by task id and map index."""
        tasks: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances",
                              query={"limit": PAGE_LIMIT, "offset": len(tasks)}, dag_id=dag_id, run_id=run_id)
            batch = page.get("task_instances") or []
            tasks.extend({k: ti.get(k) for k in _TASK_KEYS} for ti in batch)
            if not batch or len(tasks) >= int(page.get("total_entries") or 0):
                break
        return sorted(tasks, key=lambda t: (str(t["task_id"]), -1 if t.get("map_index") is None else t["map_index"]))

    def stop(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Mark an unfinished run failed (its running tasks are stopped); a finished run is left as it is.

        Returns the run with ``stopped``: whether this call changed it.
        """
        current = self.get_run(dag_id, run_id)
        if current.get("state") in TERMINAL_RUN_STATES:
            return {**current, "stopped": False}
        raw = self._call("PATCH", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", {"state": "failed"},
                         query={"update_mask": "state"}, dag_id=dag_id, run_id=run_id)
        return {**run_summary(raw), "stopped": True}

    def backfill(self, dag_id: str, from_date: str, to_date: str, max_active_runs: int | None = None,
                 dry_run: bool = False, reprocess_behavior: str = "none",
                 conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Create runs for the schedule's intervals between two dates (inclusive; naive = UTC).

        ``dry_run``: nothing is created; the answer lists the ``logical_dates`` a backfill would
        consider. Otherwise the answer is Airflow's backfill (``id``, dates, ``max_active_runs``...).
        ``conf`` becomes every created run's conf (pass :func:`run_conf` for provenance).
        """
        if reprocess_behavior not in REPROCESS_BEHAVIORS:
            raise WfError(USAGE, f"unknown reprocess behaviour {reprocess_behavior!r}",
                          f"use one of {', '.join(REPROCESS_BEHAVIORS)}")
        body: dict[str, Any] = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date,
                                "reprocess_behavior": reprocess_behavior, "run_backwards": False}
        if max_active_runs is not None:
            body["max_active_runs"] = int(max_active_runs)
        if conf is not None:
            body["dag_run_conf"] = dict(conf)
        if dry_run:
            raw = self._call("POST", "/backfills/dry_run", body, dag_id=dag_id, invalid_hint=BACKFILL_INVALID_HINT)
            dates = [b.get("logical_date") for b in raw.get("backfills") or []]
            return {"dag_id": dag_id, "dry_run": True, "from_date": from_date, "to_date": to_date,
                    "logical_dates": dates, "total_entries": raw.get("total_entries", len(dates))}
        raw = self._call("POST", "/backfills", body, dag_id=dag_id,
                         conflict_hint="a backfill of this DAG is already running: wait for it to finish, "
                                       "or pause or cancel it in Airflow",
                         invalid_hint=BACKFILL_INVALID_HINT)
        return {**raw, "dry_run": False}

    # -- DAGs ------------------------------------------------------------------------------

    def get_dag(self, dag_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/dags/{_q(dag_id)}", dag_id=dag_id)
        return result

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/dags/{_q(dag_id)}", {"is_paused": bool(paused)},
                                            query={"update_mask": "is_paused"}, dag_id=dag_id)
        return result

    def version(self) -> dict[str, Any]:
        """Airflow's version (``{"version": "3.3.2", "git_version": ...}``)."""
        result: dict[str, Any] = self._call("GET", "/version")
        return result

    # -- HTTP ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, *, query: Mapping[str, Any] | None = None,
              dag_id: str | None = None, run_id: str | None = None, conflict_hint: str | None = None,
              invalid_hint: str | None = None) -> Any:
        """One ``/api/v2`` call with the token; a token rejected once is fetched again."""
        context = {"dag_id": dag_id, "run_id": run_id, "conflict_hint": conflict_hint, "invalid_hint": invalid_hint}
        fresh = self._token is None
        token = self._get_token()
        try:
            return self._send_patiently(method, API + path, body, query=query, token=token)
        except _HttpStatus as exc:
            if _token_rejected(exc) and not fresh:  # expired (401) or not accepted (403): once more, new token
                self._token = None
                try:
                    return self._send_patiently(method, API + path, body, query=query, token=self._get_token())
                except _HttpStatus as again:
                    raise self._http_error(method, API + path, again, context) from None
            raise self._http_error(method, API + path, exc, context) from None

    def _get_token(self) -> str:
        if self._token is not None:
            return self._token
        s = self.settings
        context: dict[str, Any] = {"login": True}
        try:
            if s.username is None or s.password is None:
                answer = self._send_patiently("GET", "/auth/token", None)
            else:
                answer = self._send_patiently("POST", "/auth/token", {"username": s.username, "password": s.password})
        except _HttpStatus as exc:
            raise self._http_error(exc.method, "/auth/token", exc, context) from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise WfError(AIRFLOW, f"Airflow at {s.url} answered {exc_where('POST', '/auth/token')} without an "
                                   "access_token", "check that WFCTL_AIRFLOW_URL points at an Airflow 3 api-server")
        self._token = token
        return token

    def _send_patiently(self, method: str, path: str, body: Any, *, query: Mapping[str, Any] | None = None,
                        token: str | None = None) -> Any:
        """:meth:`_send`, again after a pause while the server answers busy (see :data:`BUSY_STATUSES`)."""
        attempt = 0
        while True:
            try:
                return self._send(method, path, body, query=query, token=token)
            except _HttpStatus as exc:
                if exc.status not in BUSY_STATUSES or attempt >= self.retries:
                    raise
                time.sleep(_pause(exc.retry_after, self.backoff * 2 ** attempt))
            attempt += 1

    def _send(self, method: str, path: str, body: Any, *, query: Mapping[str, Any] | None = None,
              token: str | None = None) -> Any:
        url = self.settings.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        headers = {"Accept": "application/json", "User-Agent": "wfctl"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        where = exc_where(method, path)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            raw = b""
            with contextlib.suppress(OSError, http.client.HTTPException):
                raw = exc.read()
            answer = exc.headers
            raise _HttpStatus(method, path, exc.code, raw, answer.get("Location") if answer else None,
                              answer.get("Retry-After") if answer else None) from None
        except TimeoutError as exc:
            raise self._unreachable(where, f"no answer within {self.timeout:g}s", exc) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise self._unreachable(where, f"no answer within {self.timeout:g}s", exc) from None
            raise self._unreachable(where, _describe_reason(reason), exc) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise self._unreachable(where, _describe_reason(exc), exc) from None
        if status == 204 or not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise WfError(AIRFLOW, f"Airflow at {self.settings.url} answered {where} with something that is not "
                                   f"JSON (HTTP {status})",
                          "check that WFCTL_AIRFLOW_URL points at an Airflow 3 api-server, not a proxy or "
                          "login page") from None

    def _unreachable(self, where: str, reason: str, exc: BaseException) -> WfError:
        return WfError(AIRFLOW, f"cannot reach Airflow at {self.settings.url} ({where}): {self._scrub(reason)}",
                       URL_HINT + "; nothing was changed in Airflow")

    def _http_error(self, method: str, path: str, exc: _HttpStatus, context: Mapping[str, Any]) -> WfError:
        url = self.settings.url
        where = exc_where(method, path)
        detail = self._scrub(_detail(exc.raw))
        suffix = f": {detail}" if detail else ""
        status = exc.status
        dag_id, run_id = context.get("dag_id"), context.get("run_id")
        user = self.settings.username
        if context.get("login"):
            if status in (401, 403) or (status == 400 and user is None):
                who = f"user {user!r}" if user else "a request without credentials"
                return WfError(AIRFLOW, f"Airflow at {url} refused to log in {who} ({where}: HTTP {status}){suffix}",
                               CREDENTIALS_HINT)
            if status in (404, 405):
                return WfError(AIRFLOW, f"Airflow at {url} has no token endpoint ({where}: HTTP {status})",
                               "check that WFCTL_AIRFLOW_URL is the base URL of an Airflow 3 api-server "
                               "(it answers GET /api/v2/version); Airflow 2 is not supported")
        if 300 <= status < 400:
            target = f" to {redact_url(exc.location)}" if exc.location else ""
            return WfError(AIRFLOW, f"Airflow at {url} redirected {where}{target} (HTTP {status})",
                           "set WFCTL_AIRFLOW_URL to the address the api-server answers on (https? a path prefix?)")
        if status == 401:
            return WfError(AIRFLOW, f"Airflow at {url} refused the token of user {user!r} ({where}: HTTP 401){suffix}",
                           CREDENTIALS_HINT + "; every api-server must share the same [api_auth] jwt_secret")
        if _token_rejected(exc):
            return WfError(AIRFLOW, f"Airflow at {url} does not accept the token it issued to user {user!r} ({where}: "
                                    f"HTTP {status}){suffix}",
                           "every api-server of the deployment must share the same [api_auth] jwt_secret")
        if status == 403:
            return WfError(AIRFLOW, f"Airflow at {url} does not allow user {user!r} to {where} (HTTP 403){suffix}",
                           "give the user a role that allows this in Airflow, or " + CREDENTIALS_HINT)
        if status == 404:
            if run_id is not None and "run" in detail.lower():
                return WfError(AIRFLOW, f"Airflow at {url} has no run {run_id!r} of DAG {dag_id!r} ({where}: "
                                        f"HTTP 404){suffix}",
                               f"list the runs with `wfctl runs {dag_id}`")
            if dag_id is not None:
                return WfError(AIRFLOW, f"Airflow at {url} has no DAG {dag_id!r} ({where}: HTTP 404){suffix}",
                               NOT_LOADED_HINT)
            return WfError(AIRFLOW, f"Airflow at {url} answered {where} with HTTP 404{suffix}",
                           "check that WFCTL_AIRFLOW_URL is the base URL of an Airflow 3 api-server")
        if status == 409:
            return WfError(AIRFLOW, f"Airflow at {url} refused {where}: conflict (HTTP 409){suffix}",
                           context.get("conflict_hint") or "the object exists already or is busy: check it in Airflow")
        if status in (400, 422):
            kind = "invalid request" if status == 422 else "bad request"
            return WfError(AIRFLOW, f"Airflow at {url} rejected {where}: {kind} (HTTP {status}){suffix}",
                           context.get("invalid_hint") or "fix the value Airflow names")
        if status == 503:
            return WfError(AIRFLOW, f"Airflow at {url} is unavailable for {where} (HTTP 503){suffix}",
                           "Airflow is busy or its database is locked: try again in a moment")
        if status >= 500:
            return WfError(AIRFLOW, f"Airflow at {url} failed on {where} (HTTP {status}){suffix}",
                           "this is an error inside Airflow: see the api-server's log")
        return WfError(AIRFLOW, f"Airflow at {url} answered {where} with HTTP {status}{suffix}",
                       "see the api-server's log")

    def _scrub(self, text: str) -> str:
        """Never echo a secret, whatever Airflow or the OS put in a message."""
        for secret in (self.settings.password, self._token):
            if secret and len(secret) >= 3:
                text = text.replace(secret, "***")
        return text


class _HttpStatus(Exception):
    """An HTTP answer >= 300 (internal; becomes a WfError with the call's context)."""

    def __init__(self, method: str, path: str, status: int, raw: bytes, location: str | None = None,
                 retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.method, self.path, self.status, self.raw, self.location = method, path, status, raw, location
        self.retry_after = retry_after


def _pause(retry_after: str | None, backoff: float) -> float:
    """Seconds to wait before resending: the server's ``Retry-After`` (delta-seconds form, capped) or the backoff."""
    try:
        asked = float(retry_after) if retry_after is not None else None
    except ValueError:  # the HTTP-date form: rare for a busy API, the backoff is as good
        asked = None
    if asked is None or asked < 0:
        return backoff
    return min(asked, MAX_RETRY_AFTER)


def _token_rejected(exc: _HttpStatus) -> bool:
    """401 (expired, or no token) or 403 "Invalid JWT token": the token, not the user's rights, is the problem."""
    return exc.status == 401 or (exc.status == 403 and "jwt" in _detail(exc.raw).lower())


def exc_where(method: str, path: str) -> str:
    return f"{method} {path}"


def _q(segment: str) -> str:
    return urllib.parse.quote(str(segment), safe="")


def _describe_reason(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return f"the host name does not resolve ({reason.strerror or reason})"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _detail(raw: bytes) -> str:
    """Airflow's (FastAPI's) ``detail``: a string, or a list of validation errors."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return _clip(" ".join(text.split())) if text and not text.startswith("<") else ""
    detail = data.get("detail", data) if isinstance(data, dict) else data
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc") or [] if p != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return _clip("; ".join(parts))
    if isinstance(detail, dict):  # e.g. {"reason": ..., "message": ...}
        message = detail.get("message") or detail.get("reason")
        return _clip(str(message) if message else json.dumps(detail, sort_keys=True))
    lines = [line.strip() for line in str(detail).splitlines() if line.strip()]
    return _clip(lines[0] if lines else "")


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def run_summary(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a DAG run wfctl shows, plus ``wfctl``: the provenance its conf carries (or None)."""
    run = {k: raw.get(k) for k in _RUN_KEYS}
    run["run_id"] = raw.get("dag_run_id", raw.get("run_id"))  # Airflow 3 calls it dag_run_id
    conf = run.get("conf")
    provenance = conf.get("wfctl") if isinstance(conf, dict) else None
    run["wfctl"] = provenance if isinstance(provenance, dict) else None
    return run


def default_logical_date() -> str:
    """Now, in UTC, as Airflow wants it: the logical date ``wfctl run`` should send by default.

    A run triggered with ``logical_date: null`` has no ``ds``/``logical_date``/``data_interval_*``
    in its template context, so a task using ``{{ ds }}`` fails with "'ds' is undefined".
    """
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def describe_failure(action_done: str, exc: WfError) -> WfError:
    """An Airflow failure after the store side of a command succeeded (pause/unpause):
    say what was applied and what was not; the store change stands."""
    return WfError(exc.code, f"{action_done} was applied in the store, but Airflow was not updated: {exc.message}",
                   f"{exc.hint}; the store change stands: run the command again once Airflow answers",
                   exc.exit_code)


# --- params and conf ------------------------------------------------------------------------


def parse_param_args(items: Iterable[str]) -> dict[str, str]:
    """``["K=V", ...]`` (repeated ``--param``) as a dict; a repeated key is an error."""
    given: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise WfError(USAGE, f"--param {item!r} is not KEY=VALUE", "write e.g. --param region=kr")
        if key in given:
            raise WfError(USAGE, f"--param {key} is given twice", "give each param once")
        given[key] = value
    return given


def parse_conf(text: str | None) -> dict[str, Any]:
    """``--conf JSON``: a JSON object (or nothing)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise WfError(USAGE, f"--conf is not valid JSON: {exc}", "write a JSON object, e.g. --conf '{\"k\": 1}'") from None
    if not isinstance(value, dict):
        raise WfError(USAGE, "--conf must be a JSON object", "write a JSON object, e.g. --conf '{\"k\": 1}'")
    return value


def check_params(params_spec: Mapping[str, Any] | None, given: Mapping[str, str]) -> dict[str, Any]:
    """The run's param values: ``given`` (``--param`` strings) converted to the declared types and
    validated against each param's schema, plus the defaults of the others.

    Unknown params, values that do not convert or validate, and params without a default that
    are not given are WF813 (exit 2), all reported at once, with the declared params in the hint.
    """
    import jsonschema  # a wfctl dependency, imported when needed

    spec = dict(params_spec or {})
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in sorted(set(given) - set(spec)):
        problems.append(f"unknown param {key!r}")
    for name in sorted(spec):
        param = spec[name] if isinstance(spec[name], Mapping) else {}
        schema = {k: v for k, v in param.items() if k not in _PARAM_META}
        if name not in given:
            if "default" in param:
                values[name] = param["default"]
            else:
                problems.append(f"param {name!r} has no default: give --param {name}=...")
            continue
        text = given[name]
        candidates, why = _candidates(schema.get("type"), text)
        if not candidates:
            problems.append(f"param {name!r}: {text!r} is not {why}")
            continue
        error = None
        for candidate in candidates:
            try:
                jsonschema.validate(candidate, schema, format_checker=jsonschema.FormatChecker())
            except jsonschema.ValidationError as exc:
                error = error or exc.message
                continue
            except jsonschema.SchemaError as exc:
                error = f"its declared schema is invalid ({exc.message})"
                break
            values[name] = candidate
            error = None
            break
        if error is not None:
            problems.append(f"param {name!r}: {error}")
    if problems:
        raise WfError(USAGE, "invalid params: " + "; ".join(problems), declared_params_hint(spec))
    return values


def _candidates(declared: Any, text: str) -> tuple[list[Any], str]:
    """The values ``text`` may stand for, in order of preference, for the declared type(s)."""
    types = declared if isinstance(declared, list) else [declared]
    out: list[Any] = []
    names = []
    for kind in types:
        names.append(f"a{'n' if str(kind)[:1] in 'aeiou' else ''} {kind}" if kind else "a value")
        value: Any
        if kind in (None, "string"):
            if kind is None:  # no declared type: a JSON value if it is one, else the text
                with contextlib.suppress(ValueError):
                    out.append(json.loads(text))
            out.append(text)
        elif kind == "integer":
            with contextlib.suppress(ValueError):
                out.append(int(text.strip(), 10))
        elif kind == "number":
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(value)
        elif kind == "boolean":
            lowered = text.strip().lower()
            if lowered in ("true", "false"):
                out.append(lowered == "true")
        elif kind == "null":
            if text.strip() in ("null", ""):
                out.append(None)
        elif kind in ("array", "object"):
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, list if kind == "array" else dict):
                out.append(value)
    return out, " or ".join(names) + (" (JSON)" if set(types) & {"array", "object"} else "")


def declared_params_hint(spec: Mapping[str, Any]) -> str:
    if not spec:
        return "this workflow declares no params"
    parts = []
    for name in sorted(spec):
        param = spec[name] if isinstance(spec[name], Mapping) else {}
        bits = [str(param.get("type", "any"))]
        if "enum" in param:
            bits.append("one of " + "|".join(json.dumps(v) for v in param["enum"]))
        for key, op in (("minimum", ">="), ("maximum", "<=")):
            if key in param:
                bits.append(f"{op} {param[key]}")
        bits.append(f"default {json.dumps(param['default'])}" if "default" in param else "required")
        parts.append(f"{name} ({', '.join(bits)})")
    return "declared params: " + "; ".join(parts) + " — give them as --param NAME=VALUE"


def run_conf(source: str, version: int | None, sha256: str, params: Mapping[str, Any],
             extra_conf: Mapping[str, Any]) -> dict[str, Any]:
    """The conf of a run: ``{**extra_conf, **params, "wfctl": {source, version, sha256}}``.

    Airflow takes the declared params' values from the conf keys of the same names, and
    ``conf["wfctl"]`` makes every run traceable to the definition it ran. ``extra_conf``
    (``--conf``) may not set a declared param (use ``--param``: it is type-checked) nor ``wfctl``.
    """
    clashes = sorted(k for k in extra_conf if k in params or k == "wfctl")
    if clashes:
        raise WfError(USAGE, f"--conf sets {', '.join(repr(k) for k in clashes)}, which wfctl sets itself",
                      "give declared params with --param NAME=VALUE; the key 'wfctl' is reserved for the run's "
                      "provenance")
    return {**extra_conf, **params, "wfctl": {"source": source, "version": version, "sha256": sha256}}
