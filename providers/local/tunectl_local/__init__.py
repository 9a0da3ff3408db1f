"""The `local` provider: runs each task as a process tree on this machine.

It owns the bookkeeping under `<state_dir>/tasks/<key>/` (the task's spec, its merged
output, start/exit markers and the lock that tells whether the task still runs), the
per-task runner that outlives tunectl, and the hand-out of the configured GPUs. A
restarted tunectl adopts running tasks from that directory alone.

`provider.LocalProvider` is the facade; `provider`'s docstring lists the modules behind it.
"""

from tunectl_local.provider import LocalProvider

__all__ = ["LocalProvider"]
