"""Operator commands: MANUAL registrations, pause/unpause, list and status.

MANUAL versions use the same manifest + objects + pointer protocol as CODE
(:class:`wfctl.bundle.Source`), under ``manual/``. A name that live CODE owns
is managed in git and refused here (WF801).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wfctl import gitinfo
from wfctl.bundle import Draft, Entry, Manifest, Source, changes_between, utc_now
from wfctl.config import Config
from wfctl.dagsync import heal
from wfctl.deploy import Outcome
from wfctl.errors import ALREADY_EXISTS, MANAGED_BY_CODE, NOT_FOUND, OVERRIDDEN, USAGE, ValidationFailed, WfError
from wfctl.model import Payloads
from wfctl.names import check_name
from wfctl.overrides import Live, Row, read_live, write_state
from wfctl.schedules import next_runs, to_utc
from wfctl.store.base import Store
from wfctl.validate import validate_files


def _who(config: Config) -> str:
    return gitinfo.publisher(config.root) if (config.root / ".git").exists() else _os_user()


def _os_user() -> str:
    import getpass
    import os

    return os.environ.get("GITHUB_ACTOR") or getpass.getuser()


def _labels(config: Config, files: list[Path]) -> list[str]:
    """Repo files by repo-relative path, others by absolute path (as diagnostics show them)."""
    root = config.root.resolve()
    out = []
    for path in files:
        resolved = path.resolve()
        if not resolved.is_file():
            raise WfError(USAGE, f"{path} is not a file", "pass the YAML files that hold the workflows to register")
        out.append(resolved.relative_to(root).as_posix() if root in resolved.parents else str(resolved))
    return out


def register(config: Config, store: Store, files: list[Path], force: bool) -> Outcome:
    """Validate the files' workflows, then publish them as a new MANUAL version."""
    labels = _labels(config, files)
    heal(config, store)
    validation = validate_files(config, labels)
    if validation.report.errors:
        raise ValidationFailed(validation.report, config.root)
    workflows = {n: w for n, w in validation.workflows.items() if w.source_path in labels}
    if not workflows:
        raise WfError(USAGE, "the files hold no Workflow documents", "pass files with `kind: Workflow` documents")
    live = read_live(store)
    code_names = set(live.code.workflows) if live.code else set()  # read after validation: the freshest view
    current = dict(live.manual.workflows) if live.manual else {}
    for name in sorted(workflows):
        if name in code_names:
            raise WfError(MANAGED_BY_CODE, f"{name!r} is managed in git (CODE version {live.versions['code']})",
                          "managed in git: change it there, or register it under another name")
        if name in current and not force and current[name].sha256 != workflows[name].sha256:
            raise WfError(ALREADY_EXISTS, f"{name!r} is already registered (MANUAL version {live.versions['manual']})",
                          "pass --force to replace it")
    entries = dict(current)
    entries.update({n: Entry.for_workflow("manual", w) for n, w in workflows.items()})
    payloads = Payloads(workflows.values())
    return _commit_manual(config, store, live, entries, payloads)  # refreshes effective/


def unregister(config: Config, store: Store, name: str) -> Outcome:
    """Remove a name from the live MANUAL set; its versions stay in the store."""
    check_name(name)
    live = heal(config, store)
    if live.code and name in live.code.workflows:
        raise WfError(MANAGED_BY_CODE, f"{name!r} is managed in git (CODE version {live.code.version})",
                      "managed in git: delete it there and publish")
    current = dict(live.manual.workflows) if live.manual else {}
    if name not in current:
        raise WfError(NOT_FOUND, f"{name!r} is not registered", "see the registered workflows with `wfctl list --source manual`")
    del current[name]
    return _commit_manual(config, store, live, current, {})


def _commit_manual(config: Config, store: Store, live: Live, entries: dict[str, Entry], payloads: Mapping[str, bytes]) -> Outcome:
    before = live.manual.digests if live.manual else {}
    after = {n: e.sha256 for n, e in entries.items()}
    summary = changes_between(before, after)
    draft = Draft(entries, payloads, _who(config), None, summary)
    manifest = Source(store, "MANUAL").commit(live.pointers["MANUAL"], live.manual, draft)
    heal(config, store)
    unchanged = len(after) - len(summary["create"]) - len(summary["update"])
    previous = live.manual.version if live.manual else None
    if manifest is None:
        return Outcome(False, previous, previous, summary, unchanged)
    return Outcome(True, manifest.version, previous, summary, unchanged)


# --- pause / unpause -----------------------------------------------------------


def set_paused(config: Config, store: Store, name: str, paused: bool, source: str | None = None) -> dict[str, Any]:
    """Pause or unpause the effective workflow of ``name`` (or its MANUAL registration)."""
    check_name(name)
    live = heal(config, store)
    target = _target(live, name, source)
    state = live.state
    key = state.key(target.source, name)
    if paused:
        state.paused[key] = {"by": _who(config), "at": utc_now()}
    else:
        state.paused.pop(key, None)
    write_state(store, state)
    heal(config, store)
    return status(store, name, source=target.source)


def _target(live: Live, name: str, source: str | None) -> Row:
    rows = {(r.source, r.name): r for r in live.rows()}
    if source == "MANUAL":
        row = rows.get(("MANUAL", name))
        if row is None:
            raise WfError(NOT_FOUND, f"{name!r} is not registered", "see `wfctl list --source manual`")
        if row.status == "overridden":
            raise WfError(OVERRIDDEN, f"the MANUAL {name!r} is overridden by CODE version {live.versions['code']}",
                          "pause the effective (CODE) workflow instead, or remove or rename the CODE workflow "
                          "so that the MANUAL one becomes active again")
        return row
    row = live.effective().get(name)
    if row is None:
        raise WfError(NOT_FOUND, f"no live workflow is named {name!r}", "see `wfctl list`")
    return row


# --- list / status ---------------------------------------------------------------


def list_rows(store: Store, source: str | None = None, status_filter: str | None = None,
              owner: str | None = None) -> list[Row]:
    rows = read_live(store).rows()
    return [r for r in rows
            if (source is None or r.source == source)
            and (status_filter is None or r.status == status_filter)
            and (owner is None or r.owner == owner)]


def status(store: Store, name: str, source: str | None = None) -> dict[str, Any]:
    """One workflow: which source is live, its status and why, versions, who changed it, next runs."""
    check_name(name)
    live = read_live(store)
    row = _row_for_status(live, name, source)
    manifest = live.code if row.source == "CODE" else live.manual
    assert manifest is not None
    entry = manifest.workflows[name]
    definition = Source(store, row.source).definition(entry)
    pause = live.state.paused.get(live.state.key(row.source, name))
    return {
        "name": name,
        "source": row.source,
        "status": row.status,
        "reason": _reason(live, row, pause),
        "version": row.version,
        "sha256": row.sha256,
        "owner": row.owner,
        "schedule": row.schedule,
        "versions": {"code": _version_of(live.code, name), "manual": _version_of(live.manual, name)},
        "changed": entry.changed,
        "paused": pause,
        "next_runs": [] if row.status != "active" else [to_utc(t) for t in next_runs(definition["spec"].get("schedule"))],
    }


def _row_for_status(live: Live, name: str, source: str | None) -> Row:
    rows = {(r.source, r.name): r for r in live.rows()}
    row = rows.get((source, name)) if source else rows.get(("CODE", name)) or rows.get(("MANUAL", name))
    if row is None:
        raise WfError(NOT_FOUND, f"no live workflow is named {name!r}", "see `wfctl list`")
    return row


def _version_of(manifest: Manifest | None, name: str) -> int | None:
    return manifest.version if manifest and name in manifest.workflows else None


def _reason(live: Live, row: Row, pause: dict[str, str] | None) -> str:
    if row.status == "overridden":
        return f"overridden by CODE version {live.versions['code']}"
    where = f"{row.source} version {row.version}"
    if pause:
        return f"paused by {pause['by']} at {pause['at']} ({where})"
    if row.source == "MANUAL":
        return f"registered manually ({where}); no CODE workflow has this name"
    return f"managed in git ({where})"


def effective_definition(store: Store, name: str) -> dict[str, Any]:
    """The effective (CODE, else MANUAL) definition of a live workflow."""
    check_name(name)
    live = read_live(store)
    row = live.effective().get(name)
    if row is None:
        raise WfError(NOT_FOUND, f"no workflow is named {name!r}, in the repo or live", "see `wfctl list`")
    manifest = live.code if row.source == "CODE" else live.manual
    assert manifest is not None
    entry = manifest.workflows[name]
    return {"name": name, "source": row.source, "version": row.version, "sha256": row.sha256,
            "definition": Source(store, row.source).definition(entry)}
