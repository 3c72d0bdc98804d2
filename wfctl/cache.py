"""The validation cache: per-file analysis and per-workflow resolution, keyed by content.

A warm ``validate``, ``plan`` or ``publish`` on a large repo reads and hashes every
file but loads and resolves only what changed. Two memos live in one JSON file,
``.wfctl/cache/validation.json``:

* **files**: repo-relative path -> the SHA-256 of its bytes and what analysis found
  there (diagnostics, and per document its kind, name, schema verdict and the
  components and templates it names). A file whose bytes match is not loaded; its
  documents are *deferred* and load themselves if resolution or a diagnostic needs them.
* **resolved**: a workflow document's content key -> its digest, owner, schedule,
  and every catalog lookup its resolution made (kind, name -> the content key found,
  or "" for none). The entry is reused only if every lookup finds the same content
  again, so a changed component or template re-resolves exactly its users. Workflows
  with any diagnostic are never memoised: their positions come from a fresh load.

Everything is thrown away when the *fingerprint* changes: wfctl's own code and
schemas, and the versions of Python and of the libraries that judge documents. The
cache is JSON, never pickle, and is ignored when git tracks it: a pull request must
not be able to vouch for its own files. Writes are atomic (temp file + rename); an
unreadable or foreign cache is simply a cold run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import sys
from dataclasses import astuple
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema_rs

from wfctl import schemas
from wfctl.analyze import FileAnalysis, Reloader
from wfctl.diagnostics import Diagnostic
from wfctl.model import Document, Reference
from wfctl.resolve import Catalog, Settled

CACHE_DIR = ".wfctl/cache"
CACHE_FILE = "validation.json"
FORMAT = 1
JUDGES = ("pyyaml", "jsonschema-rs", "jsonschema", "croniter")  # libraries whose verdicts we keep


def _row(*items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "prefixItems": list(items), "minItems": len(items), "maxItems": len(items)}


_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
# What save() writes; anything else (a hand edit, another wfctl's bug) makes a cold run, never a traceback.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "fingerprint", "files", "resolved"],
    "properties": {
        "files": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["digest", "wfctl", "diagnostics", "documents"],
            "properties": {
                "digest": _STR, "wfctl": {"type": "boolean"},
                "diagnostics": {"type": "array", "items": _row(
                    _STR, _INT, _INT, {"enum": ["error", "warning"]}, _STR, _STR, _STR)},
                "documents": {"type": "array", "items": _row(
                    _STR, _STR, _INT, {"type": "boolean"}, {"type": "array", "items": _row(_STR, _STR)})},
            }}},
        "resolved": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["lookups", "sha256", "owner", "schedule"],
            "properties": {
                "lookups": {"type": "array", "items": _row(_STR, _STR, _STR)},
                "sha256": _STR, "owner": _STR, "schedule": {"type": ["string", "null"]},
            }}},
    },
}


@cache
def fingerprint() -> str:
    """Changes whenever a cached verdict could: wfctl's code or schemas, Python, or a judge's version."""
    digest = hashlib.sha256(f"{FORMAT} {sys.version_info[:2]} {schemas.fingerprint()}".encode())
    for name in JUDGES:
        try:
            digest.update(f"{name}={metadata.version(name)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=-;".encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class ValidationCache:
    """One run's view of the cache: what it may reuse, and what it learnt."""

    def __init__(self, root: Path, files: dict[str, Any] | None = None, resolved: dict[str, Any] | None = None,
                 enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled
        self._old_files = files or {}
        self._old_resolved = resolved or {}
        self._files: dict[str, Any] = {}
        self._resolved: dict[str, Any] = {}
        self.reloader = Reloader(root)

    @classmethod
    def open(cls, root: Path, enabled: bool = True) -> ValidationCache:
        """The cache under ``root``, or an empty one (disabled, missing, stale, corrupt, tracked by git)."""
        if not enabled:
            return cls(root, enabled=False)
        path = root / CACHE_DIR / CACHE_FILE
        try:
            raw = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return cls(root)
        if not isinstance(raw, dict) or raw.get("fingerprint") != fingerprint() or _tracked_by_git(root):
            return cls(root)
        if not jsonschema_rs.validator_for(SCHEMA).is_valid(raw):
            return cls(root)
        return cls(root, raw["files"], raw["resolved"])

    # -- files -------------------------------------------------------------------------------

    def known(self, rel: str) -> str:
        """The digest of ``rel``'s bytes when last analysed, or ""."""
        entry = self._old_files.get(rel)
        return entry["digest"] if entry else ""

    def restore(self, analysis: FileAnalysis) -> FileAnalysis:
        """The cached analysis of a file that came back ``unchanged``, its documents deferred."""
        rel, digest = analysis.file, analysis.digest
        entry = self._old_files[rel]
        self._files[rel] = entry
        documents = [
            Document(kind, name, rel, index, None, None, schema_ok=schema_ok, digest=digest,
                     load=self.reloader.loader(rel, digest, index), references=[(k, n) for k, n in references])
            for kind, name, index, schema_ok, references in entry["documents"]]
        diagnostics = [Diagnostic(*fields) for fields in entry["diagnostics"]]
        return FileAnalysis(rel, documents, diagnostics, entry["wfctl"], digest)

    def adopt(self, analysis: FileAnalysis) -> FileAnalysis:
        """The cached analysis of a file that came back unchanged; a fresh one is remembered."""
        if analysis.unchanged:
            return self.restore(analysis)
        self.remember(analysis)
        return analysis

    def remember(self, analysis: FileAnalysis) -> None:
        """Keep a fresh analysis (files outside the repo, or read without a digest, are not kept)."""
        rel = analysis.file
        if not self.enabled or not analysis.digest or rel.startswith(("/", "../")) or "/../" in rel:
            return
        self._files[rel] = {
            "digest": analysis.digest,
            "wfctl": analysis.wfctl,
            "diagnostics": [list(astuple(d)) for d in analysis.diagnostics],
            "documents": [[d.kind, d.name, d.index, d.schema_ok, [list(r) for r in d.references]]
                          for d in analysis.documents],
        }

    # -- resolution (wfctl.resolve.Memo) -----------------------------------------------------

    def recall(self, doc: Document, catalog: Catalog) -> Settled | None:
        entry = self._old_resolved.get(doc.key) if doc.key else None
        if entry is None:
            return None
        lookups: dict[Reference, str | None] = {}
        for kind, name, key in entry["lookups"]:
            found = catalog.get(kind, name)
            if (found.key if found else "") != key:
                return None
            lookups[(kind, name)] = key
        return Settled(entry["sha256"], entry["owner"], entry["schedule"], [], lookups)

    def keep(self, doc: Document, settled: Settled) -> None:
        if self.enabled and doc.key:
            self._resolved[doc.key] = {
                "lookups": [[kind, name, key] for (kind, name), key in sorted(settled.lookups.items())],
                "sha256": settled.sha256, "owner": settled.owner, "schedule": settled.schedule,
            }

    # -- saving ------------------------------------------------------------------------------

    def save(self) -> None:
        """Write what this run used and learnt, if anything differs; never fails the command."""
        if not self.enabled or (self._files == self._old_files and self._resolved == self._old_resolved):
            return
        body = {"format": FORMAT, "fingerprint": fingerprint(), "files": self._files, "resolved": self._resolved}
        folder = self.root / CACHE_DIR
        temp = folder / f".validation-{secrets.token_hex(8)}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o664), "wb") as out:
                out.write(json.dumps(body, separators=(",", ":")).encode("utf-8"))
            os.replace(temp, folder / CACHE_FILE)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)  # a read-only checkout still validates; it just stays cold


def _tracked_by_git(root: Path) -> bool:
    """A cache committed to the repo came from whoever committed it: never trust it."""
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", CACHE_DIR], capture_output=True,
                                timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False  # no git: nothing can be committed either
    return bool(listed.stdout)
