"""Store URL resolution: ``s3://BUCKET[/PREFIX]``, ``file://PATH`` or a plain path.

Anything else is refused up front (WF808) rather than guessed at: a typo in a
store URL must not silently publish to a new local folder or another bucket.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from wfctl.errors import INVALID_CONFIG, WfError
from wfctl.store.base import Store
from wfctl.store.local import LocalStore

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
ACCEPTED = "accepted forms: s3://BUCKET/PREFIX, s3://BUCKET, file:///absolute/path, or a local directory path"


def open_store(url: str, *, endpoint_url: str | None = None) -> Store:
    """The store a URL names; ``endpoint_url`` (S3 only) points at an S3-compatible server.

    A relative plain path is relative to the current directory: callers resolve
    it against the repo root first.
    """
    if url.startswith("s3://"):
        bucket, prefix = _parse_s3(url)
        from wfctl.store.s3 import S3Store  # boto3 is slow to import: only when needed

        return S3Store(bucket, prefix, endpoint_url=_check_endpoint(endpoint_url))
    if url.startswith("file://"):
        return _local(_parse_file(url))
    if not url or _SCHEME.match(url) or "\0" in url:
        raise _invalid(url, "unsupported store URL")
    return _local(url)


def _parse_s3(url: str) -> tuple[str, str]:
    """Split and validate ``s3://BUCKET/PREFIX`` (trailing slash allowed)."""
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise _invalid(url, "no bucket name")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP.match(bucket):
        raise _invalid(url, f"{bucket!r} is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')")
    prefix = prefix[:-1] if prefix.endswith("/") else prefix
    if prefix:
        for segment in prefix.split("/"):
            if segment in ("", ".", "..") or "\\" in segment or any(ord(c) < 32 or c == "\x7f" for c in segment):
                raise _invalid(url, f"the prefix {prefix!r} has an empty, '.', '..' or unsafe segment")
    return bucket, prefix


def _parse_file(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc:
        raise _invalid(url, f"file URLs name a local path, not a host ({parts.netloc!r}); use file:///path")
    path = unquote(parts.path)
    if not path or parts.query or parts.fragment:
        raise _invalid(url, "a file URL needs a path and nothing else")
    return path


def _check_endpoint(endpoint_url: str | None) -> str | None:
    if endpoint_url is None:
        return None
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WfError(INVALID_CONFIG, f"invalid S3 endpoint URL {endpoint_url!r}",
                      "give the server's base URL, e.g. http://127.0.0.1:9000 or https://s3.example.com")
    return endpoint_url


def _local(path: str) -> Store:
    if "\0" in path:
        raise _invalid(path, "the path contains a NUL character")
    return LocalStore(path)


def _invalid(url: str, why: str) -> WfError:
    return WfError(INVALID_CONFIG, f"invalid store URL {url!r}: {why}", ACCEPTED)
