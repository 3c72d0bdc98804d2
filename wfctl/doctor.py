"""``wfctl doctor``: is this configuration and store fit to publish to?

The conditional-write probe matters most: a store that silently ignores
``IfNoneMatch``/``IfMatch`` would let two deploys clobber each other, so
publishing to one is refused (:func:`require_conditional_writes`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wfctl.bundle import Source
from wfctl.config import Config
from wfctl.errors import INTEGRITY, STORE_UNAVAILABLE, WfError
from wfctl.overrides import read_state
from wfctl.store.base import ConflictError, Store

PROBE_PREFIX = "doctor"
MARKER = "doctor/conditional-writes.json"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def run(config: Config, open_store: Callable[[], Store]) -> list[Check]:
    """Each check runs even if an earlier one failed, so one run shows everything."""
    checks = [Check("config", True, _config_detail(config))]
    try:
        store = open_store()
    except WfError as exc:
        return [*checks, Check("store", False, f"{exc.message} (hint: {exc.hint})")]
    checks.append(Check("store", True, store.describe()))
    for name, probe in (("reachable", _reachable), ("conditional-writes", probe_conditional_writes)):
        try:
            checks.append(Check(name, True, probe(store)))
        except WfError as exc:
            checks.append(Check(name, False, f"{exc.message} (hint: {exc.hint})"))
    return checks


def _config_detail(config: Config) -> str:
    described = config.describe()
    return "; ".join(f"{k}={v['value']!r} ({v['source']})" for k, v in described.items() if v["value"] is not None)


def _reachable(store: Store) -> str:
    pointer = Source(store).pointer()
    return f"CODE version {pointer.version} is live" if pointer else "reachable; nothing published yet"


def probe_conditional_writes(store: Store) -> str:
    """Create a scratch key twice and swap it with a wrong etag: both must be refused."""
    key = f"{PROBE_PREFIX}/probe-{secrets.token_hex(8)}.json"
    try:
        store.put_if_absent(key, b"{}")
        _expect_conflict(lambda: store.put_if_absent(key, b"{}"), "a second create-if-absent (IfNoneMatch)")
        _expect_conflict(lambda: store.put_if_match(key, b"{}", '"not-the-etag"'), "a replace with a wrong etag (IfMatch)")
    finally:
        store.delete(key)
    return "create-if-absent and compare-and-swap are enforced"


def _expect_conflict(write: Callable[[], None], what: str) -> None:
    try:
        write()
    except ConflictError:
        return
    raise WfError(STORE_UNAVAILABLE, f"the store accepted {what}: it ignores conditional writes",
                  "publishing to it could lose updates; use AWS S3, or an S3-compatible server that enforces "
                  "If-None-Match/If-Match (e.g. SeaweedFS, MinIO)")


def require_conditional_writes(store: Store) -> None:
    """Probe once per store, then remember it (one GET per later publish)."""
    if store.exists(MARKER):
        return
    probe_conditional_writes(store)
    store.put(MARKER, b'{"conditional_writes": true}')


def verify(config: Config, store: Store) -> list[Check]:
    """A full audit: every version's manifest chain and objects, the operator
    state, and that ``effective/`` (view and DAG files) matches the live pointers."""
    checks = [_verify_source(store, source) for source in ("CODE", "MANUAL")]
    checks.append(_check(lambda: f"operator state version {read_state(store).version}", "state"))
    checks.append(_check(lambda: _verify_effective(config, store), "effective"))
    return checks


def _check(probe: Callable[[], str], name: str) -> Check:
    try:
        return Check(name, True, probe())
    except WfError as exc:
        return Check(name, False, f"{exc.message} (hint: {exc.hint})")


def _verify_source(store: Store, source: str) -> Check:
    def audit() -> str:
        src = Source(store, source)
        verified: set[str] = set()
        versions = 0
        for manifest in src.history():
            versions += 1
            for entry in manifest.workflows.values():
                if entry.sha256 not in verified:
                    src.definition(entry)  # raises WF806 on a missing or altered object
                    verified.add(entry.sha256)
        pointer = src.pointer()
        orphans = _orphans(store, src, pointer.version if pointer else 0)
        note = f"; {len(orphans)} unpublished manifest(s) from crashed runs: {orphans}" if orphans else ""
        return f"{versions} version(s) and {len(verified)} object(s) verified{note}"

    return _check(audit, f"{source.lower()}-versions")


def _orphans(store: Store, src: Source, live: int) -> list[int]:
    numbers = []
    for key in store.list(f"{src.prefix}/versions/"):
        stem = key.rsplit("/", 1)[-1].removesuffix(".json")
        if stem.isdigit() and int(stem) > live:
            numbers.append(int(stem))
    return sorted(numbers)


def _verify_effective(config: Config, store: Store) -> str:
    from wfctl.airflow_render import dag_file_name
    from wfctl.dagsync import target
    from wfctl.overrides import EFFECTIVE_KEY, effective_document, read_live

    live = read_live(store)
    blob = store.get(EFFECTIVE_KEY)
    if blob is None:
        if live.code is None and live.manual is None:
            return "nothing published yet"
        raise WfError(INTEGRITY, "effective/current.json is missing", "run any mutating command (it heals the view)")
    view = json.loads(blob.data)
    expected = effective_document(live)
    if view.get("computed_from") != live.versions:
        raise WfError(INTEGRITY, f"effective/ was computed from {view.get('computed_from')}, the live pointers are "
                      f"{live.versions}", "run any mutating command (a no-op publish heals it)")
    strip = ("computed_at", "dags")
    if {k: v for k, v in view.items() if k not in strip} != {k: v for k, v in expected.items() if k not in strip}:
        raise WfError(INTEGRITY, "effective/current.json does not match the live manifests and state",
                      "run any mutating command (a no-op publish heals it)")
    dags = target(config, store)
    files = {key[len(dags.prefix):] for key in dags.store.list(dags.prefix) if key.endswith(".py")}
    wanted = {dag_file_name(name): row for name, row in expected["workflows"].items()}
    if files != set(wanted):
        raise WfError(INTEGRITY, f"the DAG folder differs: missing {sorted(set(wanted) - files)}, "
                      f"extra {sorted(files - set(wanted))}", "run any mutating command (a no-op publish heals it)")
    for file_name, row in wanted.items():
        blob = dags.store.get(dags.prefix + file_name)
        if blob is None or row["sha256"].encode() not in blob.data:
            raise WfError(INTEGRITY, f"{dags.prefix}{file_name} is not the rendering of sha256 {row['sha256'][:12]}",
                          "run any mutating command (a no-op publish heals it)")
    return f"{len(wanted)} effective workflow(s), view and DAG files match the live pointers"
