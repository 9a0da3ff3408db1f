"""Trial settings PAI users configure beyond roles and images: a VPC, Python libraries,
private image credentials, spot instances, a success policy.

- `user_vpc = { vpc_id, security_group_id, switch_id, extended_cidrs, default_route }`:
  the job's pods join the VPC (NAS/CPFS mounts, private registries) → `UserVpc`.
- `thirdparty_libs = ["numpy==1.26.4", ...]`: installed with pip before the command
  → `ThirdpartyLibs`.
- `image_config = { registry, username_env, password_env }`: credentials of a private
  image registry, read from the named environment variables of the tunectl process when the
  job is created — never written in HCL, the state or a plan → each role's `ImageConfig`.
- a role's `spot = { price_limit = 0.5 }` (CNY a minute) or `{ discount_limit = 0.3 }`:
  spot instances with a limit → its `SpotSpec` (`SpotWithPriceLimit`).
- `success_policy = "ChiefWorker" | "AllWorkers"` (TFJob only) → `SuccessPolicy`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

SUCCESS_POLICIES = ("ChiefWorker", "AllWorkers")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VPC_KEYS = {"vpc_id", "security_group_id", "switch_id", "extended_cidrs", "default_route"}


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value > 0


def check_extras(settings: Mapping[str, Any], job_type: str) -> list[tuple[str, str]]:
    """Problems with these settings: (attribute, sentence) each."""
    problems: list[tuple[str, str]] = []
    vpc = settings.get("user_vpc")
    if vpc is not None:
        if not isinstance(vpc, Mapping) or not vpc.get("vpc_id"):
            problems.append(
                (
                    "user_vpc",
                    'user_vpc must be { vpc_id = "vpc-...", security_group_id = "sg-...", '
                    'switch_id = "vsw-..." }',
                )
            )
        else:
            unknown = set(vpc) - _VPC_KEYS
            if unknown:
                problems.append(
                    ("user_vpc", f"user_vpc: unknown key(s) {', '.join(sorted(unknown))}")
                )
            if not vpc.get("security_group_id"):
                problems.append(("user_vpc", "user_vpc needs security_group_id with vpc_id"))
    libs = settings.get("thirdparty_libs")
    if libs is not None and (
        not isinstance(libs, list) or not all(isinstance(x, str) and x.strip() for x in libs)
    ):
        problems.append(
            ("thirdparty_libs", 'thirdparty_libs must be a list of pip requirements: ["numpy"]')
        )
    image = settings.get("image_config")
    if image is not None:
        names = (
            [image.get(k) for k in ("username_env", "password_env")]
            if isinstance(image, Mapping)
            else []
        )
        if (
            not isinstance(image, Mapping)
            or not image.get("registry")
            or not all(isinstance(n, str) and _ENV_NAME.fullmatch(n) for n in names)
        ):
            problems.append(
                (
                    "image_config",
                    'image_config must be { registry = "registry.example.com", username_env = '
                    '"REGISTRY_USER", password_env = "REGISTRY_PASSWORD" }: the names of '
                    "environment variables holding the credentials, never the credentials",
                )
            )
    policy = settings.get("success_policy")
    if policy is not None:
        if policy not in SUCCESS_POLICIES:
            problems.append(
                (
                    "success_policy",
                    f"success_policy must be ChiefWorker or AllWorkers, not {policy!r}",
                )
            )
        elif job_type != "TFJob":
            problems.append(("success_policy", f"success_policy is for TFJob only, not {job_type}"))
    return problems


def check_spot(role: str, spot: Any) -> list[str]:
    """Problems with a role's `spot` map."""
    if not isinstance(spot, Mapping) or set(spot) - {"price_limit", "discount_limit"}:
        return [f"{role}.spot must be {{ price_limit = 0.5 }} or {{ discount_limit = 0.3 }}"]
    limits = [k for k in ("price_limit", "discount_limit") if spot.get(k) is not None]
    if len(limits) != 1 or not _number(spot[limits[0]]):
        return [f"{role}.spot takes one of price_limit or discount_limit, a number above 0"]
    if limits == ["discount_limit"] and float(spot["discount_limit"]) > 1:
        return [f"{role}.spot.discount_limit is a share of the price, at most 1"]
    return []


def spot_spec(m: Any, spot: Mapping[str, Any] | None) -> Any:
    if not spot:
        return None
    return m.SpotSpec(
        spot_strategy="SpotWithPriceLimit",
        spot_price_limit=spot.get("price_limit"),
        spot_discount_limit=spot.get("discount_limit"),
    )


def image_config(m: Any, settings: Mapping[str, Any]) -> Any:
    """The role's `ImageConfig`, the credentials read from the environment now."""
    config = settings.get("image_config")
    if not config:
        return None
    from tunectl.providers.base import ProviderError

    missing = [config[k] for k in ("username_env", "password_env") if not os.environ.get(config[k])]
    if missing:
        raise ProviderError(
            f"dlc: image_config: set the environment variable(s) {', '.join(missing)} "
            "(the private registry's credentials)",
            permanent=True,
        )
    return m.ImageConfig(
        docker_registry=str(config["registry"]),
        username=os.environ[config["username_env"]],
        password=os.environ[config["password_env"]],
    )


def request_extras(m: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """CreateJobRequest keyword arguments for these settings."""
    vpc = settings.get("user_vpc")
    return {
        "user_vpc": m.CreateJobRequestUserVpc(
            vpc_id=vpc.get("vpc_id"),
            security_group_id=vpc.get("security_group_id"),
            switch_id=vpc.get("switch_id"),
            extended_cidrs=vpc.get("extended_cidrs"),
            default_route=vpc.get("default_route"),
        )
        if vpc
        else None,
        "thirdparty_libs": list(settings.get("thirdparty_libs") or []) or None,
        "success_policy": settings.get("success_policy"),
    }
