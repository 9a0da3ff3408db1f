"""The per-task runner: runs one task's command and ends everything the command started.

Run by the provider as `python -I -S -c BOOT runner.py TASK_DIR GRACE ARGV...`, where BOOT
imports this module from its directory (from cached bytecode; see `spawn`) and calls
`main` (`python -I -S runner.py TASK_DIR GRACE ARGV...` works too), with the task's lock fd
inherited, as the leader of its own session. Standard library only, and none of
`from __future__`, `os` or `signal`, so that start-up stays a few milliseconds. Its
contract:

- it is a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`): every process the command
  starts, even one that calls `setsid` or double-forks, stays below the runner while the
  runner lives, so `descendants(runner_pid)` finds all of them, from this process or from
  any later tunectl that adopted the task;
- it touches `started`, spawns ARGV (exit status 127 with a message when it cannot), and
  lives until the command and every descendant have ended;
- when the command ends by itself, descendants still running get SIGTERM, then SIGKILL
  after GRACE seconds, and only then is `exit` written ("N\\n" in one write; 128+N for a
  signal, as a shell reports it);
- SIGTERM to the runner (cancel, timeout) is forwarded once to every descendant; after it,
  no `exit` is written (the task was stopped, not finished), as with a killed wrapper.

SIGKILL cannot be caught: whoever sends it must kill the descendants first (the provider
does, through `descendants`), or they would be reparented away from the task.
"""

# `posix` and `_signal` rather than `os` and `signal`: the latter import enum, functools and
# collections, which doubled the runner's start-up.
import _signal
import posix
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def descendants(pid: int) -> list[int]:
    """The pids of every process below `pid`, parents before their children.

    Read from /proc/*/stat (the `children` files need a kernel option that is often off);
    processes that end meanwhile are skipped."""
    children: dict[int, list[int]] = {}
    for entry in posix.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            posix.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER, 1) through `_ctypes` alone: importing the `ctypes`
    package costs more than the rest of the runner's start-up."""
    try:
        import _ctypes

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL
            _restype_ = None

        class Library:
            _handle = _ctypes.dlopen(None, posix.RTLD_NOW)  # type: ignore[arg-type]

        Function(("prctl", Library()))(  # type: ignore[arg-type]
            PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0
        )
    except (ImportError, OSError, AttributeError):
        pass  # not Linux: the process group is the fallback


def _open_private(path: str, flags: int) -> int:
    """Open a marker file 0600 whatever the umask (the task keeps the user's umask)."""
    fd = posix.open(path, flags, 0o600)
    posix.fchmod(fd, 0o600)
    return fd


class _Runner:
    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.stopped_at: float | None = None  # when SIGTERM came

    def on_term(self, signum: int, frame: object) -> None:
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
            signal_all(descendants(posix.getpid()), _signal.SIGTERM)

    def reap(self, block: bool) -> tuple[list[tuple[int, int]], bool]:
        """Collect ended children (the command, and orphans handed to us); also say
        whether any child is left (none left means no descendant is left either)."""
        out: list[tuple[int, int]] = []
        while True:
            try:
                pid, status = posix.waitpid(-1, 0 if block else posix.WNOHANG)
            except ChildProcessError:
                return out, False
            if pid == 0:
                return out, True
            out.append((pid, status))
            block = False

    def run(self, task_dir: str, argv: list[str]) -> int | None:
        _signal.signal(_signal.SIGTERM, self.on_term)
        _subreaper()
        posix.close(_open_private(f"{task_dir}/started", posix.O_WRONLY | posix.O_CREAT))
        code: int | None = None
        try:
            # Python ignores SIGPIPE and SIGXFSZ; the command must get the defaults.
            child = posix.posix_spawnp(
                argv[0], argv, posix.environ, setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ)
            )
        except OSError as exc:
            sys.stderr.write(f"tunectl: cannot run {argv[0]}: {exc.strerror}\n")
            code = 127 if isinstance(exc, FileNotFoundError) else 126
        else:
            if self.stopped_at is not None:
                signal_all([child], _signal.SIGTERM)
            while code is None:
                for pid, status in self.reap(block=True)[0]:
                    if pid == child:
                        code = posix.waitstatus_to_exitcode(status)
                        code = 128 - code if code < 0 else code
        self.end_rest()
        return None if self.stopped_at is not None else code

    def end_rest(self) -> None:
        """Stop whatever the command left behind: SIGTERM, then SIGKILL after the grace."""
        if not self.reap(block=False)[1]:
            return  # the common case, without reading /proc
        rest = descendants(posix.getpid())
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
            signal_all(rest, _signal.SIGTERM)
        delay = 0.002
        while rest and time.monotonic() < self.stopped_at + self.grace:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            self.reap(block=False)
            rest = descendants(posix.getpid())
        while rest:
            signal_all(rest, _signal.SIGKILL)
            time.sleep(0.01)
            self.reap(block=False)
            rest = descendants(posix.getpid())


def main(argv: list[str]) -> None:
    task_dir, grace, command = argv[1], float(argv[2]), argv[3:]
    code = _Runner(grace).run(task_dir, command)
    if code is not None:
        flags = posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC
        posix.write(_open_private(f"{task_dir}/exit", flags), b"%d\n" % code)
    # At once, skipping the interpreter's teardown: whoever reads `exit` may reap us next.
    posix._exit(0)


if __name__ == "__main__":
    main(sys.argv)
