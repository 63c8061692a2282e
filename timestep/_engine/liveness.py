"""Whether an owner is alive: its lease, and on the same host, its process.

A lease that ran out by the database's clock means dead. A peer on the same host (same boot,
same pid namespace) can tell sooner, and for certain: when the owner's pid is gone, is a
zombie, or belongs to a process started at another time (a reused pid), the owner is dead
whatever its lease says. Elsewhere only the lease counts; heartbeats and the "now" they are
judged at are both the database's clock, so the hosts' own clocks do not matter.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..state.owners import OwnerRecord


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None if no such pid."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    return text.rsplit(")", 1)[-1].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


@cache
def this_process() -> dict[str, Any]:
    """What peers on this host compare to tell whether this process still runs."""
    pid_namespace: str | None
    try:
        pid_namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_namespace = None
    return {
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_namespace": pid_namespace,
        "start_ticks": _start_ticks(os.getpid()),
    }


def host_name() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class Liveness:
    """What is known about an owner now."""

    alive: bool
    """False once the owner is known dead (lease ran out, or its process is gone)."""

    reason: str
    """Why, in words: for status lines and logs."""

    heartbeat_age: float
    """Seconds since the owner's last heartbeat."""

    certain: bool = False
    """Dead beyond doubt: its process is gone, or it stopped cleanly (not just a late lease,
    which a database outage can also cause)."""


def _same_host(owner: OwnerRecord) -> bool:
    here = this_process()
    return (
        owner.host == host_name()
        and here["boot_id"] is not None
        and owner.identity.get("boot_id") == here["boot_id"]
        and owner.identity.get("pid_namespace") == here["pid_namespace"]
    )


def _process_gone(owner: OwnerRecord) -> bool:
    fields = _stat_fields(owner.pid)
    if fields is None:
        return True
    if fields[0] in ("Z", "X"):
        return True
    started = owner.identity.get("start_ticks")
    return started is not None and len(fields) > 19 and int(fields[19]) != started


def judge(owner: OwnerRecord, now: float | None = None) -> Liveness:
    """Whether `owner` is alive at `now` (by default the database's clock when the record was
    read, else this host's).

    A process known gone (on this host) or stopped is dead for certain, whatever its lease
    says; otherwise a lease run out by the database's clock means dead (peers renew the leases
    of owners cut off by a database outage, see `owners.heartbeat`)."""
    if now is None:
        now = owner.read_at if owner.read_at is not None else time.time()
    age = max(0.0, now - owner.heartbeat_at)
    if _same_host(owner) and _process_gone(owner):
        return Liveness(False, f"process {owner.pid} on {owner.host} has exited", age, True)
    if owner.stopped_at is not None:
        return Liveness(False, "stopped", age, True)
    if owner.lease_expired(now):
        return Liveness(
            False, f"no heartbeat for {age:.0f} s (lease {owner.lease_seconds:g} s)", age
        )
    return Liveness(True, f"heartbeat {age:.1f} s ago", age)
