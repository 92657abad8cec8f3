"""SIGINT and SIGTERM as an exception, for the command lines that write files.

While :class:`StopSignals` is active, both signals raise :class:`Interrupted` (a
``KeyboardInterrupt``), so that SIGTERM too unwinds through the clean-up of temporary files
instead of killing the process where it stands; the command then exits with 128 + the signal
(130, 143). (Training polls its own flag instead, to finish the current step: wavesep.training.)
:func:`leave_stops_to_the_parent` is the other side: worker processes ignore both signals and
leave the stop to the process that started them; the parent starts them inside
:func:`stops_held`, so that a signal sent before a worker could ignore it waits instead of
killing it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, Optional


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal (SIGINT or SIGTERM, in ``signum``)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """While active, SIGINT and SIGTERM raise :class:`Interrupted`, so that SIGTERM too unwinds
    through the clean-up of temporary files, and are remembered in ``signum``: an interrupt that
    a C library swallowed on its way (cffi prints and drops an exception raised in a callback)
    and the worker threads, which signals do not reach, still see it through :meth:`check`.
    Handlers can only be set from the main thread; elsewhere only ``signum`` is used."""

    def __init__(self):
        self.signum: Optional[int] = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        self.signum = self.signum or signum
        raise Interrupted(signum)

    def check(self) -> None:
        """Raises :class:`Interrupted` if a stop was asked for."""
        if self.signum is not None:
            raise Interrupted(self.signum)


__all__ = ["Interrupted", "StopSignals", "leave_stops_to_the_parent", "stops_held"]

_STOPS = (signal.SIGINT, signal.SIGTERM)
_CAN_HOLD = hasattr(signal, "pthread_sigmask")  # POSIX; elsewhere holding is a no-op


def leave_stops_to_the_parent(worker_id: Optional[int] = None) -> None:
    """Ignore SIGINT and SIGTERM in this (worker) process; a ``worker_init_fn`` for DataLoaders.

    The parent turns a stop into a clean exit (training: a checkpoint) and then shuts its workers
    down itself. A SIGTERM to the whole process group, as job managers send it (Slurm,
    ``timeout``, ``docker stop``), would otherwise kill a worker first, and the parent would die
    with a traceback in the middle of its work.
    """
    for sig in _STOPS:
        signal.signal(sig, signal.SIG_IGN)
    if _CAN_HOLD:  # a stop held since the fork (stops_held) is now discarded, not fatal
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


@contextlib.contextmanager
def stops_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back from this thread while worker processes are started.

    A worker inherits the held signals and lets them go in :func:`leave_stops_to_the_parent`,
    once it ignores them: a SIGTERM sent to the whole process group while a worker was still
    starting would otherwise kill it (the default action) before its ``worker_init_fn`` ran.
    On leaving, this thread's previous mask comes back and a stop sent to it meanwhile is
    delivered. (Only this thread holds: a stop sent to the whole process may be taken at once by
    another of its threads, and Python runs the handler in the main thread as usual.) A no-op
    where the platform has no ``pthread_sigmask``.
    """
    if not _CAN_HOLD:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
