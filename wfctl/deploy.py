"""Plan, publish and rollback of CODE versions: the GitOps core.

Each function takes a loaded :class:`~wfctl.config.Config` and a store, does
its checks in the order a careful operator would (tree clean, right branch,
live version as expected, not out of order, not a mass delete), and returns
data for the CLI to render.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfctl import gitinfo
from wfctl.bundle import ACTIONS, Draft, Entry, Manifest, Pointer, Source, changes_between, sha256
from wfctl.config import Config
from wfctl.dagsync import heal
from wfctl.errors import (
    CONFLICT,
    DIRTY_TREE,
    INTEGRITY,
    MASS_DELETE,
    OUT_OF_ORDER,
    STALE_PLAN,
    USAGE,
    ValidationFailed,
    WfError,
)
from wfctl.model import Payloads, canonical_json
from wfctl.plan import Base, Plan, compute, load_saved
from wfctl.store.base import Store
from wfctl.validate import Validation, validate

Warn = Callable[[str], None]


def validated(config: Config) -> Validation:
    """Validate the repo; any error stops a plan or publish before it touches a store."""
    result = validate(config)
    if result.report.errors:
        raise ValidationFailed(result.report, config.root)
    return result


# --- bases ---------------------------------------------------------------------


def store_base(source: Source) -> tuple[Base, Pointer | None, Manifest | None]:
    """The live version as a plan base: four requests (both sources' pointer and
    manifest), objects fetched only on demand."""
    manual = Source(source.store, "MANUAL").live()[1]
    manual_names = set(manual.workflows) if manual else set()
    pointer, manifest = source.live()
    if manifest is None:
        return Base(None, None, {}, _nothing, source.store.describe(), manual_names), None, None
    live = manifest

    def load(name: str) -> dict[str, Any]:
        return source.definition(live.workflows[name])

    base = Base(live.version, pointer.sha256 if pointer else None, live.digests, load, source.store.describe(), manual_names)
    return base, pointer, live


def _nothing(name: str) -> dict[str, Any]:
    raise KeyError(name)


def snapshot_base(path: Path) -> Base:
    """The CODE part of a ``wfctl snapshot`` file: a plan with no store access."""
    from wfctl.views import read_snapshot

    snap = read_snapshot(path)
    code = snap["code"]
    definitions = {name: w["definition"] for name, w in code["workflows"].items()}
    digests = {name: w["sha256"] for name, w in code["workflows"].items()}
    for name, definition in definitions.items():
        if sha256(canonical_json(definition)) != digests[name]:
            raise WfError(INTEGRITY, f"the snapshot's definition of {name!r} does not match its sha256",
                          "the snapshot file was edited or corrupted: download a fresh one (`wfctl snapshot`)")
    return Base(code["version"], code["manifest_sha256"], digests, definitions.__getitem__, f"snapshot {path}",
                set(snap["manual"]["workflows"]))


def git_base(config: Config, ref: str) -> Base:
    """The repo as it was at a git ref, resolved like the work tree (no store needed)."""
    from wfctl import config as config_mod

    with tempfile.TemporaryDirectory(prefix="wfctl-ref-") as tmp:
        gitinfo.export_tree(config.root, ref, Path(tmp))
        old = validate(config_mod.load(Path(tmp), {"paths": config.values["paths"], "cache": False}))
    workflows = old.workflows
    digests = {name: w.sha256 for name, w in workflows.items()}
    return Base(None, None, digests, lambda name: workflows[name].definition, f"git {ref}")


# --- plan ------------------------------------------------------------------------


def plan(config: Config, open_store: Callable[[], Store], *, against: str | None = None,
         snapshot: Path | None = None) -> tuple[Plan, Validation]:
    validation = validated(config)
    if against and snapshot:
        raise WfError(USAGE, "--against and --snapshot both name a base", "pass only one of them")
    if against:
        base = git_base(config, against)
    elif snapshot:
        base = snapshot_base(snapshot)
    else:
        base = store_base(Source(open_store()))[0]
    return compute(base, validation.workflows), validation


# --- publish -----------------------------------------------------------------------


@dataclass
class Outcome:
    """What a publish-like command did; ``to_json`` is the SPEC's publish shape."""

    published: bool
    version: int | None
    previous_version: int | None
    changes: dict[str, list[str]]
    unchanged: int
    dry_run: bool = False
    plan: Plan | None = None

    @property
    def summary(self) -> dict[str, int]:
        return {**{action: len(self.changes.get(action, [])) for action in ACTIONS}, "unchanged": self.unchanged}

    def to_json(self) -> dict[str, Any]:
        return {"published": self.published, "version": self.version, "previous_version": self.previous_version,
                "dry_run": self.dry_run, "summary": self.summary}


@dataclass
class PublishOptions:
    dry_run: bool = False
    expect_version: int | None = None
    plan_file: Path | None = None
    allow_dirty: bool = False
    allow_branch: bool = False
    allow_deletes: bool = False
    force: bool = False
    progress: Callable[[int, int], None] | None = None


def publish(config: Config, store: Store, options: PublishOptions, warn: Warn) -> Outcome:
    git = _git_checks(config, options)
    source = Source(store)
    saved = _read_plan(options.plan_file) if options.plan_file else None
    if not options.dry_run:
        heal(config, store)  # self-healing, even when this publish turns out a no-op
    base, pointer, live = store_base(source)
    _check_expected(base, options.expect_version, saved)
    _check_order(config, live, git, options.force, warn)
    planned = None if saved else compute(base, validated(config).workflows)
    draft = _draft_from_saved(saved) if saved else _draft(planned)  # type: ignore[arg-type]
    draft.publisher, draft.git, draft.progress = gitinfo.publisher(config.root), git.to_json() if git else None, options.progress
    unchanged = len(draft.workflows) - len(draft.summary["create"]) - len(draft.summary["update"])
    _check_deletes(len(draft.summary["delete"]), len(base.digests), options.allow_deletes)
    outcome = Outcome(False, base.version, base.version, draft.summary, unchanged, options.dry_run, planned)
    if options.dry_run or not any(draft.summary.values()):
        return outcome
    manifest = source.commit(pointer, live, draft)
    if manifest is not None:
        outcome.published, outcome.version = True, manifest.version
        heal(config, store)
    return outcome


def _git_checks(config: Config, options: PublishOptions) -> gitinfo.GitState | None:
    """WF805: deploy only a clean tree from the deploy branch, unless told otherwise."""
    try:
        git = gitinfo.state(config.root, config.values["paths"])
    except WfError:
        if options.allow_dirty and options.allow_branch:
            return None
        raise WfError(DIRTY_TREE, f"{config.root} is not a git checkout: a publish records the commit it deploys",
                      "publish from a git checkout, or pass --allow-dirty --allow-branch to publish anyway") from None
    if git.dirty and not options.allow_dirty:
        listed = ", ".join(git.dirty_files[:5]) + (" ..." if len(git.dirty_files) > 5 else "")
        raise WfError(DIRTY_TREE, f"the work tree has uncommitted changes ({listed})",
                      "commit or stash them so the published version matches a commit, or pass --allow-dirty")
    branch = config.values["deploy_branch"]
    if git.branch != branch and not options.allow_branch:
        raise WfError(DIRTY_TREE, f"on branch {git.branch or '(detached HEAD)'}, but the deploy branch is {branch!r} "
                      f"({config.sources['deploy_branch']})",
                      f"check out {branch}, change deploy_branch in wfctl.yaml, or pass --allow-branch")
    return git


def _check_expected(base: Base, expect_version: int | None, saved: dict[str, Any] | None) -> None:
    """Plan-then-apply safety: refuse when the live version is not the one planned against."""
    if expect_version is not None and base.version != expect_version:
        raise WfError(CONFLICT, f"the live version is {base.version}, not {expect_version} as expected",
                      "someone published since you planned: run `wfctl plan` again and review it")
    if saved is not None:
        planned = saved["base"]
        if (planned["version"], planned["manifest_sha256"]) != (base.version, base.manifest_sha256):
            raise WfError(STALE_PLAN, f"the plan was made against version {planned['version']}, "
                          f"but the live version is now {base.version}",
                          "the store moved since the plan was saved: run `wfctl plan --out FILE` again")


def _check_order(config: Config, live: Manifest | None, git: gitinfo.GitState | None, force: bool, warn: Warn) -> None:
    """WF811: never let a slow CI job roll production back to an older commit."""
    live_commit = (live.git or {}).get("commit") if live else None
    if not live_commit or not git or not git.commit or force:
        return
    known = gitinfo.is_ancestor(config.root, live_commit)
    if known is None:
        warn(f"warning: the live version's commit {live_commit[:12]} is not in the local history "
             "(shallow clone?); cannot check publish order")
    elif not known:
        raise WfError(OUT_OF_ORDER, f"the live version {live.version if live else '?'} was published from commit "
                      f"{live_commit[:12]}, which is not an ancestor of HEAD {git.commit[:12]}",
                      "publishing would roll production back: merge or rebase onto the live commit, "
                      "or pass --force if this is intended")


def _check_deletes(deletes: int, live: int, allow: bool) -> None:
    """A truncated checkout must not wipe production."""
    if live and deletes * 2 > live and not allow:
        raise WfError(MASS_DELETE, f"this publish would delete {deletes} of {live} live workflows",
                      "a truncated checkout or a wrong `paths:` can look like this; if the deletes are intended, "
                      "pass --allow-deletes")


def _draft(planned: Plan) -> Draft:
    desired = planned.desired
    entries = {name: Entry.for_workflow("code", w) for name, w in desired.items()}
    summary = {action: [c.name for c in planned.changes if c.action == action] for action in ACTIONS}
    return Draft(entries, Payloads(desired.values()), "", summary=summary)


def _read_plan(path: Path) -> dict[str, Any]:
    try:
        return load_saved(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise WfError(USAGE, f"cannot read plan file {path}: {exc}", "pass a file written by `wfctl plan --out FILE`") from None


def _draft_from_saved(saved: dict[str, Any]) -> Draft:
    """Exactly what a saved plan said; its payloads must match their digests."""
    payloads: dict[str, bytes] = {}
    for digest, definition in saved["payloads"].items():
        data = canonical_json(definition)
        if sha256(data) != digest:
            raise WfError(INTEGRITY, "a definition in the plan file does not match its digest",
                          "the plan file was edited or corrupted: run `wfctl plan --out FILE` again")
        payloads[digest] = data
    entries = {name: Entry.from_json(t) for name, t in saved["target"].items()}
    summary = {action: [c["name"] for c in saved["changes"] if c["action"] == action] for action in ACTIONS}
    return Draft(entries, payloads, "", summary=summary)


def rollback(config: Config, store: Store, to: int) -> Outcome:
    """A new version whose content equals version ``to`` (history stays linear)."""
    source = Source(store)
    heal(config, store)
    base, pointer, live = store_base(source)
    target = source.verified(to)
    draft = Draft(dict(target.workflows), {}, gitinfo.publisher(config.root), None,
                  changes_between(live.digests if live else {}, target.digests), extra={"rollback_to": to})
    manifest = source.commit(pointer, live, draft)
    heal(config, store)
    unchanged = len(target.workflows) - len(draft.summary["create"]) - len(draft.summary["update"])
    if manifest is None:
        return Outcome(False, base.version, base.version, draft.summary, unchanged)
    return Outcome(True, manifest.version, base.version, draft.summary, unchanged)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
