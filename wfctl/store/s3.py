"""The S3 store: AWS S3 or any S3-compatible server, through boto3.

Races are decided by the server with conditional writes (``IfNoneMatch="*"``
to create, ``IfMatch=<etag>`` to replace), so no lock is ever held. Every
request goes through :meth:`S3Store._call`, which turns botocore failures into
one WF804 that names the endpoint, region and *source* of the credentials
(never a key id or secret), or into :class:`ConflictError` for a lost race.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.handlers import add_expect_header

from wfctl.config import redact_url
from wfctl.errors import STORE_UNAVAILABLE, WfError
from wfctl.store.base import KEY, Blob, ConflictError, Store, check_key
from wfctl.store.local import check_prefix

T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 5
_LOADER = botocore.loaders.create_loader()
# What the server says when a conditional write loses: AWS answers 412, or 409
# when another conditional write on the key is in flight; IfMatch on a missing
# key is 404 NoSuchKey on AWS and moto (SeaweedFS says 412).
_LOST_RACE_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_LOST_RACE_STATUS = {409, 412}
_MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}

_REASONS = {
    "NoSuchBucket": "the bucket does not exist",
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access denied",
    "403": "access denied",
    "Forbidden": "access denied",
    "InvalidAccessKeyId": "the server does not know the access key id",
    "SignatureDoesNotMatch": "the secret key does not match the access key id",
    "ExpiredToken": "the credentials have expired",
    "TokenRefreshRequired": "the credentials have expired",
    "RequestExpired": "the request expired (is the clock right?)",
    "InvalidToken": "the session token is invalid",
    "PermanentRedirect": "the bucket is in another region",
    "AuthorizationHeaderMalformed": "the bucket is in another region or the credentials are malformed",
}


class S3Store(Store):
    """Keys live at ``PREFIX/key`` in one bucket."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 max_attempts: int | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._root = f"{self.prefix}/" if self.prefix else ""
        self.endpoint_url = endpoint_url  # as given; None: boto3's choice (AWS_ENDPOINT_URL_S3 or AWS)
        self._custom_endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.session, self.client = self._connect(endpoint_url, max_attempts)
        # Our bodies are small documents: waiting for "100 Continue" costs a round trip per
        # write, and up to a second when a busy server (SeaweedFS under contention) is slow to send it.
        self.client.meta.events.unregister("before-call.s3", add_expect_header)

    # -- reads ---------------------------------------------------------------

    def get(self, key: str) -> Blob | None:
        name = self._key(key)

        def fetch() -> Blob:
            reply = self.client.get_object(Bucket=self.bucket, Key=name)
            return Blob(reply["Body"].read(), reply["ETag"])

        return self._call("read", name, fetch, missing={"NoSuchKey"})

    def exists(self, key: str) -> bool:
        name = self._key(key)
        found = self._call("check", name, lambda: self.client.head_object(Bucket=self.bucket, Key=name),
                           missing=_MISSING_KEY_CODES)
        return found is not None

    def list(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        start = self._root + prefix

        def collect() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

        names = self._call("list", start or "/", collect) or []
        keys = (name[len(self._root):] for name in names)
        return iter(sorted(k for k in keys if KEY.fullmatch(k)))

    # -- writes --------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        name = self._key(key)
        self._call("write", name, lambda: self.client.put_object(Bucket=self.bucket, Key=name, Body=data))

    def put_if_absent(self, key: str, data: bytes) -> None:
        self.put_if_match(key, data, None)

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> None:
        name = self._key(key)
        condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
        lost = {"NoSuchKey"} if etag is not None else set()
        self._call("write", name, lambda: self.client.put_object(Bucket=self.bucket, Key=name, Body=data, **condition),
                   conflict=key, lost=lost)

    def delete(self, key: str) -> None:
        name = self._key(key)
        self._call("delete", name, lambda: self.client.delete_object(Bucket=self.bucket, Key=name))

    def describe(self) -> str:
        return f"{self.url} (endpoint {self._endpoint()}, region {self.client.meta.region_name})"

    # -- the one door to S3 --------------------------------------------------

    def _call(self, action: str, name: str, request: Callable[[], T], *, missing: set[str] | None = None,
              conflict: str | None = None, lost: set[str] | None = None) -> T | None:
        """Run one S3 request; None if the key is ``missing``; ConflictError if a conditional write lost."""
        try:
            return request()
        except ClientError as exc:
            code, status = _code(exc), _status(exc)
            if missing and code in missing:
                return None
            if conflict is not None and (code in _LOST_RACE_CODES or status in _LOST_RACE_STATUS
                                         or code in (lost or set())):
                raise ConflictError(conflict) from None
            raise self._unavailable(action, name, _client_reason(exc)) from None
        except BotoCoreError as exc:
            raise self._unavailable(action, name, self._transport_reason(exc)) from None

    def _unavailable(self, action: str, name: str, reason: str) -> WfError:
        """WF804 with where we went and as whom (by source), scrubbed of any secret."""
        source, secrets = self._credentials()
        message = f"cannot {action} s3://{self.bucket}/{name}: {reason}"
        hint = (f"endpoint {self._endpoint()}, region {self.client.meta.region_name}, credentials: {source}; "
                "check the bucket name and region, that the endpoint is reachable, "
                "and that these credentials may read and write the bucket")
        return WfError(STORE_UNAVAILABLE, _scrub(message, secrets), _scrub(hint, secrets))

    def _transport_reason(self, exc: BotoCoreError) -> str:
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return "no usable AWS credentials were found"
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
            return f"could not connect to {self._endpoint()}"
        if isinstance(exc, ReadTimeoutError):
            return f"{self._endpoint()} did not answer in time"
        return str(exc)

    # -- helpers -------------------------------------------------------------

    def _key(self, key: str) -> str:
        return self._root + check_key(key)

    def _connect(self, endpoint_url: str | None, max_attempts: int | None) -> tuple[boto3.session.Session, Any]:
        """Session and client (no request is sent yet); a bad profile is reported, not raised raw."""
        try:
            session = _new_session(os.environ.get("AWS_PROFILE") or None)
            client = session.client("s3", region_name=_region(session), endpoint_url=endpoint_url,
                                    config=self._config(max_attempts))
        except BotoCoreError as exc:  # e.g. ProfileNotFound
            raise WfError(STORE_UNAVAILABLE, f"cannot set up AWS access for {self.url}: {exc}",
                          "check AWS_PROFILE and your AWS config files (~/.aws/config, ~/.aws/credentials)") from None
        return session, client

    def _config(self, max_attempts: int | None) -> Config:
        # Attempts count the first try, as AWS_MAX_ATTEMPTS does (botocore's "max_attempts" would count retries).
        attempts = max_attempts or _env_int("AWS_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS
        # Servers on 127.0.0.1 or a private host cannot do bucket.host virtual addressing.
        s3 = {"addressing_style": "path"} if self._custom_endpoint else None
        return Config(retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=5, read_timeout=30,
                      s3=s3, max_pool_connections=32)  # uploads run 16 at a time

    def _endpoint(self) -> str:
        url = redact_url(str(self.client.meta.endpoint_url))
        return url if self._custom_endpoint else f"AWS default ({url})"

    def _credentials(self) -> tuple[str, tuple[str, ...]]:
        """How boto3 found credentials (env, shared-credentials-file, iam-role...) and the
        values to scrub from messages; the values themselves never leave this method."""
        try:
            credentials = self.session.get_credentials()
            if credentials is None:
                return "none found", ()
            frozen = credentials.get_frozen_credentials()
        except Exception:  # a broken config file must not hide the original error
            return "unknown (the credential chain failed)", ()
        return credentials.method, tuple(v for v in (frozen.access_key, frozen.secret_key, frozen.token) if v)


def _new_session(profile: str | None) -> boto3.session.Session:
    """A fresh session (credentials resolved anew) sharing one model loader: parsing
    botocore's S3 model costs ~150 ms per session, cached it costs nothing."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    session = boto3.session.Session(botocore_session=core, profile_name=profile)
    _LOADER.search_paths[:] = list(dict.fromkeys(_LOADER.search_paths))  # boto3 appends its data dir each time
    return session


def _region(session: boto3.session.Session) -> str | None:
    """AWS_REGION wins (the SDK-wide name), then AWS_DEFAULT_REGION, then the profile's."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or session.region_name


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Belt and braces: no server or botocore text may carry a key id or secret out."""
    for secret in secrets:
        if len(secret) >= 8:  # real keys are 16+ characters; short ones would mangle words
            text = text.replace(secret, "***")
    return text


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _client_reason(exc: ClientError) -> str:
    code = _code(exc)
    if code in _REASONS:
        return f"{_REASONS[code]} ({code})"
    message = exc.response.get("Error", {}).get("Message") or f"HTTP {_status(exc)}"
    return f"{code}: {message}" if code else str(message)

