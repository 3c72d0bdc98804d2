"""The local directory store: the embedded default, no cloud account needed.

Durability and atomicity come from the file system: every write goes to a
temp file in the target directory, is fsynced, then renamed (``put``) or
hard-linked (``put_if_absent``: ``link`` fails if the target exists, so only
one creator wins). Compare-and-swap holds an ``fcntl.flock`` on a per-key lock
file while it re-reads and replaces; the kernel drops the lock when the
process dies, so a crash never leaves a stale lock behind.

Permissions follow the user's umask but are never world-writable: files are
created with mode 0o664 and directories with 0o775, before the umask.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from wfctl.errors import STORE_UNAVAILABLE, WfError
from wfctl.store.base import KEY, Blob, ConflictError, Store, check_key

LOCKS = ".locks"
_TMP_PREFIX = ".tmp-"
_FILE_MODE = 0o664  # before the umask: group may share, others never write
_DIR_MODE = 0o775


def etag_of(data: bytes) -> str:
    """The local etag: content hash, so equal bytes compare equal across processes."""
    return hashlib.sha256(data).hexdigest()


def check_prefix(prefix: str) -> str:
    """A list prefix is '' or a key-like path, optionally ending in '/'."""
    if prefix:
        check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


class LocalStore(Store):
    """A store in a local directory (created on first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.url = str(root)
        self.root = Path(root)

    # -- reads ---------------------------------------------------------------

    def get(self, key: str) -> Blob | None:
        path = self._path(key)
        with self._io("read", key):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                return None
        return Blob(data, etag_of(data))

    def exists(self, key: str) -> bool:
        path = self._path(key)
        with self._io("read", key):
            try:
                mode = path.stat().st_mode
            except FileNotFoundError:
                return False
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
            return True

    def list(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        base = prefix.rpartition("/")[0]
        top = self.root / base if base else self.root
        with self._io("list", prefix or "/"):
            keys = [k for k in self._walk(top) if k.startswith(prefix)]
        return iter(sorted(keys))

    # -- writes --------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        with self._io("write", key):
            self._replace(path, data)

    def put_if_absent(self, key: str, data: bytes) -> None:
        path = self._path(key)
        with self._io("write", key):
            self._create(key, path, data)

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> None:
        path = self._path(key)
        with self._io("write", key), self._locked(key):
            if etag is None:
                self._create(key, path, data)  # link, not replace: also safe against put_if_absent
                return
            current = self.get(key)
            if current is None or current.etag != etag:
                raise ConflictError(key)
            self._replace(path, data)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._io("delete", key):
            try:
                path.unlink()
            except FileNotFoundError:
                return
            _fsync_dir(path.parent)

    # -- helpers -------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _replace(self, path: Path, data: bytes) -> None:
        """Atomic replace via rename(2): readers see the old bytes or the new, never half."""
        tmp = self._write_temp(path.parent, data)
        try:
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        _fsync_dir(path.parent)

    def _create(self, key: str, path: Path, data: bytes) -> None:
        """Create-if-absent via link(2): atomic, and it never overwrites."""
        if path.exists():
            raise ConflictError(key)
        tmp = self._write_temp(path.parent, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ConflictError(key) from None
        finally:
            _unlink_quietly(tmp)
        _fsync_dir(path.parent)

    def _write_temp(self, folder: Path, data: bytes) -> Path:
        """Write ``data`` durably to a fresh hidden file in ``folder``; list() skips it."""
        _make_dirs(folder)
        tmp = folder / f"{_TMP_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return tmp

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        """Hold an exclusive flock on the key's lock file (released on close or death)."""
        folder = self.root / LOCKS
        _make_dirs(folder)
        name = key.replace("/", "%") if len(key) <= 200 else hashlib.sha256(key.encode()).hexdigest()
        fd = os.open(folder / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _walk(self, top: Path) -> Iterator[str]:
        """Keys below ``top``: hidden entries (locks, temp files) and non-keys are skipped."""
        for folder, dirs, files in os.walk(top, onerror=_raise):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if not name.startswith(".") and KEY.fullmatch(key):
                    yield key

    @contextmanager
    def _io(self, action: str, key: str) -> Iterator[None]:
        """Turn OS failures into WF804 naming the store, so users see what to fix."""
        try:
            yield
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise WfError(STORE_UNAVAILABLE, f"cannot {action} {key} in the local store {self.url}: {reason}",
                          f"check that {self.url} is a directory you can read and write, "
                          "and that nothing else created files or folders inside it") from None


def _raise(exc: OSError) -> None:
    """os.walk error handler: a missing top just means no keys; anything else is reported."""
    if not isinstance(exc, FileNotFoundError):
        raise exc


def _make_dirs(folder: Path) -> None:
    """mkdir -p with _DIR_MODE on every level (os.makedirs applies mode to the leaf only)."""
    if folder.is_dir():
        return
    _make_dirs(folder.parent)
    try:
        os.mkdir(folder, _DIR_MODE)
    except FileExistsError:
        if not folder.is_dir():
            raise
        return
    _fsync_dir(folder.parent)


def _fsync_dir(folder: Path) -> None:
    """Persist a rename/link/unlink: the directory entry itself must reach the disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
