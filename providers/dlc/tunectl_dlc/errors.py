"""What a failed DLC API call means: worth retrying or not, and what to tell the user.

The SDK raises `ClientException` (HTTP 4xx), `ServerException` (5xx), `ThrottlingException`
(a retry header), and wraps everything that never got an answer in `UnretryableException`:
a refused or dropped connection, a timeout, an unreachable proxy, and also credentials the
default chain could not find. The cause is inside (`inner_exception`, then `__cause__`):

- transient (retried with tunectl's policy): throttling (`Throttling*`, 408, 429), 5xx,
  connections refused, reset or timed out, names that do not resolve;
- permanent (apply stops at once, with the fix in the message): no credentials found,
  a proxy that fails (`HTTP_PROXY`/`HTTPS_PROXY`; the SDK ignores `NO_PROXY`), a key the
  service does not know or a signature it refuses, a missing permission (403), and a
  request it refuses (other 4xx: a parameter, a workspace, a quota).

`DlcError` keeps the HTTP status and code, so callers decide "not found" from the status.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from tunectl.providers.base import ProviderError

CREDENTIALS = (
    "Alibaba Cloud credentials come from the default chain: the environment "
    "(ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, plus "
    "ALIBABA_CLOUD_SECURITY_TOKEN for an STS token), a profile in "
    "~/.alibabacloud/credentials.ini (or the file ALIBABA_CLOUD_CREDENTIALS_FILE names; "
    "ALIBABA_CLOUD_PROFILE picks the section) or in the aliyun CLI's ~/.aliyun/config.json, "
    "or the RAM role of an ECS instance"
)
_KEY_CODES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "MissingAuthorization",
    "InvalidAuthorization",
)
_PERMISSION_CODES = ("Forbidden", "NoPermission", "Unauthorized", "AccessDenied")


class DlcError(ProviderError):
    """A failed DLC call, with the HTTP status and error code when the service answered."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, permanent=permanent)
        self.status = status
        self.code = code

    @property
    def not_found(self) -> bool:
        """The service answered 404 about the resource (not about the caller's key)."""
        return self.status == 404 and not _is(self.code, _KEY_CODES)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: the SDK's `inner_exception`, then `__cause__`/`__context__`."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 32:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        inner = getattr(item, "inner_exception", None)
        todo += [inner if isinstance(inner, BaseException) else None]
        todo += [item.__cause__, item.__context__]


def _is(code: str | None, prefixes: tuple[str, ...]) -> bool:
    return any(str(code or "").startswith(p) for p in prefixes)


def _named(exc: BaseException, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def status_of(exc: BaseException) -> int | None:
    for item in causes(exc):
        status = getattr(item, "status_code", None) or getattr(item, "statusCode", None)
        if isinstance(status, int):
            return status
    return None


def transient(exc: BaseException) -> bool:
    """Worth another try: throttling, 5xx, and calls that got no answer from the service."""
    from alibabacloud_tea_openapi.exceptions import (
        ClientException,
        ServerException,
        ThrottlingException,
    )

    if isinstance(exc, ThrottlingException | ServerException):
        return True
    if isinstance(exc, ClientException):
        return _is(getattr(exc, "code", ""), ("Throttling",)) or status_of(exc) in (408, 429)
    if _credential_failure(exc) or _proxy_failure(exc):
        return False
    return any(
        isinstance(item, ConnectionError | TimeoutError | OSError)
        or _named(item, "ConnectionError", "Timeout", "HTTPError", "RetryError")
        for item in causes(exc)
    ) or _named(exc, "UnretryableException")


def _credential_failure(exc: BaseException) -> bool:
    return any(_named(item, "CredentialException") for item in causes(exc))


def _proxy_failure(exc: BaseException) -> bool:
    return any(_named(item, "ProxyError") for item in causes(exc))


def _proxy_variables() -> str:
    names = [
        n for n in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy") if n in os.environ
    ]
    return ", ".join(names) or "HTTP_PROXY/HTTPS_PROXY"


def translate(action: str, exc: BaseException, workspace: object = None) -> DlcError:
    """The error a failed call (after its retries) is reported as."""
    from alibabacloud_tea_openapi.exceptions import ClientException

    if _credential_failure(exc):
        return DlcError(
            f"dlc: {action}: no Alibaba Cloud credentials found. {CREDENTIALS}",
            permanent=True,
        )
    if _proxy_failure(exc):
        return DlcError(
            f"dlc: {action} could not reach the DLC endpoint through the proxy in "
            f"{_proxy_variables()}. Fix or unset that variable; the Alibaba Cloud SDK ignores "
            "NO_PROXY, so listing the endpoint there does not bypass the proxy",
            permanent=True,
        )
    code = getattr(exc, "code", None)
    code = str(code) if code else None
    message = str(getattr(exc, "message", None) or exc).strip().rstrip(".")
    status = status_of(exc)
    text = f"dlc: {action} failed: {code or type(exc).__name__}: {message}"
    if isinstance(exc, ClientException) and not transient(exc):
        if _is(code, _KEY_CODES):
            text += (
                ". The service refused the AccessKey the credential chain found; check "
                "ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET or the profile in "
                "~/.alibabacloud/credentials.ini"
            )
        elif status == 403 or _is(code, _PERMISSION_CODES):
            where = f" in workspace {workspace}" if workspace else ""
            text += (
                f". The RAM user or role lacks permission for {action}{where}; grant it a "
                "PAI-DLC policy (e.g. AliyunPAIDLCFullAccess) and workspace membership"
            )
        return DlcError(text, permanent=True, status=status, code=code)
    return DlcError(text, status=status, code=code)
