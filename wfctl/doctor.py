"""``wfctl doctor``: is this configuration and store fit to publish to?

The conditional-write probe matters most: a store that silently ignores
``IfNoneMatch``/``IfMatch`` would let two deploys clobber each other, so
publishing to one is refused (:func:`require_conditional_writes`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wfctl.bundle import Source
from wfctl.config import Config
from wfctl.errors import STORE_UNAVAILABLE, WfError
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
