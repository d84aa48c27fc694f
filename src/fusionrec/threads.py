"""How many threads the numerical kernels get, so a busy machine does not collapse training.

The models here run many small kernels. When other work already fills the cores, every kernel's
OpenMP threads wait for each other (and spin while they wait): 5 epochs of LightGCN on ml-100k took
124 s with torch's default threads on a loaded two-core machine against 9.4 s with one thread
(docs/performance.md, "Threads"). So unless told otherwise (``train.num_threads``, or torch's own
``OMP_NUM_THREADS``), fusionrec uses the cores that the load average leaves free, at least one, and
asks OpenMP to sleep rather than spin while it waits (``OMP_WAIT_POLICY=PASSIVE``, set when fusionrec is
imported before torch; an explicit setting in the environment wins).
"""

from __future__ import annotations

import os

WAIT_POLICY = "OMP_WAIT_POLICY"


def prefer_passive_waiting() -> None:
    """Ask OpenMP to sleep while waiting (read once, when torch loads its runtime)."""
    os.environ.setdefault(WAIT_POLICY, "PASSIVE")


def free_cores() -> int:
    """The cores the 1-minute load average leaves free, at least one."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, cores - int(round(load))))


def choose_threads(requested: int | None = None) -> tuple[int, str]:
    """The thread count to use and why: ``requested`` if given, then ``OMP_NUM_THREADS`` if set, else
    the free cores."""
    if requested:
        return requested, "train.num_threads"
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    load = f"load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "load unknown"
    return free_cores(), f"free cores ({load} on {os.cpu_count()} cores)"


def configure_threads(requested: int | None = None) -> tuple[int, str]:
    """Set torch's intra-op threads by :func:`choose_threads`; returns the count and the reason."""
    import torch

    count, why = choose_threads(requested)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count, why
