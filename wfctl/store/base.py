"""The store interface and the key rules every backend enforces."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from wfctl.errors import CONFLICT, INTEGRITY, WfError

# Keys are built only from validated names, versions and hex digests; this is
# the last line of defence: nothing else can reach a file system or bucket.
KEY = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")


def check_key(key: str) -> str:
    if not KEY.fullmatch(key) or ".." in key or len(key) > 512:
        raise WfError(INTEGRITY, f"refusing unsafe store key {key!r}", "this is a bug in wfctl: please report it")
    return key


@dataclass(frozen=True)
class Blob:
    """Bytes read from the store plus the version tag that a conditional write must match."""

    data: bytes
    etag: str


class ConflictError(WfError):
    """A conditional write lost the race: someone else changed the key first."""

    def __init__(self, key: str) -> None:
        super().__init__(CONFLICT, f"the store changed underneath: {key} was written by someone else",
                         "another publish or change won the race; re-run the command to build on it")
        self.key = key


class Store(ABC):
    """A key/value store with create-if-absent and compare-and-swap writes.

    ``put_if_absent`` and ``put_if_match`` are the only writes that can decide
    a race; they raise :class:`ConflictError` when they lose. Every other write
    (content-addressed objects, derived views) is idempotent.
    """

    url: str

    @abstractmethod
    def get(self, key: str) -> Blob | None:
        """The key's bytes and etag, or None if absent."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Unconditional, atomic replace (readers see old or new, never half)."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> None:
        """Create the key; ConflictError if it exists."""

    @abstractmethod
    def put_if_match(self, key: str, data: bytes, etag: str | None) -> None:
        """Replace the key only if its etag is still ``etag`` (None: only if absent)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the key if present."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix`` (a folder-like prefix ending in '/'), sorted."""

    def describe(self) -> str:
        """Where this store is, for messages (never includes a secret)."""
        return self.url
