"""The long-running commands (`ui`, `serve`, `quickstart`) own every process they start.

`owned_processes(grace_s=...)` makes the command a child subreaper (Linux `prctl(PR_SET_CHILD_SUBREAPER)`:
a process that loses its parent below the command — a Ray raylet whose `ray start` exited, a driver whose API
died — is re-parented to the command instead of init, so the tree stays whole) and turns SIGTERM and SIGINT
into `Stopped`. When the block ends, however it ends (a signal, an error, a normal return), `stop_all` stops
the whole tree within a bounded time:

1. SIGTERM to each direct child, which stops its own children gracefully (`mlflow ui` its server, job runner
   and huey consumers; the API its drivers and Ray head); up to `grace_s` for them to exit;
2. SIGTERM to every descendant still alive (drivers and Ray processes sit in sessions and process groups of
   their own, where a process-group kill misses them), up to `TERM_WAIT_S` more;
3. SIGKILL to whatever is left, and the dead reaped.

A second SIGTERM or SIGINT while that runs cuts the waiting short (straight to SIGKILL). The tree is read from
/proc (this runs on Linux; elsewhere step 2 and 3 find nothing and the direct children get step 1 only).
Only SIGKILL of the command itself, which no process can answer, leaves its children running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
TERM_WAIT_S = 5.0  # after the grace: how long what is left gets after its own SIGTERM, before SIGKILL
KILL_WAIT_S = 5.0  # after SIGKILL: how long to wait for the kernel to take the processes down
_POLL_S = 0.1


class Stopped(BaseException):
    """SIGTERM or SIGINT reached the command; `exit_code` is the shell's 128 + signal number. A
    BaseException, as KeyboardInterrupt is: `except Exception` on the way (a retry loop) lets it through."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def become_subreaper() -> bool:
    """Orphans below this process come to it, not to init. False where the kernel has no such switch."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parents() -> dict[int, int]:
    """pid → parent pid of every live (non-zombie) process, from /proc."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return parents
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    return parents


def descendants(pid: int | None = None) -> list[int]:
    """The live descendants of `pid` (this process by default), parents before their children."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def _reap() -> None:
    """Collect the exit status of every dead child (orphans re-parented to us included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


class ProcessOwner:
    """What `owned_processes` yields: `popen` starts a child it will stop; `stop_all` stops them all."""

    def __init__(self, grace_s: float):
        self.grace_s = grace_s
        self.started: list[subprocess.Popen] = []
        self.keep = False  # set by `keep_running`: a block that ends without an exception stops nothing
        self.stopping = False
        self.hurry = False
        self.signum: int | None = None

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen:
        process = subprocess.Popen(args, **kwargs)
        self.started.append(process)
        return process

    def keep_running(self) -> None:
        """Leave what runs running when the block ends normally (`quickstart --keep-running`)."""
        self.keep = True

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:  # a second signal while stopping: no more waiting
            self.hurry = True
            return
        self.signum = signum
        self.stopping = True  # from here on a signal never raises: nothing interrupts the stop
        raise Stopped(signum)

    def _wait(self, pids: list[int] | None, seconds: float) -> bool:
        """Wait until `pids` (None: every descendant) are gone, at most `seconds`; True if they went."""
        deadline = time.monotonic() + seconds
        while True:
            for process in self.started:
                process.poll()
            _reap()
            alive = descendants()
            if pids is not None:
                alive = [pid for pid in alive if pid in pids]
            if not alive:
                return True
            if self.hurry or time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)

    def stop_all(self) -> None:
        """Stop every process under this one: its children gracefully, then the rest (see the module)."""
        self.stopping = True
        children = [pid for pid, parent in _parents().items() if parent == os.getpid()]
        if not children and not descendants():
            return
        _signal_all(children, signal.SIGTERM)
        self._wait(children, self.grace_s)
        if descendants():
            _signal_all(descendants(), signal.SIGTERM)
            if not self._wait(None, TERM_WAIT_S):
                for _ in range(3):  # what a dying parent forks meanwhile is found on the next pass
                    _signal_all(descendants(), signal.SIGKILL)
                    if self._wait(None, KILL_WAIT_S / 3):
                        break
        for process in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)


@contextlib.contextmanager
def owned_processes(grace_s: float) -> Iterator[ProcessOwner]:
    """Own what the block starts: SIGTERM/SIGINT raise `Stopped` in it, and when it ends every process
    under this one is stopped (the children get `grace_s` to stop theirs), before the signals' handlers are
    put back. Call from the main thread."""
    owner = ProcessOwner(grace_s)
    become_subreaper()
    previous = {signum: signal.signal(signum, owner.on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield owner
    except BaseException:
        owner.keep = False
        raise
    finally:
        try:
            if not owner.keep:
                owner.stop_all()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


__all__ = ["ProcessOwner", "Stopped", "descendants", "owned_processes"]
