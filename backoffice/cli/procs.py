"""Child processes of `backoffice run`: start each in its own process group, stop them all.

Ctrl-C reaches only the supervisor (children run in their own sessions), which then stops the
children in reverse start order: SIGTERM to each process group, a grace period, SIGKILL for
whatever is left. Flow runs the worker started live in sessions of their own; on Linux the
supervisor makes itself a child subreaper, so such orphans are re-parented to it and found by
walking /proc from its pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
GRACE_SECONDS = 10.0


class ChildExited(RuntimeError):
    """A child process ended while the system was supposed to run."""


def become_subreaper() -> None:
    """Adopt orphaned descendants (Linux only; elsewhere process groups must suffice)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()  # the command name may contain spaces
    return fields[0], int(fields[1])


def descendants(root: int) -> set[int]:
    """Every live (not zombie) process below `root`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            if pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def reap() -> None:
    """Collect exited children (ours and adopted orphans) so they do not linger as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@dataclass
class Child:
    """A started child process."""

    name: str
    process: subprocess.Popen[bytes]


class Supervisor:
    """Starts children with one environment and stops every one of them (and what they started)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.children: list[Child] = []

    def start(self, name: str, args: Sequence[str]) -> Child:
        """Start `args` in a new session (own process group), sharing our stdout/stderr."""
        process = subprocess.Popen(list(args), env=self.env, cwd=self.cwd, start_new_session=True)
        child = Child(name, process)
        self.children.append(child)
        return child

    def check(self) -> None:
        """Raise ChildExited when a long-running child has ended."""
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise ChildExited(f"{child.name} exited with code {code}")

    def wait_for(self, child: Child, timeout: float | None = None) -> int:
        """Wait for a one-shot child (like the deploy) and return its exit code; it is then forgotten."""
        code = child.process.wait(timeout=timeout)
        self.children.remove(child)
        return code

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """SIGTERM every child's group (newest first), wait `grace`, then SIGKILL what is left."""
        me = os.getpid()
        doomed = descendants(me)
        for child in reversed(self.children):
            _signal_group(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            reap()
            doomed |= descendants(me)
            if not any(alive(pid) for pid in doomed):
                break
            time.sleep(0.1)
        # Whatever is still there (flow runs in their own sessions, stuck children) is killed.
        for pid in doomed | descendants(me):
            if alive(pid):
                _signal_group(pid, signal.SIGKILL)
                _signal(pid, signal.SIGKILL)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)
        reap()


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by `pid` (only when `pid` leads one we created)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
