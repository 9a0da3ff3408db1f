"""The `local` provider: runs each task as a process group on this machine.

It owns the bookkeeping under `<state_dir>/tasks/<key>/` (the task's spec, its merged
output, start/exit markers and the lock that tells whether the task still runs), the
`/bin/sh` wrapper that outlives tunectl, and the hand-out of the configured GPUs. A
restarted tunectl adopts running tasks from that directory alone.
"""

from tunectl_local.provider import LocalProvider

__all__ = ["LocalProvider"]
