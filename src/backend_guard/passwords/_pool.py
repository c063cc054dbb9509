"""The bounded worker pool the async methods of :class:`~backend_guard.passwords.PasswordHasher` run in.

What lives here: how many hashes may run at once (:func:`default_concurrency`: the memory budget over the
policy's memory, capped at the CPUs less one) and :class:`WorkerPool`, which keeps waiting calls in the event
loop (an ``asyncio.Semaphore`` per loop: cancellable, first come first served) and runs them in one thread
pool shared by every loop, so the threads, and the memory they hold, stay bounded.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["WorkerPool", "default_concurrency", "usable_cpus"]

T = TypeVar("T")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one).

    Example::

        usable_cpus()   # 8
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS and Windows
        return os.cpu_count() or 1


def default_concurrency(memory_budget_kib: int, memory_cost: int) -> int:
    """Hashes that fit in ``memory_budget_kib`` at ``memory_cost`` KiB each, at most the CPUs less one (>= 1).

    One CPU stays free for the event loop and the rest of the server (see docs/passwords.md).

    Example::

        default_concurrency(256 * 1024, 19456)   # min(13, CPUs - 1)
    """
    by_memory = max(1, memory_budget_kib // memory_cost)
    return min(by_memory, max(1, usable_cpus() - 1))


class WorkerPool:
    """At most ``size`` calls at once, in threads, for async callers on any number of event loops.

    The pool is created on first use and again after :meth:`close`.

    Example::

        pool = WorkerPool(2)
        digest = await pool.run(functools.partial(hasher.hash, "pw"))
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()  # pool and semaphores: held for microseconds, also on the event loop
        self._pool: ThreadPoolExecutor | None = None
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="backend-guard-argon2")
            return self._pool

    def _semaphore(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        with self._lock:
            sem = self._semaphores.get(loop)
            if sem is None:
                sem = self._semaphores[loop] = asyncio.Semaphore(self.size)
            return sem

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` in a worker thread, once one of the ``size`` slots is free.

        Example::

            ok = await pool.run(functools.partial(hasher.verify, stored, "pw"))
        """
        # The semaphore keeps waiting calls in the event loop (cancellable, first come first served); the pool
        # bounds the threads, and so the memory, across every loop sharing this hasher.
        loop = asyncio.get_running_loop()
        async with self._semaphore(loop):
            return await loop.run_in_executor(self._executor(), call)

    def close(self) -> None:
        """Shut the threads down (waiting for running calls); the next :meth:`run` starts new ones.

        Example::

            pool.close()
        """
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
