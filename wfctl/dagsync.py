"""The DAG folder: one rendered Airflow file per effective workflow.

An Airflow deployment (MWAA, or a sidecar syncing from S3) reads its DAG folder
from ``effective/dags/`` in the store, or from wherever ``dags_prefix`` points
(another ``s3://`` prefix or a local directory). It is rewritten as part of
every store mutation, before ``effective/current.json`` records the new view,
and incrementally: a file is rendered only when its workflow's content, source
or last-changed version moved, so publishing one change among 10,000
workflows writes one file.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from wfctl.airflow_render import dag_file_name, render_dag
from wfctl.bundle import Source
from wfctl.config import Config
from wfctl.overrides import Live, refresh
from wfctl.store.base import Store


@dataclass(frozen=True)
class DagTarget:
    """Where DAG files go: a store (the main one or another) and a key prefix in it."""

    store: Store
    prefix: str

    @property
    def id(self) -> str:
        return f"{self.store.describe()}#{self.prefix}"

    def key(self, name: str) -> str:
        return f"{self.prefix}{dag_file_name(name)}"


def target(config: Config, store: Store) -> DagTarget:
    """``dags_prefix``: a key prefix inside the store, or a URL/path of its own."""
    from wfctl.store.url import open_store

    prefix = str(config.values["dags_prefix"])
    if "://" in prefix or prefix.startswith(("/", ".")):
        return DagTarget(open_store(prefix, endpoint_url=config.values["endpoint_url"]), "")
    return DagTarget(store, prefix.strip("/") + "/")


def heal(config: Config, store: Store) -> Live:
    """Bring ``effective/`` (view and DAG files) up to date with the live pointers."""
    dags = target(config, store)
    return refresh(store, _syncer(dags), dags.id)


def _syncer(dags: DagTarget) -> Callable[[dict[str, Any] | None, Live, set[str]], set[str]]:
    def sync(previous: dict[str, Any] | None, live: Live, redo: set[str]) -> set[str]:
        return sync_dags(dags, previous, live, redo)

    return sync


def _fingerprint(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["source"], row.get("changed_version"), row["sha256"]


def sync_dags(dags: DagTarget, previous: dict[str, Any] | None, live: Live, redo: set[str]) -> set[str]:
    """Write the files that differ from the previous view, delete the ones that left it;
    without a trustworthy previous view (first run, moved target), reconcile in full.
    Returns the names touched."""
    from wfctl.overrides import effective_document

    wanted: dict[str, dict[str, Any]] = effective_document(live)["workflows"]
    trusted = previous is not None and previous.get("dags") == dags.id
    before: dict[str, dict[str, Any]] = previous["workflows"] if trusted and previous else {}
    if trusted:
        stale = set(before) - set(wanted)
    else:
        present = {key[len(dags.prefix):-3] for key in dags.store.list(dags.prefix) if key.endswith(".py")}
        stale = present - set(wanted)
    changed = {n for n, row in wanted.items() if n in redo or n not in before or _fingerprint(before[n]) != _fingerprint(row)}
    names = sorted(changed)
    with ThreadPoolExecutor(max_workers=16) as pool:  # S3 round trips dominate a first sync
        rendered = dict(zip(names, pool.map(lambda n: _render(live, n, wanted[n]), names), strict=True))  # all first
        list(pool.map(lambda item: dags.store.put(dags.key(item[0]), item[1].encode("utf-8")), rendered.items()))
        list(pool.map(lambda name: dags.store.delete(dags.key(name)), sorted(stale | (redo - set(wanted)))))
    return changed | stale


def _render(live: Live, name: str, row: dict[str, Any]) -> str:
    manifest = live.code if row["source"] == "CODE" else live.manual
    assert manifest is not None
    entry = manifest.workflows[name]
    definition = Source(live.store, row["source"]).definition(entry)
    return render_dag(definition, source=row["source"], version=row.get("changed_version"), sha256=row["sha256"])
