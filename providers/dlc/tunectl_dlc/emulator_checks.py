"""What the DLC emulator refuses before it acts, as the service refuses it.

- **Signatures** (`Signatures.verify`): `ACS3-HMAC-SHA256` with a known key; the signed
  headers must include `host` and every `x-acs-*` header sent; `x-acs-date` within 15
  minutes of now (`InvalidTimeStamp.Expired`); a nonce used once only (`SignatureNonceUsed`);
  `x-acs-version` 2020-12-03 (`InvalidVersion`) and `x-acs-action` naming the API the path
  and method call (`InvalidAction.NotFound`); an STS key with its own token only
  (`InvalidSecurityToken.Mismatch`).
- **CreateJob** (`check_create`): the documented mandatory fields; a known `JobType` and,
  for it, the roles it has (PyTorchJob: Master, Worker; TFJob: Chief, PS, Worker, Evaluator;
  ...), at most one Master or Chief; `PodCount` at least 1; an ECS type shaped like one
  (`ecs.FAMILY.SIZE`); `Priority` 1–9; a `DisplayName` of letters, digits, `-`, `_`, `.`
  (at most 256, starting with a letter or digit); a known workspace when the emulator was
  given a list of them; `SuccessPolicy` on a TFJob only; `UserVpc` with its VPC and
  security group.

Error codes and wording follow Alibaba Cloud's POP conventions; those of the DLC service
itself beyond the SDK are not documented, so the provider never depends on them.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from typing import Any
from urllib.parse import quote

VERSION = "2020-12-03"
SKEW = 15 * 60  # seconds an x-acs-date may be off
ROLES_BY_TYPE = {
    "PyTorchJob": {"Master", "Worker"},
    "TFJob": {"Chief", "PS", "Worker", "Evaluator", "GraphLearn"},
    "MPIJob": {"Launcher", "Worker"},
    "XGBoostJob": {"Master", "Worker"},
    "OneFlowJob": {"Master", "Worker"},
    "ElasticBatchJob": {"AIMaster", "Worker"},
    "RayJob": {"Head", "Worker"},
    "SlurmJob": {"Master", "Worker"},
    "DataJuicerJob": {"Head", "Worker"},
}
SINGLE_ROLES = {"Master", "Chief", "Launcher", "Head", "AIMaster"}
_ECS = re.compile(r"ecs\.[a-z0-9-]+\.[a-z0-9-]+")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,255}")
_ROUTES = (
    ("POST", re.compile(r"/api/v1/jobs"), "CreateJob"),
    ("GET", re.compile(r"/api/v1/jobs"), "ListJobs"),
    ("POST", re.compile(r"/api/v1/jobs/[^/]+/stop"), "StopJob"),
    ("GET", re.compile(r"/api/v1/jobs/[^/]+/pods/[^/]+/logs"), "GetPodLogs"),
    ("GET", re.compile(r"/api/v1/jobs/[^/]+"), "GetJob"),
    ("DELETE", re.compile(r"/api/v1/jobs/[^/]+"), "DeleteJob"),
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def action_of(method: str, path: str) -> str | None:
    return next((a for m, p, a in _ROUTES if m == method and p.fullmatch(path)), None)


class Signatures:
    """Checks requests' signatures against known keys, remembering nonces for a while."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.tokens: dict[str, str] = {}  # key id -> the STS token it must come with
        self.nonces: dict[str, float] = {}

    def verify(
        self, method: str, path: str, query: list[tuple[str, str]], headers: Any, body: bytes
    ) -> str:
        """The action the request calls; ApiError when the service would refuse it."""
        auth = headers.get("Authorization") or ""
        match = re.match(
            r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]*),Signature=([0-9a-f]+)$",
            auth,
        )
        if not match:
            raise ApiError(400, "MissingAuthorization", "The request is not signed.")
        key_id, signed, signature = match.groups()
        secret = self.keys.get(key_id)
        if secret is None:
            raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        token = headers.get("x-acs-security-token")
        if token != self.tokens.get(key_id):
            raise ApiError(
                400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken is not valid."
            )
        names = signed.split(";") if signed else []
        sent = {k.lower() for k in headers.keys() if k.lower().startswith("x-acs-")}
        unsigned = sorted(({"host"} | sent) - set(names))
        if unsigned:
            raise ApiError(
                400, "IncompleteSignature", f"Headers must be signed: {', '.join(unsigned)}."
            )
        payload = hashlib.sha256(body).hexdigest()
        if headers.get("x-acs-content-sha256") not in (None, payload):
            raise ApiError(400, "ContentSHA256NotMatched", "The body does not match its hash.")
        canonical_headers = "".join(
            f"{name}:{(headers.get(name) or '').strip()}\n" for name in names
        )
        canonical_query = "&".join(
            f"{k}={quote(v, safe='~')}" for k, v in sorted(query, key=lambda kv: kv[0])
        )
        canonical = (
            f"{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\n"
            f"{headers.get('x-acs-content-sha256') or payload}"
        )
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise ApiError(
                400,
                "SignatureDoesNotMatch",
                "The request signature does not conform to Aliyun standards.",
            )
        self._fresh(headers.get("x-acs-date") or "", headers.get("x-acs-signature-nonce") or "")
        if headers.get("x-acs-version") != VERSION:
            raise ApiError(
                400, "InvalidVersion", f"Specified parameter Version is not valid: {VERSION}."
            )
        action = action_of(method, path)
        if action is None or headers.get("x-acs-action") != action:
            raise ApiError(
                404, "InvalidAction.NotFound", "Specified api is not found, please check your url."
            )
        return action

    def _fresh(self, date: str, nonce: str) -> None:
        now = time.time()
        try:
            sent = calendar.timegm(time.strptime(date, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            raise ApiError(400, "InvalidTimeStamp.Format", "x-acs-date is not valid.") from None
        if abs(now - sent) > SKEW:
            raise ApiError(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        if not nonce:
            raise ApiError(400, "MissingSignatureNonce", "x-acs-signature-nonce is mandatory.")
        if nonce in self.nonces:
            raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self.nonces[nonce] = now
        if len(self.nonces) > 100_000:  # forget nonces older than the date window
            self.nonces = {n: t for n, t in self.nonces.items() if now - t <= 2 * SKEW}


def check_create(body: dict[str, Any], workspaces: set[str] | None) -> None:
    """ApiError when CreateJob would be refused."""
    for name in ("DisplayName", "JobType", "JobSpecs", "UserCommand"):
        if not body.get(name):
            raise ApiError(400, "MissingParameter", f"{name} is mandatory for this action.")

    def invalid(message: str) -> ApiError:
        return ApiError(400, "InvalidParameter", message)

    if not _NAME.fullmatch(str(body["DisplayName"])):
        raise invalid("DisplayName must be 1-256 letters, digits, '-', '_' or '.'.")
    job_type = str(body["JobType"])
    roles = ROLES_BY_TYPE.get(job_type)
    if roles is None:
        raise invalid(f"JobType {job_type} is not supported.")
    specs = body["JobSpecs"]
    if not isinstance(specs, list):
        raise invalid("JobSpecs must be a list.")
    for spec in specs:
        role = str(spec.get("Type"))
        if role not in roles:
            raise invalid(f"{job_type} has no role {role}; its roles: {', '.join(sorted(roles))}.")
        count = spec.get("PodCount")
        if not isinstance(count, int) or count < 1:
            raise invalid(f"PodCount of {role} must be at least 1.")
        if role in SINGLE_ROLES and count > 1:
            raise invalid(f"{job_type} takes one {role}, not {count}.")
        ecs = spec.get("EcsSpec")
        if ecs is not None and not _ECS.fullmatch(str(ecs)):
            raise invalid(f"EcsSpec {ecs} is not an instance type.")
        if ecs is None and not spec.get("ResourceConfig"):
            raise invalid(f"{role} needs EcsSpec or ResourceConfig.")
    if body.get("SuccessPolicy") and job_type != "TFJob":
        raise invalid("SuccessPolicy is supported by TFJob only.")
    vpc = body.get("UserVpc")
    if vpc and not (vpc.get("VpcId") and vpc.get("SecurityGroupId")):
        raise invalid("UserVpc needs VpcId and SecurityGroupId.")
    priority = body.get("Priority")
    if priority is not None and (not isinstance(priority, int) or not 1 <= priority <= 9):
        raise invalid("Priority must be between 1 and 9.")
    workspace = body.get("WorkspaceId")
    if workspaces is not None and workspace not in workspaces:
        raise ApiError(400, "InvalidWorkspaceId", f"Workspace {workspace} does not exist.")
