"""S3-compatible object storage (AWS S3, Alibaba OSS, MinIO) through boto3.

One retry policy for every call, tunectl's shared one (`tunectl.retry`): throttling (503
SlowDown, 429, ...), 5xx, timeouts and dropped connections are retried with exponential
backoff and jitter, at most `ATTEMPTS` tries (about half a minute in all); botocore's own
retries are switched off so there is one policy, not two multiplied. Other errors (access
denied, no such bucket) are raised at once as `StorageError` with a sentence the user can
act on.

An outage (every try of a call transient) raises `StorageUnavailable`; callers that can
wait longer (the state backend's pushes, see `tunectl.states.remote`) keep trying, with
backoff, for the block's `retry_window` (default `DEFAULT_RETRY_WINDOW`, 10 minutes).

Credentials come from boto3's standard chain only (environment, shared config and
credentials files with `profile`, instance roles); nothing here reads or logs them.

boto3 is imported lazily: commands that do not touch S3 never pay for it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tunectl import retry
from tunectl.durations import parse_duration

T = TypeVar("T")

ATTEMPTS = 8
DEFAULT_RETRY_WINDOW = 600.0  # seconds; `retry_window` in `backend "s3"` / `storage "s3"`
MULTIPART_THRESHOLD = 8 * 1024 * 1024
_RETRY_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "TooManyRequests",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
    "502",
    "504",
}


class StorageError(Exception):
    """An S3 call failed for good (after retries, or at once when retrying cannot help)."""


class StorageUnavailable(StorageError):
    """Every try failed transiently (an outage): trying again later may succeed."""


class PreconditionFailed(StorageError):
    """A conditional write lost: the object exists (If-None-Match) or changed (If-Match)."""


@dataclass(frozen=True)
class Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _transient(exc: BaseException) -> bool:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, S3UploadFailedError):  # the transfer manager wraps the real error
        cause = exc.__cause__ or exc.__context__
        return cause is not None and _transient(cause)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return str(error.get("Code")) in _RETRY_CODES or status in (429, 500, 502, 503, 504)
    return isinstance(exc, ConnectionError | HTTPClientError)


def _brief(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code"))
        return f"{code} ({error.get('Message') or code})"
    return str(exc)


class S3:
    """A bucket client with tunectl's retry policy. Thread-safe (boto3 clients are)."""

    def __init__(self, settings: Mapping[str, Any], what: str) -> None:
        import boto3
        import botocore.config

        self.bucket = str(settings["bucket"])
        self.what = what  # e.g. 'storage "s3"', for messages
        session = boto3.session.Session(
            profile_name=settings.get("profile") or None,
            region_name=settings.get("region") or None,
        )
        style = "path" if settings.get("force_path_style") else "auto"
        config = botocore.config.Config(
            retries={"total_max_attempts": 1},
            s3={"addressing_style": style},
            connect_timeout=5,
            read_timeout=30,
        )
        endpoint = settings.get("endpoint") or None
        try:
            self.client = session.client("s3", endpoint_url=endpoint, config=config)
        except ValueError as exc:  # botocore: "Invalid endpoint: ..."
            raise StorageError(
                f"{what}: the endpoint {endpoint!r} is not usable ({exc}); write a URL such "
                'as "https://oss-cn-hangzhou.aliyuncs.com"'
            ) from None
        window = settings.get("retry_window")
        self.retry_window = parse_duration(str(window)) if window else DEFAULT_RETRY_WINDOW

    # -- the retry policy ---------------------------------------------------------------

    def call(
        self, action: str, fn: Callable[..., T], *, within: float | None = None, **kwargs: Any
    ) -> T:
        """`fn(**kwargs)` with retries; StorageError (or PreconditionFailed) when it fails.

        Transient errors are retried `ATTEMPTS` times, or, given `within`, for that many
        seconds (at least once); when they persist, `StorageUnavailable` is raised."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            if within is None:
                return retry.retry_call(lambda: fn(**kwargs), _transient, attempts=ATTEMPTS)
            return retry.retry_call(lambda: fn(**kwargs), _transient, attempts=None, within=within)
        except NoCredentialsError:
            raise StorageError(
                f"{self.what}: no credentials. Set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or a profile, as for any AWS tool."
            ) from None
        except ClientError as exc:
            if _transient(exc):
                raise StorageUnavailable(f"{self.what}: {action} failed: {_brief(exc)}") from None
            error = exc.response.get("Error", {})
            code = str(error.get("Code"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
                raise PreconditionFailed(f"{action}: precondition failed") from None
            raise StorageError(f"{self.what}: {action} failed: {_brief(exc)}") from None
        except (BotoCoreError, Boto3Error) as exc:
            kind = StorageUnavailable if _transient(exc) else StorageError
            raise kind(f"{self.what}: {action} failed: {exc}") from None

    # -- objects ------------------------------------------------------------------------

    def get(self, key: str, *, within: float | None = None) -> tuple[bytes, str] | None:
        """(body, ETag) of an object, or None when it does not exist."""
        from botocore.exceptions import ClientError

        def fetch() -> tuple[bytes, str] | None:
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            return response["Body"].read(), response["ETag"]

        return self.call(f"reading s3://{self.bucket}/{key}", fetch, within=within)

    def read_range(
        self, uri: str, start: int, length: int, *, within: float | None = None
    ) -> bytes:
        """Up to `length` bytes of the object `uri` (in any bucket the credentials reach)
        from byte `start`: empty when it does not exist (yet) or ends before `start`.
        `within` as for `call` (0: one try, for readers that try again on their own)."""
        from botocore.exceptions import ClientError

        location = parse_object_uri(uri)

        def fetch() -> bytes:
            try:
                response = self.client.get_object(
                    Bucket=location.bucket,
                    Key=location.key,
                    Range=f"bytes={start}-{start + length - 1}",
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in ("NoSuchKey", "404", "InvalidRange", "416"):
                    return b""
                raise
            body = response["Body"].read()
            # A server that ignores Range sends the whole object: keep the asked part.
            if "ContentRange" not in response:
                body = body[start : start + length]
            return bytes(body)

        return self.call(f"reading {uri}", fetch, within=within)

    def size(self, uri: str, *, within: float | None = None) -> int:
        """The size of the object `uri`, 0 when it does not exist."""
        from botocore.exceptions import ClientError

        location = parse_object_uri(uri)

        def fetch() -> int:
            try:
                response = self.client.head_object(Bucket=location.bucket, Key=location.key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return 0
                raise
            return int(response["ContentLength"])

        return self.call(f"reading {uri}", fetch, within=within)

    def put(
        self,
        key: str,
        body: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        within: float | None = None,
    ) -> str:
        """Write an object, conditionally; returns its new ETag."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        response = self.call(
            f"writing s3://{self.bucket}/{key}", self.client.put_object, within=within, **kwargs
        )
        return str(response["ETag"])

    def delete(self, key: str, *, within: float | None = None) -> None:
        self.call(
            f"deleting s3://{self.bucket}/{key}",
            self.client.delete_object,
            within=within,
            Bucket=self.bucket,
            Key=key,
        )

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self.call(
                f"listing s3://{self.bucket}/{prefix}", self.client.list_objects_v2, **kwargs
            )
            for item in page.get("Contents", []):
                yield str(item["Key"]), int(item["Size"])
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (which must end with '/'); returns how many."""
        assert prefix.endswith("/"), "a prefix to delete must be a directory"
        keys = [key for key, _ in self.list(prefix)]
        self._delete_keys(self.bucket, keys, f"under s3://{self.bucket}/{prefix}")
        return len(keys)

    def delete_uris(self, uris: Iterable[str]) -> None:
        """Delete exactly these objects (`s3://bucket/key`), 1000 a request; objects
        already gone count as deleted."""
        for bucket, keys in _by_bucket(uris).items():
            self._delete_keys(bucket, keys, f"in s3://{bucket}/")

    def _delete_keys(self, bucket: str, keys: Sequence[str], where: str) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            response = self.call(
                f"deleting {len(batch)} object(s) {where}",
                self.client.delete_objects,
                Bucket=bucket,
                Delete={"Objects": batch, "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise StorageError(
                    f"{self.what}: could not delete {first.get('Key')}: {first.get('Code')}"
                )

    def upload_file(self, path: Path, key: str) -> None:
        """Upload one file (multipart above 8 MiB) and verify what landed.

        The SDK sends a checksum with every request or part, which the store verifies; on
        top of that the object's size and the SHA-256 recorded in its metadata are checked
        against the local file after the upload.
        """
        from boto3.s3.transfer import TransferConfig

        digest = _sha256(path)
        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_THRESHOLD,
            use_threads=False,
        )
        self.call(
            f"uploading {path.name} to s3://{self.bucket}/{key}",
            self.client.upload_file,
            Filename=str(path),
            Bucket=self.bucket,
            Key=key,
            ExtraArgs={"Metadata": {"sha256": digest}},
            Config=config,
        )
        head = self.call(
            f"checking s3://{self.bucket}/{key}",
            self.client.head_object,
            Bucket=self.bucket,
            Key=key,
        )
        size = path.stat().st_size
        if int(head["ContentLength"]) != size or head.get("Metadata", {}).get("sha256") != digest:
            raise StorageError(
                f"{self.what}: s3://{self.bucket}/{key} does not match {path} after upload"
            )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


OBJECT_SCHEMES = ("s3://", "oss://")


def is_object_uri(text: str) -> bool:
    """Whether `text` names an object in S3-compatible storage (`s3://` or OSS's `oss://`,
    both read with the configured `storage "s3"` endpoint and credentials)."""
    return text.startswith(OBJECT_SCHEMES)


def parse_object_uri(uri: str) -> Location:
    """`s3://bucket/key` or `oss://bucket/key` as a Location; ValueError otherwise."""
    scheme = next((s for s in OBJECT_SCHEMES if uri.startswith(s)), None)
    bucket, sep, key = uri[len(scheme or "") :].partition("/")
    if scheme is None or not bucket or not sep or not key:
        raise ValueError(f"{uri!r} is not an s3://bucket/key or oss://bucket/key URI.")
    return Location(bucket, key)


def parse_uri(uri: str) -> Location:
    """`s3://bucket/key` as a Location; ValueError for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI.")
    return parse_object_uri(uri)


def _by_bucket(uris: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for uri in uris:
        location = parse_uri(uri)
        grouped.setdefault(location.bucket, []).append(location.key)
    return grouped


def join(prefix: str, *parts: str) -> str:
    """An object key under `prefix` ('' or ending in '/')."""
    prefix = prefix.strip("/")
    return "/".join(p for p in (prefix, *parts) if p)


def files_under(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, relative posix name) of every file under `root`, in a stable order."""
    for dirpath, _dirs, names in sorted(os.walk(root)):
        for name in sorted(names):
            path = Path(dirpath) / name
            yield path, path.relative_to(root).as_posix()
