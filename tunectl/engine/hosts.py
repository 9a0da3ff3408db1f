"""Which machine this is: the identity recorded with every host-local task.

A provider whose tasks only the submitting machine can reach (`Capabilities.host_local`,
e.g. local processes) has its tasks recorded with this host's identity. With a shared
state (an S3 backend), an apply on another machine then leaves those tasks alone and says
where they run, instead of finding no such process and launching the trial again.

The identity is the host name and a digest of the machine id (`/etc/machine-id`, else
D-Bus's `/var/lib/dbus/machine-id`, else the boot id): two working directories on one
machine are one host, two machines (or two containers) are not. `TUNECTL_HOST_ID`
overrides it, for machines whose id is not stable, and for tests acting as a second host.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from pathlib import Path

ENV = "TUNECTL_HOST_ID"
_MACHINE_ID_FILES = (
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",
    "/proc/sys/kernel/random/boot_id",
)


def this_host() -> str:
    """This machine's identity: `TUNECTL_HOST_ID` when set, else `HOSTNAME:DIGEST`."""
    override = os.environ.get(ENV, "").strip()
    return override or _machine()


@functools.cache
def _machine() -> str:
    name = socket.gethostname() or "localhost"
    for path in _MACHINE_ID_FILES:
        try:
            ident = Path(path).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if ident:
            return f"{name}:{hashlib.sha256(ident.encode()).hexdigest()[:12]}"
    return name


def home(state_dir: Path) -> str:
    """Where a host-local task started from `state_dir` can be reached: `HOST:DIRECTORY`."""
    return f"{this_host()}:{Path(state_dir).resolve()}"


def elsewhere(host: str | None, state_dir: Path) -> bool:
    """Whether a task recorded with home `host` lives elsewhere than `state_dir` on this host
    (another machine, or another working directory on this one)."""
    return host is not None and host != home(state_dir)
