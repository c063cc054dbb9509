"""PasswordHasher's async API: same results as the sync one, off the event loop, in a bounded pool."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import argon2.low_level
import pytest
from argon2.low_level import Type, verify_secret

import backend_guard.passwords._pool as pool_mod
from backend_guard.exceptions import ConfigurationError, InvalidHash, InvalidPassword
from backend_guard.passwords import TEST, Argon2Parameters, PasswordHasher

WAIT = 10.0  # deadlock guard only: nothing here measures time


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    h = PasswordHasher(TEST, allow_weak=True, max_concurrency=2)
    yield h
    h.close()


async def test_async_api_matches_sync(hasher: PasswordHasher) -> None:
    stored = await hasher.ahash("correct horse")
    assert hasher.verify(stored, "correct horse")
    assert await hasher.averify(stored, "correct horse") is True
    assert await hasher.averify(stored, "wrong") is False
    assert await hasher.averify_and_update(stored, "correct horse") == (True, None)
    assert await hasher.adummy_verify("anything") is False
    strong = PasswordHasher(Argon2Parameters(time_cost=2, memory_cost=64), allow_weak=True)
    ok, new_hash = await strong.averify_and_update(stored, "correct horse")
    assert ok
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$v=19$m=64,t=2,p=1$")
    strong.close()


async def test_async_errors_propagate(hasher: PasswordHasher) -> None:
    with pytest.raises(InvalidPassword):
        await hasher.ahash("")
    with pytest.raises(InvalidPassword):
        await hasher.averify("$argon2id$whatever", "nul\x00")
    with pytest.raises(InvalidHash):
        await hasher.averify("garbage", "pw")
    with pytest.raises(InvalidHash):
        await hasher.averify_and_update("garbage", "pw")


async def test_aauthenticate_with_sync_and_async_setters(hasher: PasswordHasher) -> None:
    with pytest.raises(InvalidHash):
        await hasher.aauthenticate("garbage", "hunter2")
    stored = hasher.hash("hunter2")
    policy = PasswordHasher(Argon2Parameters(time_cost=2, memory_cost=16), allow_weak=True)
    saved: list[str] = []

    async def save(new_hash: str) -> None:
        saved.append(new_hash)

    assert await policy.aauthenticate(None, "hunter2", on_rehash=save) is False
    assert await policy.aauthenticate(stored, "wrong", on_rehash=save) is False
    assert saved == []
    assert await policy.aauthenticate(stored, "hunter2", on_rehash=save) is True
    assert await policy.aauthenticate(stored, "hunter2", on_rehash=saved.append) is True
    assert len(saved) == 2
    assert all(policy.verify_and_update(h, "hunter2") == (True, None) for h in saved)
    policy.close()


async def test_averify_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch, hasher: PasswordHasher) -> None:
    # The argon2 call waits for a signal that only the event loop can send: if averify ran on the loop's
    # thread, the signal could never be sent and the wait would run out.
    release = threading.Event()
    seen: list[tuple[bool, bool]] = []
    real = verify_secret
    loop_thread = threading.get_ident()

    def gated(hash: bytes, secret: bytes, type: Type) -> bool:
        released = release.wait(WAIT)
        seen.append((released, threading.get_ident() != loop_thread))
        return real(hash, secret, type)

    stored = hasher.hash("pw")
    monkeypatch.setattr(argon2.low_level, "verify_secret", gated)
    task = asyncio.create_task(hasher.averify(stored, "pw"))
    await asyncio.sleep(0)
    ticks = 0
    while not task.done() and ticks < 3:
        ticks += 1  # the loop keeps running other tasks meanwhile
        await asyncio.sleep(0)
    release.set()
    assert await task is True
    assert seen == [(True, True)]
    assert ticks == 3


async def test_concurrency_is_bounded(monkeypatch: pytest.MonkeyPatch, hasher: PasswordHasher) -> None:
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    pair = threading.Barrier(2, timeout=WAIT)  # proves two calls do run at the same time
    real = verify_secret

    def counted(hash: bytes, secret: bytes, type: Type) -> bool:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            pair.wait()
            return real(hash, secret, type)
        finally:
            with lock:
                in_flight -= 1

    stored = hasher.hash("pw")
    monkeypatch.setattr(argon2.low_level, "verify_secret", counted)
    results = await asyncio.gather(*(hasher.averify(stored, "pw") for _ in range(8)))
    assert results == [True] * 8
    assert peak == 2


async def test_max_concurrency_set_before_the_first_async_call_sizes_the_pool(
    monkeypatch: pytest.MonkeyPatch, hasher: PasswordHasher
) -> None:
    # A public attribute: lowered before the pool exists, it bounds the pool (as it always did).
    hasher.max_concurrency = 1
    pair = threading.Barrier(2, timeout=0.5)  # two calls at once pass it; one alone breaks it
    met: list[bool] = []
    real = verify_secret

    def counted(hash: bytes, secret: bytes, type: Type) -> bool:
        try:
            pair.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            pass
        return real(hash, secret, type)

    stored = hasher.hash("pw")
    monkeypatch.setattr(argon2.low_level, "verify_secret", counted)
    results = await asyncio.gather(*(hasher.averify(stored, "pw") for _ in range(4)))
    assert results == [True] * 4
    assert met == []


def test_pool_size_comes_from_the_memory_budget() -> None:
    cpus = max(1, pool_mod.usable_cpus() - 1)
    params = Argon2Parameters(time_cost=1, memory_cost=1000)
    assert PasswordHasher(params, allow_weak=True, memory_budget_kib=999).max_concurrency == 1
    assert PasswordHasher(params, allow_weak=True, memory_budget_kib=3000).max_concurrency == min(3, cpus)
    assert PasswordHasher(memory_budget_kib=19456 * 64).max_concurrency == min(64, cpus)
    assert PasswordHasher(params, allow_weak=True, max_concurrency=5).max_concurrency == 5
    with pytest.raises(ConfigurationError):
        PasswordHasher(params, allow_weak=True, max_concurrency=0)


def test_one_hasher_serves_several_event_loops() -> None:
    h = PasswordHasher(TEST, allow_weak=True)
    stored = h.hash("pw")

    async def check() -> bool:
        return await h.averify(stored, "pw")

    assert asyncio.run(check()) is True
    assert asyncio.run(check()) is True
    h.close()
    assert asyncio.run(check()) is True  # the pool comes back after close()
    h.close()


async def test_cancelled_waiter_leaves_the_hasher_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    h = PasswordHasher(TEST, allow_weak=True, max_concurrency=1)
    stored = h.hash("pw")
    release = threading.Event()
    real = verify_secret

    def gated(hash: bytes, secret: bytes, type: Type) -> bool:
        release.wait(WAIT)
        return real(hash, secret, type)

    monkeypatch.setattr(argon2.low_level, "verify_secret", gated)
    first = asyncio.create_task(h.averify(stored, "pw"))
    queued = asyncio.create_task(h.averify(stored, "pw"))
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    release.set()
    assert await first is True
    assert await h.averify(stored, "pw") is True
    h.close()
