"""A pool of Ray actors, one per worker, fed a stream of work items; a worker that dies is
restarted by Ray and the items it held are given out again.

Ray's own ``ray.util.ActorPool`` streams items to actors but gives up when one dies; this pool
keeps at most ``in_flight`` items queued on each actor (so the driver holds only a few inputs in
memory), restarts dead actors through Ray (``max_restarts``) and retries their items on any
worker, up to ``max_attempts`` times each.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..errors import DependencyError, WavesepError

INSTALL = 'pip install "wavesep[ray]"  (from a checkout: pip install -e ".[ray]")'


class ClusterError(WavesepError, RuntimeError):
    """The Ray cluster cannot be reached, or no worker could start or stay alive."""


def require_ray():
    """The ``ray`` module, or a :class:`~wavesep.errors.DependencyError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise DependencyError(f"--ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def connect(address: Optional[str], num_cpus: Optional[int] = None) -> bool:
    """Connects to the cluster at ``address`` (``auto``, ``HOST:6379``, ``ray://HOST:10001``) or,
    when it is None or "", starts a local Ray instance (``num_cpus``: default all cores).

    Returns:
        True when this call connected (the caller then calls :func:`disconnect`); False when
        Ray was already initialised in this process (a test's or a notebook's session).
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    # Ray's log printer would otherwise replace builtins.print for the rest of the process.
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    options = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise ClusterError(f"cannot connect to {where}: {exc}") from None
    return True


def disconnect() -> None:
    require_ray().shutdown()


@dataclass
class PoolStats:
    """What happened in :meth:`ActorPool.run`: items finished, items given out again after
    their worker died, worker deaths seen."""

    finished: int = 0
    retried: int = 0
    worker_deaths: int = 0


class ActorPool:
    """``num_workers`` actors of ``actor_class`` (a ``ray.remote`` class whose instances have a
    ``pid()`` method), each built with ``args``.

    Args:
        resources: per actor, e.g. ``{"num_cpus": 1, "num_gpus": 1}``.
        max_restarts: how often Ray restarts each actor after its process dies.
        in_flight: items queued on each actor at a time.
    """

    def __init__(self, actor_class, args: Sequence[Any], num_workers: int, resources: Dict[str, float],
                 max_restarts: int = 3, in_flight: int = 2):
        ray = require_ray()
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self._ray = ray
        self.max_restarts = max_restarts
        self.in_flight = max(1, int(in_flight))
        remote = actor_class.options(max_restarts=max_restarts, max_task_retries=0, **resources)
        self.actors = [remote.remote(*args) for _ in range(num_workers)]
        self.stats = PoolStats()
        self.pids_at_start: List[int] = []

    def pids(self) -> List[int]:
        """Process ids of the workers; waits until every actor is built and raises
        :class:`ClusterError` when one cannot start."""
        try:
            self.pids_at_start = self._ray.get([a.pid.remote() for a in self.actors])
            return self.pids_at_start
        except self._ray.exceptions.RayError as exc:
            raise ClusterError(f"a Ray worker could not start: {_cause(exc)}") from None

    def run(self, items: Sequence[Any], method: str, make_args: Callable[[Any], tuple],
            on_result: Callable[[Any, Any], None], on_failure: Callable[[Any, str], None],
            on_retry: Optional[Callable[[Any, str], None]] = None, max_attempts: int = 3) -> PoolStats:
        """Calls ``actor.<method>(*make_args(item))`` for every item on some worker.

        ``make_args`` is called just before an item is sent (so inputs are read lazily);
        ``on_result(item, result)`` as each finishes, in the order they finish; ``on_failure(item,
        message)`` for an item whose worker died ``max_attempts`` times while holding it, or whose
        call raised; ``on_retry(item, message)`` when an item is given out again.
        """
        ray = self._ray
        death_errors = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)
        pending = deque(items)
        attempts: Dict[int, int] = {}
        state = ["alive"] * len(self.actors)  # alive | restarting | dead
        deaths = [0] * len(self.actors)
        queued = [0] * len(self.actors)
        running: Dict[Any, tuple] = {}  # ObjectRef -> (slot, item)
        probes: Dict[Any, int] = {}     # ObjectRef of pid() on a restarting worker -> slot

        def worker_died(slot: int) -> None:
            if state[slot] != "alive":
                return  # its other items report the same death
            self.stats.worker_deaths += 1
            deaths[slot] += 1
            state[slot] = "dead" if deaths[slot] > self.max_restarts else "restarting"
            if state[slot] == "restarting":
                probes[self.actors[slot].pid.remote()] = slot

        while pending or running:
            for slot in range(len(self.actors)):
                while state[slot] == "alive" and pending and queued[slot] < self.in_flight:
                    item = pending.popleft()
                    try:
                        args = make_args(item)
                    except WavesepError as exc:
                        on_failure(item, str(exc))
                        continue
                    running[getattr(self.actors[slot], method).remote(*args)] = (slot, item)
                    queued[slot] += 1
            if not running and not probes:
                for item in pending:
                    on_failure(item, "every Ray worker died; not done")
                pending.clear()
                break
            (ref,), _ = ray.wait(list(running) + list(probes), num_returns=1)
            if ref in probes:  # is a restarting worker back?
                slot = probes.pop(ref)
                try:
                    ray.get(ref)
                    state[slot] = "alive"
                except ray.exceptions.ActorUnavailableError:
                    time.sleep(0.2)
                    probes[self.actors[slot].pid.remote()] = slot
                except death_errors:
                    state[slot] = "dead"
                continue
            slot, item = running.pop(ref)
            queued[slot] -= 1
            try:
                result = ray.get(ref)
            except death_errors as exc:
                worker_died(slot)
                key = id(item)
                attempts[key] = attempts.get(key, 1) + 1
                why = f"Ray worker {slot} died ({_cause(exc)})"
                if attempts[key] > max_attempts:
                    on_failure(item, f"{why}; given up after {max_attempts} attempts")
                else:
                    self.stats.retried += 1
                    if on_retry is not None:
                        on_retry(item, why)
                    pending.appendleft(item)
                continue
            except ray.exceptions.RayTaskError as exc:
                on_failure(item, f"unexpected error in a Ray worker: {_cause(exc)}")
                continue
            self.stats.finished += 1
            on_result(item, result)
        return self.stats

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor, no_restart=True)


def _cause(exc: BaseException) -> str:
    """The first line of a Ray error, which otherwise carries whole remote tracebacks."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def default_workers(cpus_per_worker: float, use_gpus: bool) -> int:
    """One worker per GPU of the cluster when ``use_gpus``, else one per ``cpus_per_worker`` CPUs."""
    resources = require_ray().cluster_resources()
    if use_gpus and resources.get("GPU", 0) >= 1:
        return int(resources["GPU"])
    return max(1, int(resources.get("CPU", os.cpu_count() or 1) // cpus_per_worker))


__all__ = ["ActorPool", "ClusterError", "INSTALL", "PoolStats", "connect", "default_workers", "disconnect",
           "require_ray"]
