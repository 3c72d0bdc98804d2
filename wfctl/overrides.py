"""CODE over MANUAL: operator state and the effective set (SPEC section 5).

The effective set is every live CODE workflow plus every live MANUAL workflow
whose name CODE does not have. Operator state (``state/current.json``) records
paused workflows per (source, name), so a pause survives deploys. The
resolved view is written to ``effective/current.json`` with compare-and-swap
and never regresses: it records the CODE, MANUAL and state versions it was
computed from, and a writer that finds a newer view than its own inputs
re-reads the pointers and tries again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfctl.bundle import Manifest, Pointer, Source, integrity_error, utc_now
from wfctl.errors import CONFLICT, WfError
from wfctl.model import canonical_json
from wfctl.store.base import ConflictError, Store

STATE_KEY = "state/current.json"
EFFECTIVE_KEY = "effective/current.json"
STATE_FORMAT = "wfctl.state/v1"
EFFECTIVE_FORMAT = "wfctl.effective/v1"
ATTEMPTS = 20


@dataclass
class OperatorState:
    """Paused workflows by ``SOURCE/name``, with who paused them and when."""

    version: int = 0
    paused: dict[str, dict[str, str]] = field(default_factory=dict)
    etag: str | None = None
    writer: str = field(default_factory=lambda: secrets.token_hex(16))  # tells our own write from a twin's

    @staticmethod
    def key(source: str, name: str) -> str:
        return f"{source}/{name}"

    def is_paused(self, source: str, name: str) -> bool:
        return self.key(source, name) in self.paused

    def to_bytes(self) -> bytes:
        return canonical_json({"format": STATE_FORMAT, "version": self.version, "paused": self.paused,
                               "writer": self.writer})


def read_state(store: Store) -> OperatorState:
    blob = store.get(STATE_KEY)
    if blob is None:
        return OperatorState()
    try:
        raw = json.loads(blob.data)
        if raw["format"] != STATE_FORMAT:
            raise ValueError(f"unknown format {raw['format']!r}")
        return OperatorState(int(raw["version"]), dict(raw["paused"]), blob.etag)
    except (ValueError, KeyError, TypeError) as exc:
        raise integrity_error(STATE_KEY, f"operator state is unreadable ({exc})") from None


def write_state(store: Store, state: OperatorState) -> OperatorState:
    """Compare-and-swap on the etag read; the loser gets WF803 and changed nothing."""
    new = OperatorState(state.version + 1, state.paused)
    try:
        store.put_if_match(STATE_KEY, new.to_bytes(), state.etag)
    except ConflictError:
        blob = store.get(STATE_KEY)  # a retried write whose first attempt landed is ours
        if blob is None or blob.data != new.to_bytes():
            raise
    return new


@dataclass(frozen=True)
class Row:
    """One (source, name) of the live view: what ``list`` prints."""

    name: str
    source: str
    status: str  # active | paused | overridden
    version: int
    sha256: str
    owner: str
    schedule: str | None
    changed_version: int | None = None  # the version in which this content last changed

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "status": self.status, "version": self.version,
                "sha256": self.sha256, "owner": self.owner, "schedule": self.schedule,
                "changed_version": self.changed_version}


@dataclass
class Live:
    """The live manifests of both sources and the operator state, read together."""

    store: Store
    code: Manifest | None
    manual: Manifest | None
    state: OperatorState
    pointers: dict[str, Pointer | None] = field(default_factory=dict)

    @property
    def versions(self) -> dict[str, int | None]:
        return {
            "code": self.code.version if self.code else None,
            "manual": self.manual.version if self.manual else None,
            "state": self.state.version or None,
        }

    def rows(self) -> list[Row]:
        """Every live CODE workflow and every live MANUAL one; shadowed MANUAL rows are overridden."""
        code_names = set(self.code.workflows) if self.code else set()
        out: list[Row] = []
        for source, manifest in (("CODE", self.code), ("MANUAL", self.manual)):
            if manifest is None:
                continue
            for name, entry in sorted(manifest.workflows.items()):
                if source == "MANUAL" and name in code_names:
                    status = "overridden"
                else:
                    status = "paused" if self.state.is_paused(source, name) else "active"
                changed = (entry.changed or {}).get("version", manifest.version)
                out.append(Row(name, source, status, manifest.version, entry.sha256, entry.owner, entry.schedule, changed))
        return sorted(out, key=lambda r: (r.name, r.source))

    def effective(self) -> dict[str, Row]:
        return {r.name: r for r in self.rows() if r.status != "overridden"}


def read_live(store: Store) -> Live:
    """Pointers and manifests of both sources plus state: five small reads."""
    code_pointer, code = Source(store, "CODE").live()
    manual_pointer, manual = Source(store, "MANUAL").live()
    return Live(store, code, manual, read_state(store), {"CODE": code_pointer, "MANUAL": manual_pointer})


def effective_document(live: Live, dags: str | None = None) -> dict[str, Any]:
    code_version = live.code.version if live.code else None
    return {
        "format": EFFECTIVE_FORMAT,
        "computed_from": live.versions,
        "computed_at": utc_now(),
        "dags": dags,
        "workflows": {
            name: {
                "source": row.source,
                "version": row.version,
                "sha256": row.sha256,
                "object": f"{'code' if row.source == 'CODE' else 'manual'}/objects/{row.sha256}.json",
                "status": row.status,
                "owner": row.owner,
                "schedule": row.schedule,
                "changed_version": row.changed_version,
            }
            for name, row in live.effective().items()
        },
        "overridden": {
            row.name: {"manual_version": row.version, "sha256": row.sha256, "by_code_version": code_version}
            for row in live.rows() if row.status == "overridden"
        },
    }


def _newer_or_equal(a: dict[str, int | None], b: dict[str, int | None]) -> bool:
    return all((a.get(k) or 0) >= (b.get(k) or 0) for k in ("code", "manual", "state"))


Sync = Callable[[dict[str, Any] | None, Live, set[str]], set[str]]


def refresh(store: Store, on_change: Sync | None = None, dags: str | None = None) -> Live:
    """Bring ``effective/`` up to date with the live pointers (self-healing).

    A no-op when the view already matches. ``on_change(previous_view, live,
    redo)`` updates the DAG files before the view is swapped in, so a crash
    leaves an older view that the next command heals. When the swap loses a
    race, the files this attempt wrote are redone from fresher pointers, so a
    slower writer never leaves its older files behind.
    """
    redo: set[str] = set()
    for _ in range(ATTEMPTS):
        live = read_live(store)
        blob = store.get(EFFECTIVE_KEY)
        current = _view(blob.data) if blob else None
        fresh = current is not None and current.get("computed_from") == live.versions and current.get("dags") == dags
        if fresh and not redo:
            return live
        if current and not _newer_or_equal(live.versions, current.get("computed_from", {})):
            continue  # someone computed from newer pointers than we read: re-read
        if on_change:
            redo = on_change(current, live, redo)
        if fresh:
            return live
        try:
            store.put_if_match(EFFECTIVE_KEY, canonical_json(effective_document(live, dags)), blob.etag if blob else None)
            return live
        except ConflictError:
            continue
    raise WfError(CONFLICT, "effective/current.json kept changing underneath", "re-run the command; it heals the view")


def _view(data: bytes) -> dict[str, Any] | None:
    """The stored view, or None if it is unreadable (then it is simply rebuilt)."""
    try:
        view = json.loads(data)
    except ValueError:
        return None
    return view if isinstance(view, dict) and view.get("format") == EFFECTIVE_FORMAT else None
