"""Read-only views of a store: history, show, snapshot."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wfctl.bundle import SOURCES, Manifest, Source, utc_now
from wfctl.errors import NOT_FOUND, USAGE, WfError
from wfctl.names import check_name
from wfctl.store.base import Store

SNAPSHOT_FORMAT = "wfctl.snapshot/v1"


def history(store: Store, source: str = "CODE", name: str | None = None) -> dict[str, Any]:
    """Versions newest first; with ``name``, only those in which that workflow changed."""
    if name is not None:
        check_name(name)
    versions = []
    for manifest in Source(store, source).history():
        if name is not None and not _touches(manifest, name):
            continue
        versions.append(_version_row(manifest))
    if name is not None and not versions:
        raise WfError(NOT_FOUND, f"no {source} version ever contained {name!r}", "check the name with `wfctl list`")
    return {"source": source, "versions": versions}


def _touches(manifest: Manifest, name: str) -> bool:
    return any(name in names for names in manifest.summary.values())


def _version_row(manifest: Manifest) -> dict[str, Any]:
    return {
        "version": manifest.version,
        "parent_version": manifest.parent,
        "created_at": manifest.created_at,
        "publisher": manifest.publisher,
        "git_commit": (manifest.git or {}).get("commit"),
        "git_branch": (manifest.git or {}).get("branch"),
        "summary": manifest.summary,
        "workflows": len(manifest.workflows),
        **manifest.extra,
    }


def show(store: Store, name: str, version: int | None = None, source: str = "CODE") -> dict[str, Any]:
    """One deployed definition, checked against its digest."""
    src = Source(store, source)
    if version is None:
        _pointer, manifest = src.live()
        if manifest is None:
            raise WfError(NOT_FOUND, f"nothing is published under {source}", "publish first: `wfctl publish`")
    else:
        manifest = src.verified(version)
    entry = manifest.workflows.get(name)
    if entry is None:
        raise WfError(NOT_FOUND, f"{name!r} is not in {source} version {manifest.version}",
                      "list what is deployed with `wfctl list`, or pick another --version from `wfctl history`")
    return {"name": name, "source": source, "version": manifest.version, "sha256": entry.sha256,
            "source_path": entry.source_path, "definition": src.definition(entry)}


def snapshot(store: Store) -> dict[str, Any]:
    """Everything live in one file, so a fork's pull request can plan without credentials."""
    out: dict[str, Any] = {"format": SNAPSHOT_FORMAT, "created_at": utc_now(), "store": store.describe()}
    for source, prefix in SOURCES.items():
        out[prefix] = _source_snapshot(Source(store, source))
    return out


def _source_snapshot(src: Source) -> dict[str, Any]:
    pointer, manifest = src.live()
    if manifest is None or pointer is None:
        return {"version": None, "manifest_sha256": None, "workflows": {}}
    entries = sorted(manifest.workflows.items())
    with ThreadPoolExecutor(max_workers=16) as pool:
        definitions = list(pool.map(lambda item: src.definition(item[1]), entries))
    return {
        "version": manifest.version,
        "manifest_sha256": pointer.sha256,
        "workflows": {
            name: {"sha256": entry.sha256, "source_path": entry.source_path, "definition": definition}
            for (name, entry), definition in zip(entries, definitions, strict=True)
        },
    }


def read_snapshot(path: Path) -> dict[str, Any]:
    hint = "pass a file written by `wfctl snapshot --out FILE`"
    try:
        data: dict[str, Any] = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise WfError(USAGE, f"cannot read snapshot {path}: {exc}", hint) from None
    if data.get("format") != SNAPSHOT_FORMAT:
        raise WfError(USAGE, f"{path} is not a wfctl snapshot", hint)
    return data
