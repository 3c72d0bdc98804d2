"""Plans as data: what a publish would change, against some base.

A :class:`Base` is what is deployed (the live CODE version in a store, a
snapshot file, or the repo at another git ref); the desired side is the
repo's resolved workflows. :func:`compute` diffs them per workflow and per
field; renderers in :mod:`wfctl.plan_format` turn the plan into text, JSON or
markdown. Only changed workflows are fetched from the base, so a plan costs
O(1) store requests plus one per changed workflow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfctl.model import ResolvedWorkflow
from wfctl.schedules import next_runs, to_utc

PLAN_FORMAT = "wfctl.plan/v1"
MISSING: Any = None  # JSON has no "absent"; a field that did not exist shows as null


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after}


@dataclass
class Change:
    name: str
    action: str  # create | update | delete
    fields: list[FieldChange] = field(default_factory=list)
    before_sha256: str | None = None
    after_sha256: str | None = None
    source_path: str | None = None
    runs: dict[str, list[str]] | None = None  # next runs before/after, when the schedule changed

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "action": self.action,
            "fields": [f.to_json() for f in self.fields],
            "before_sha256": self.before_sha256,
            "after_sha256": self.after_sha256,
            "source_path": self.source_path,
        }
        if self.runs is not None:
            out["next_runs"] = {side: [to_utc(t) for t in times] for side, times in self.runs.items()}
        return out


@dataclass(frozen=True)
class OverrideEffect:
    name: str
    effect: str  # overridden | reactivated

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "effect": self.effect}


@dataclass
class Base:
    """What the plan compares against; ``load`` fetches one definition on demand."""

    version: int | None
    manifest_sha256: str | None
    digests: dict[str, str]
    load: Callable[[str], dict[str, Any]]
    label: str = "store"
    manual: set[str] = field(default_factory=set)  # live MANUAL names, for override effects


@dataclass
class Plan:
    base: Base
    changes: list[Change]
    unchanged: int
    desired: dict[str, ResolvedWorkflow]
    overrides: list[OverrideEffect] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0}
        for change in self.changes:
            counts[change.action] += 1
        return {**counts, "unchanged": self.unchanged}

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def detailed_exit_code(self) -> int:
        """0 nothing to do, 2 additive or in-place only, 4 deletes or override flips."""
        if any(c.action == "delete" for c in self.changes) or self.overrides:
            return 4
        return 2 if self.changes else 0

    def to_saved(self, git: dict[str, Any] | None) -> dict[str, Any]:
        """The plan file: enough to publish exactly this plan later, and to notice
        when the live version moved (the base's version and manifest digest)."""
        from wfctl.bundle import Entry

        changed = {c.after_sha256 for c in self.changes if c.after_sha256}
        return {
            **self.to_json(),
            "git": git,
            "target": {n: Entry.for_workflow("code", w).to_json()
                       for n, w in sorted(self.desired.items())},
            "payloads": {w.sha256: w.definition for w in self.desired.values() if w.sha256 in changed},
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "base": {"version": self.base.version, "manifest_sha256": self.base.manifest_sha256, "source": self.base.label},
            "summary": self.summary,
            "changes": [c.to_json() for c in self.changes],
            "overrides": [o.to_json() for o in self.overrides],
        }


def compute(base: Base, desired: dict[str, ResolvedWorkflow]) -> Plan:
    changes: list[Change] = []
    unchanged = 0
    for name in sorted(set(base.digests) | set(desired)):
        before_sha = base.digests.get(name)
        wanted = desired.get(name)
        if wanted is None:
            changes.append(Change(name, "delete", before_sha256=before_sha))
        elif before_sha is None:
            changes.append(Change(name, "create", after_sha256=wanted.sha256, source_path=wanted.source_path,
                                  runs=_runs(None, wanted.definition)))
        elif before_sha != wanted.sha256:
            changes.append(_update(name, before_sha, base.load(name), wanted))
        else:
            unchanged += 1
    overrides = [OverrideEffect(c.name, "overridden" if c.action == "create" else "reactivated")
                 for c in changes if c.name in base.manual and c.action in ("create", "delete")]
    return Plan(base, changes, unchanged, desired, overrides)


def _update(name: str, before_sha: str, before: dict[str, Any], wanted: ResolvedWorkflow) -> Change:
    fields = diff_fields(before, wanted.definition)
    schedule_changed = any(f.path.startswith("spec.schedule") for f in fields)
    runs = _runs(before, wanted.definition) if schedule_changed else None
    return Change(name, "update", fields, before_sha, wanted.sha256, wanted.source_path, runs)


def _runs(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, list[str]] | None:
    after_schedule = after["spec"].get("schedule")
    before_schedule = before["spec"].get("schedule") if before else None
    if before is None and after_schedule is None:
        return None
    return {"before": next_runs(before_schedule), "after": next_runs(after_schedule)}


def diff_fields(before: Any, after: Any) -> list[FieldChange]:
    """Field-level changes as dotted paths; lists change as a whole (readable for
    tags and depends_on), mappings recurse (tasks are keyed by name)."""
    from deepdiff import DeepDiff

    diff = DeepDiff(before, after, view="tree", verbose_level=2)
    seen: dict[str, FieldChange] = {}
    for levels in diff.values():
        for level in levels:
            path = level.path(output_format="list")
            cut = next((i for i, part in enumerate(path) if isinstance(part, int)), len(path))
            path = path[:cut]
            dotted = ".".join(str(p) for p in path)
            if dotted not in seen:
                seen[dotted] = FieldChange(dotted, _at(before, path), _at(after, path))
    return sorted(seen.values(), key=lambda f: f.path)


def _at(tree: Any, path: list[Any]) -> Any:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return MISSING
        tree = tree[part]
    return tree


def load_saved(data: bytes) -> dict[str, Any]:
    """A saved plan file (``plan --out``), checked for its format."""
    saved: dict[str, Any] = json.loads(data)
    if saved.get("format") != PLAN_FORMAT:
        raise ValueError(f"not a wfctl plan file (format {saved.get('format')!r})")
    return saved
