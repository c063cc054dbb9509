"""A Lockout is freed as soon as the application drops it, and each call reads the settings of the lockout it
is made on.

A lockout holds up to 5 MB of plan and address caches and its store (a Redis connection pool); applications
build a new one to change a compiled setting, and tests build hundreds. Before the package was split, nothing
in a Lockout referred back to it, so dropping the last reference freed it at once; a reference cycle would keep
each dropped lockout (its caches listed by ``bounded_caches()``, its store open) until the cycle collector runs.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import weakref
from collections.abc import Iterator

import pytest

from backend_guard.exceptions import AccountLocked, InvalidCredentials
from backend_guard.lockout import Lockout, LockoutEvent
from backend_guard.storage import MemoryStore

IP = "203.0.113.7"


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _use(lock: Lockout) -> None:
    """Every kind of call, sync and async, so each helper the lockout made has been used once."""
    lock.check("alice", IP)
    lock.record_failure("alice", IP)
    lock.record_success("alice", IP)
    with lock.attempt("alice", IP) as attempt:
        attempt.succeeded()
    with lock.attempt("bob", IP):
        pass

    async def twins() -> None:
        await lock.acheck("alice", IP)
        async with lock.aattempt("alice", IP) as attempt:
            attempt.succeeded()
        await lock.aunlock("bob")

    asyncio.run(twins())


@pytest.mark.usefixtures("no_cycle_collector")
def test_a_dropped_lockout_is_freed_without_the_cycle_collector() -> None:
    events: list[LockoutEvent] = []
    lock = Lockout(MemoryStore(), max_failures=3, on_event=events.append)
    _use(lock)
    assert events  # the audit path ran too
    gone = weakref.ref(lock)
    del lock
    assert gone() is None


def test_a_copy_of_a_lockout_answers_with_its_own_settings() -> None:
    """``generic`` and ``on_event`` are read on every call: from the lockout the call is made on."""
    lock = Lockout(MemoryStore(), max_failures=1)
    lock.record_failure("alice", IP)
    twin = copy.copy(lock)
    seen: list[LockoutEvent] = []
    twin.generic = True
    twin.on_event = seen.append
    with pytest.raises(AccountLocked), lock.attempt("alice", IP):
        pass
    with pytest.raises(InvalidCredentials), twin.attempt("alice", IP):
        pass
    twin.record_failure("bob", IP)
    assert [e.kind for e in seen] == ["failure", "lockout"]
