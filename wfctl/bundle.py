"""Bundles in the store: content-addressed objects, immutable manifests, and a
compare-and-swap pointer per source (SPEC section 4).

Layout under a source prefix (``code/`` or ``manual/``)::

    current.json            pointer to the live version   (compare-and-swap)
    versions/<N>.json       manifest of version N         (create-if-absent)
    objects/<sha256>.json   one resolved workflow         (content-addressed)

Every read is checked: objects against their key's sha256, the live manifest
against the pointer's sha256, every manifest against its own recorded digest.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from wfctl.errors import INTEGRITY, NOT_FOUND, WfError
from wfctl.model import ResolvedWorkflow, canonical_json
from wfctl.store.base import ConflictError, Store

MANIFEST_FORMAT = "wfctl.manifest/v1"
POINTER_FORMAT = "wfctl.pointer/v1"
SOURCES = {"CODE": "code", "MANUAL": "manual"}
# A manifest whose pointer never moved is abandoned once it is this old: a
# publish writes its pointer one request after its manifest.
ORPHAN_SECONDS = 120


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ACTIONS = ("create", "update", "delete")


def changes_between(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    """Names created, updated and deleted between two name -> digest maps."""
    return {
        "create": sorted(set(after) - set(before)),
        "update": sorted(n for n in set(after) & set(before) if after[n] != before[n]),
        "delete": sorted(set(before) - set(after)),
    }


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Entry:
    """One workflow of a version: its content digest and where it came from."""

    sha256: str
    object: str
    source_path: str
    owner: str = ""
    schedule: str | None = None  # "cron (timezone)", so listings need no object reads
    changed: dict[str, Any] | None = field(default=None, hash=False, compare=False)  # version, by, at

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "object": self.object, "source_path": self.source_path,
                "owner": self.owner, "schedule": self.schedule, "changed": self.changed}

    @classmethod
    def for_workflow(cls, prefix: str, workflow: ResolvedWorkflow) -> Entry:
        digest = workflow.sha256
        return cls(digest, f"{prefix}/objects/{digest}.json", workflow.source_path, workflow.owner, workflow.schedule)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Entry:
        return cls(raw["sha256"], raw["object"], raw["source_path"], raw.get("owner", ""), raw.get("schedule"),
                   raw.get("changed"))


@dataclass
class Manifest:
    """An immutable version of one source: which workflow content was live, and who made it."""

    source: str
    version: int
    parent: int | None
    parent_sha256: str | None
    created_at: str
    publisher: str
    workflows: dict[str, Entry]
    git: dict[str, Any] | None = None
    summary: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "source": self.source,
            "version": self.version,
            "parent_version": self.parent,
            "parent_sha256": self.parent_sha256,
            "created_at": self.created_at,
            "publisher": self.publisher,
            "git": self.git,
            "summary": self.summary,
            "workflows": {name: e.to_json() for name, e in sorted(self.workflows.items())},
            **self.extra,
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON with a self-digest, so corruption of an old version is caught too."""
        body = self.body()
        return canonical_json({**body, "self_sha256": sha256(canonical_json(body))})

    @property
    def digests(self) -> dict[str, str]:
        return {name: e.sha256 for name, e in self.workflows.items()}

    @classmethod
    def from_bytes(cls, data: bytes, key: str) -> Manifest:
        try:
            raw = json.loads(data)
            claimed = raw.pop("self_sha256")
            if raw.get("format") != MANIFEST_FORMAT or sha256(canonical_json(raw)) != claimed:
                raise ValueError("digest mismatch")
            entries = {n: Entry.from_json(e) for n, e in raw["workflows"].items()}
            known = {"format", "source", "version", "parent_version", "parent_sha256", "created_at", "publisher",
                     "git", "summary", "workflows"}
            return cls(raw["source"], raw["version"], raw["parent_version"], raw["parent_sha256"], raw["created_at"],
                       raw["publisher"], entries, raw.get("git"), raw.get("summary", {}),
                       {k: v for k, v in raw.items() if k not in known})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise integrity_error(key, f"manifest is corrupt or was tampered with ({exc})") from None


@dataclass(frozen=True)
class Pointer:
    """The live version of a source, plus the etag a compare-and-swap must match."""

    version: int
    sha256: str
    etag: str = field(compare=False)
    writer: str | None = field(default=None, compare=False)  # a nonce: which attempt wrote it

    @staticmethod
    def encode(version: int, manifest_sha: str, writer: str) -> bytes:
        return canonical_json({"format": POINTER_FORMAT, "version": version, "manifest_sha256": manifest_sha,
                               "writer": writer})


def integrity_error(key: str, problem: str) -> WfError:
    return WfError(INTEGRITY, f"integrity check failed for {key}: {problem}",
                   "do not use this store until it is repaired: restore the key from a backup or versioning, "
                   "then run `wfctl doctor`")


class Source:
    """One source prefix (CODE or MANUAL) of a store: pointer, manifests, objects."""

    def __init__(self, store: Store, source: str = "CODE") -> None:
        self.store = store
        self.source = source
        self.prefix = SOURCES[source]

    @property
    def pointer_key(self) -> str:
        return f"{self.prefix}/current.json"

    def manifest_key(self, version: int) -> str:
        return f"{self.prefix}/versions/{version}.json"

    def object_key(self, digest: str) -> str:
        return f"{self.prefix}/objects/{digest}.json"

    # --- reads -------------------------------------------------------------

    def pointer(self) -> Pointer | None:
        blob = self.store.get(self.pointer_key)
        if blob is None:
            return None
        try:
            raw = json.loads(blob.data)
            if raw["format"] != POINTER_FORMAT:
                raise ValueError(f"unknown format {raw['format']!r}")
            return Pointer(int(raw["version"]), str(raw["manifest_sha256"]), blob.etag, raw.get("writer"))
        except (ValueError, KeyError, TypeError) as exc:
            raise integrity_error(self.pointer_key, f"pointer is unreadable ({exc})") from None

    def live(self) -> tuple[Pointer | None, Manifest | None]:
        """The live pointer and its manifest (checked against the pointer's digest)."""
        pointer = self.pointer()
        if pointer is None:
            return None, None
        return pointer, self.manifest(pointer.version, expect_sha=pointer.sha256)

    def manifest(self, version: int, expect_sha: str | None = None) -> Manifest:
        key = self.manifest_key(version)
        blob = self.store.get(key)
        if blob is None:
            raise WfError(NOT_FOUND, f"{self.source} version {version} does not exist",
                          "list the versions with `wfctl history`")
        if expect_sha is not None and sha256(blob.data) != expect_sha:
            raise integrity_error(key, "its digest does not match the one recorded by the version that points at it")
        manifest = Manifest.from_bytes(blob.data, key)
        if manifest.version != version or manifest.source != self.source:
            raise integrity_error(key, f"it claims to be {manifest.source} version {manifest.version}")
        return manifest

    def definition(self, entry: Entry) -> dict[str, Any]:
        """A workflow object, refused unless its bytes hash to its digest."""
        key = self.object_key(entry.sha256)
        blob = self.store.get(key)
        if blob is None:
            raise integrity_error(key, "the object a manifest lists is missing")
        if sha256(blob.data) != entry.sha256:
            raise integrity_error(key, "its content does not match its sha256")
        loaded: dict[str, Any] = json.loads(blob.data)
        return loaded

    def verified(self, version: int) -> Manifest:
        """Version ``version``'s manifest, verified through the digest chain from the
        live pointer down (its own self-digest alone could have been recomputed by
        whoever altered it)."""
        for manifest in self.history():
            if manifest.version == version:
                return manifest
            if manifest.version < version:
                break
        raise WfError(NOT_FOUND, f"{self.source} version {version} does not exist",
                      "list the versions with `wfctl history`")

    def history(self) -> Iterator[Manifest]:
        """Manifests from the live version back to version 1, each checked against
        the digest its child (or the pointer) recorded."""
        pointer = self.pointer()
        if pointer is None:
            return
        version: int = pointer.version
        expect: str | None = pointer.sha256
        while version:
            manifest = self.manifest(version, expect_sha=expect)
            yield manifest
            version, expect = manifest.parent or 0, manifest.parent_sha256

    # --- the write protocol ----------------------------------------------

    def commit(self, base: Pointer | None, base_manifest: Manifest | None, draft: Draft) -> Manifest | None:
        """Make ``draft`` the live version, or return None if it equals the live one.

        Objects first, manifest next (create-if-absent), pointer last (compare-and-swap
        on the etag read at the start): a crash anywhere leaves the previous version
        live, and a loser of a race raises ConflictError having changed nothing live.
        """
        if base_manifest is not None and base_manifest.digests == draft.digests and not draft.force_new:
            return None
        self._upload(draft, set(base_manifest.digests.values()) if base_manifest else set())
        manifest = self._write_manifest(base, base_manifest, draft)
        digest = sha256(manifest.to_bytes())
        writer = secrets.token_hex(16)
        try:
            self.store.put_if_match(self.pointer_key, Pointer.encode(manifest.version, digest, writer),
                                    base.etag if base else None)
        except ConflictError:
            # A retried request whose first attempt did land (its answer was lost) also
            # ends in a precondition failure: then the pointer carries our own nonce.
            live = self.pointer()
            if live is None or live.writer != writer:
                raise
        return manifest

    def _upload(self, draft: Draft, present: set[str]) -> None:
        """Upload only objects the store lacks, in parallel (S3 round trips dominate)."""
        missing = [d for d in sorted(set(draft.digests.values())) if d not in present]
        if not missing:
            return
        from concurrent.futures import ThreadPoolExecutor

        def upload(digest: str) -> None:
            key = self.object_key(digest)
            if not self.store.exists(key):
                if digest not in draft.payloads:
                    raise integrity_error(key, "an object the new version needs is missing from the store")
                self.store.put(key, draft.payloads[digest])
            if draft.progress:
                draft.progress(1, len(missing))

        with ThreadPoolExecutor(max_workers=min(16, len(missing))) as pool:
            list(pool.map(upload, missing))

    def _write_manifest(self, base: Pointer | None, base_manifest: Manifest | None, draft: Draft) -> Manifest:
        """Create version N+1 with create-if-absent.

        If N+1 exists while the pointer is still at N, a publish crashed between
        its manifest and its pointer (or is in that one-request window right
        now). An identical orphan is adopted; a different one that is older than
        ORPHAN_SECONDS is skipped over; a fresh one means we lost a race.
        """
        version = (base.version if base else 0) + 1
        manifest = draft.manifest(self.source, version, base, base_manifest)
        while True:
            try:
                self.store.put_if_absent(self.manifest_key(manifest.version), manifest.to_bytes())
                return manifest
            except ConflictError:
                blob = self.store.get(self.manifest_key(manifest.version))
                if blob is None:  # S3's 409: another create of this key is still in flight
                    raise
                existing = Manifest.from_bytes(blob.data, self.manifest_key(manifest.version))
                if self.pointer() != base or existing.parent_sha256 != manifest.parent_sha256:
                    raise
                if existing.digests == manifest.digests:
                    return existing  # our own crashed attempt, or an identical twin: finish it
                if _age_seconds(existing.created_at) < ORPHAN_SECONDS:
                    raise
                manifest.version += 1


def _age_seconds(created_at: str) -> float:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(created_at.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return float("inf")


@dataclass
class Draft:
    """What a new version should contain, before it has a number."""

    workflows: dict[str, Entry]
    payloads: Mapping[str, bytes]
    publisher: str
    git: dict[str, Any] | None = None
    summary: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    force_new: bool = False
    progress: Callable[[int, int], None] | None = None  # (advance, total)

    @property
    def digests(self) -> dict[str, str]:
        return {name: e.sha256 for name, e in self.workflows.items()}

    def manifest(self, source: str, version: int, base: Pointer | None, base_manifest: Manifest | None) -> Manifest:
        """Each entry remembers the version, person and time of its last change,
        so ``status`` and ``history NAME`` need no walk through old versions."""
        now = utc_now()
        before = base_manifest.workflows if base_manifest else {}
        entries = {}
        for name, entry in self.workflows.items():
            old = before.get(name)
            same = old is not None and old.sha256 == entry.sha256 and old.changed
            changed = old.changed if same and old else {"version": version, "by": self.publisher, "at": now}
            entries[name] = replace(entry, changed=changed)
        return Manifest(source, version, base.version if base else None, base.sha256 if base else None, now,
                        self.publisher, entries, self.git, self.summary, self.extra)
