"""Account lockout over the memory store and the real Redis: exact under parallel attacks, scoped resets,
backoff with a frozen clock, no shared locks from odd identifiers, generic mode, audit and storage failures."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from pydantic import BaseModel
from starlette.requests import Request

from backend_guard.errors import problem_response
from backend_guard.exceptions import AccountLocked, ConfigurationError, StorageError
from backend_guard.lockout import Attempt, InvalidCredentials, Lockout, LockoutEvent, normalize_identifier
from backend_guard.storage import MemoryStore, RedisStore, Store

from .conftest import REDIS_URL, FrozenClock, free_port

IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"


def fail(lock: Lockout, account: str, ip: str | None = IP) -> bool:
    """One wrong-password attempt; True when it reached the verifier, False when refused."""
    try:
        with lock.attempt(account, ip):
            return True
    except AccountLocked:
        return False


def succeed(lock: Lockout, account: str, ip: str | None = IP) -> bool:
    try:
        with lock.attempt(account, ip) as attempt:
            attempt.succeeded()
            return True
    except AccountLocked:
        return False


def _patient(store: Store) -> Store:
    """The same store, with generous timeouts on Redis: 100 clients connecting at once on a busy 2-core box."""
    if isinstance(store, RedisStore):
        return RedisStore(REDIS_URL, prefix=store.prefix, socket_timeout=10, connect_timeout=10)
    return store


# -- thresholds and exact counts ----------------------------------------------------------------------------


def test_threshold_locks_the_pair_only(store: Store) -> None:
    lock = Lockout(store=store, max_failures=3)
    assert [fail(lock, "alice") for _ in range(5)] == [True, True, True, False, False]
    status = lock.check("alice", IP)
    assert status.locked
    assert status.scope == "pair"
    assert 0 < status.retry_after <= 300
    assert lock.check("alice", OTHER_IP).locked is False
    assert lock.check("bob", IP).locked is False


def test_parallel_threads_reach_the_verifier_exactly_threshold_times(store: Store) -> None:
    lock = Lockout(store=_patient(store), max_failures=5)
    barrier = threading.Barrier(100)
    reached: list[bool] = []
    mutex = threading.Lock()

    def worker() -> None:
        barrier.wait()
        ok = fail(lock, "victim")
        with mutex:
            reached.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lock.store.close()
    assert len(reached) == 100
    assert sum(reached) == 5


async def test_parallel_tasks_reach_the_verifier_exactly_threshold_times(astore: Store) -> None:
    lock = Lockout(store=_patient(astore), max_failures=5)

    async def one() -> bool:
        try:
            async with lock.aattempt("victim", IP):
                await asyncio.sleep(0)
                return True
        except AccountLocked:
            return False

    try:
        results = await asyncio.gather(*(one() for _ in range(100)))
        assert sum(results) == 5
        assert (await lock.acheck("victim", IP)).locked
    finally:
        await lock.store.aclose()


def _process_worker(prefix: str, start: Any, attempts: int) -> int:
    lock = Lockout(store=RedisStore(REDIS_URL, prefix=prefix, socket_timeout=10, connect_timeout=10), max_failures=5)
    start.wait()
    return sum(fail(lock, "victim") for _ in range(attempts))


@pytest.mark.redis
def test_parallel_processes_reach_the_verifier_exactly_threshold_times(redis_store: RedisStore) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(4) as pool:
            pending = [pool.apply_async(_process_worker, (redis_store.prefix, start, 25)) for _ in range(4)]
            start.set()
            reached = [p.get(timeout=60) for p in pending]
    assert sum(reached) == 5
    assert Lockout(store=redis_store).check("victim", IP).locked


# -- backoff, windows, no extension while locked --------------------------------------------------------------


def test_backoff_schedule(clock: FrozenClock) -> None:
    lock = Lockout(
        store=MemoryStore(clock=clock),
        max_failures=3,
        window=600,
        lockout_duration=60,
        backoff_factor=2,
        max_lockout_duration=400,
        account_max_failures=None,
    )
    assert [fail(lock, "alice") for _ in range(3)] == [True, True, True]
    durations = []
    for _ in range(5):
        status = lock.check("alice", IP)
        assert status.locked
        durations.append(status.retry_after)
        clock.advance(status.retry_after - 0.001)
        assert not fail(lock, "alice")  # still locked a millisecond before the end
        clock.advance(0.001)
        assert lock.check("alice", IP).remaining == 1  # after a lock: one more try
        assert fail(lock, "alice")  # ... and its failure locks again, for longer
    assert durations == [60, 120, 240, 400, 400]


def test_quiet_window_starts_the_count_over(clock: FrozenClock) -> None:
    lock = Lockout(store=MemoryStore(clock=clock), max_failures=3, window=600, lockout_duration=60)
    fail(lock, "alice")
    fail(lock, "alice")
    assert lock.check("alice", IP).remaining == 1
    clock.advance(600)
    assert lock.check("alice", IP).remaining == 3
    for _ in range(3):
        fail(lock, "alice")
    clock.advance(60 + 600)
    assert lock.check("alice", IP).remaining == 3
    for _ in range(3):
        fail(lock, "alice")
    assert lock.check("alice", IP).retry_after == 120  # strikes are remembered for backoff_reset
    clock.advance(86_400 + 120 + 600)
    for _ in range(3):
        fail(lock, "alice")
    assert lock.check("alice", IP).retry_after == 60


def test_attempts_while_locked_do_not_extend_the_lock(clock: FrozenClock) -> None:
    lock = Lockout(store=MemoryStore(clock=clock), max_failures=2, lockout_duration=100)
    fail(lock, "alice")
    fail(lock, "alice")
    clock.advance(50)
    for _ in range(10):
        assert not fail(lock, "alice")
        assert lock.record_failure("alice", IP).locked
    assert lock.check("alice", IP).retry_after == 50


def test_extend_while_locked_is_configurable(clock: FrozenClock) -> None:
    lock = Lockout(store=MemoryStore(clock=clock), max_failures=2, lockout_duration=100, extend_while_locked=True)
    fail(lock, "alice")
    fail(lock, "alice")
    clock.advance(50)
    assert not fail(lock, "alice")
    assert lock.check("alice", IP).retry_after == 100


@pytest.mark.redis
def test_redis_lock_expires_by_the_server_clock(redis_store: RedisStore) -> None:
    lock = Lockout(store=redis_store, max_failures=2, lockout_duration=0.05, max_lockout_duration=0.05)
    fail(lock, "alice")
    fail(lock, "alice")
    assert lock.check("alice", IP).locked
    import time

    time.sleep(0.08)
    assert lock.check("alice", IP).locked is False
    assert fail(lock, "alice")


# -- reset scoping and the known-address rule ---------------------------------------------------------------------


def test_success_clears_the_pair_but_never_the_address_counter(store: Store) -> None:
    lock = Lockout(store=store, max_failures=5, address_max_failures=4)
    fail(lock, "mallory", IP)
    fail(lock, "mallory", IP)
    fail(lock, "bob", IP)
    assert succeed(lock, "mallory", IP)  # the attacker's own account logs in from the same address
    assert lock.check("mallory", IP).remaining == 5  # its pair is cleared (and the address is known for it)
    assert lock.check("carol", IP).remaining == 1  # but the address keeps its 3 of 4 failures
    fail(lock, "carol", IP)
    status = lock.check("dave", IP)
    assert status.locked
    assert status.scope == "address"
    assert lock.check("dave", OTHER_IP).locked is False
    lock.unlock_address(IP)
    assert lock.check("dave", IP).locked is False


def test_success_takes_back_its_own_reservation(store: Store) -> None:
    lock = Lockout(store=store, max_failures=10, account_max_failures=3)
    fail(lock, "alice", "192.0.2.1")
    fail(lock, "alice", "192.0.2.2")
    # The third reservation reaches the account threshold and locks, but it is a success: the lock is undone.
    assert succeed(lock, "alice", "192.0.2.3")
    assert lock.check("alice", "192.0.2.4").locked is False
    assert lock.check("alice", "192.0.2.4").remaining == 1
    fail(lock, "alice", "192.0.2.4")
    assert lock.check("alice", "192.0.2.5").scope == "account"


def test_strangers_cannot_lock_the_user_out_of_a_known_address(store: Store) -> None:
    lock = Lockout(store=store, max_failures=5, account_max_failures=10)
    home = "192.0.2.10"
    assert succeed(lock, "alice", home)
    for i in range(30):
        fail(lock, "alice", f"10.0.{i}.1")
    stranger = lock.check("alice", "10.9.9.9")
    assert stranger.locked
    assert stranger.scope == "account"
    at_home = lock.check("alice", home)
    assert at_home.locked is False
    assert at_home.known_address
    assert succeed(lock, "alice", home)


@pytest.mark.parametrize(
    ("plain", "spellings"),
    [
        ("192.0.2.7", ["192.0.2.7:5678", " 192.0.2.7:80 ", "::ffff:192.0.2.7", "[::ffff:192.0.2.7]:443"]),
        ("2001:db8::1", ["[2001:db8::1]:443", "[2001:DB8:0:0::1]", "2001:db8::2"]),  # ::2: the same /64
    ],
)
def test_an_address_written_with_a_port_or_brackets_counts_in_the_same_bucket(
    store: Store, plain: str, spellings: list[str]
) -> None:
    # A caller passing "host:port" (a peer as some servers report it) must not give each spelling fresh
    # per-address guesses: every spelling of one client counts against one pair.
    lock = Lockout(store=store, max_failures=3, account_max_failures=None)
    for spelling in spellings:
        fail(lock, "erin", spelling)
    assert lock.check("erin", plain).locked
    assert all(lock.check("erin", spelling).locked for spelling in spellings)


def test_the_account_ceiling_holds_even_for_known_addresses(store: Store) -> None:
    lock = Lockout(store=store, max_failures=3, account_max_failures=None, account_ceiling=6)
    home = "192.0.2.10"
    assert succeed(lock, "alice", home)
    for i in range(6):
        fail(lock, "alice", f"10.0.{i}.1")
    status = lock.check("alice", home)
    assert status.locked
    assert status.scope == "ceiling"
    lock.unlock("alice")
    assert lock.check("alice", home).locked is False


def test_a_success_resets_the_consecutive_ceiling(store: Store) -> None:
    lock = Lockout(store=store, max_failures=3, account_max_failures=None, account_ceiling=4)
    for i in range(3):
        fail(lock, "alice", f"10.0.{i}.1")
    assert succeed(lock, "alice", IP)
    for i in range(3):
        fail(lock, "alice", f"10.1.{i}.1")
    assert lock.check("alice", IP).locked is False


def test_unlock_one_pair_or_the_whole_account(store: Store) -> None:
    lock = Lockout(store=store, max_failures=2)
    for ip in (IP, OTHER_IP):
        fail(lock, "alice", ip)
        fail(lock, "alice", ip)
    lock.unlock("alice", IP)
    assert lock.check("alice", IP).locked is False
    assert lock.check("alice", OTHER_IP).locked
    lock.unlock("alice")
    assert lock.check("alice", OTHER_IP).locked is False


def test_unlock_removes_every_pair_of_a_sprayed_account_not_only_one_scan_s_worth(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A spray from many addresses leaves more per-address counters than one scan returns (10,000; 7 here): the
    # unlock said "removed" and the owner's own address stayed locked (operators' trial).
    from backend_guard.lockout import _lockout

    monkeypatch.setattr(_lockout, "_UNLOCK_BATCH", 7)
    lock = Lockout(store=store, max_failures=2, account_max_failures=None)
    for i in range(30):
        fail(lock, "alice", f"10.9.{i}.1")
    fail(lock, "alice", IP)
    fail(lock, "alice", IP)
    assert lock.check("alice", IP).locked
    assert lock.unlock("alice") >= 31
    assert lock.check("alice", IP).locked is False
    assert [lock.check("alice", f"10.9.{i}.1").remaining for i in range(30)] == [2] * 30


async def test_aunlock_removes_every_pair_too(astore: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend_guard.lockout import _lockout

    monkeypatch.setattr(_lockout, "_UNLOCK_BATCH", 5)
    lock = Lockout(store=astore, max_failures=1, account_max_failures=None)
    for i in range(12):
        await lock.arecord_failure("bob", f"10.8.{i}.1")
    assert await lock.aunlock("bob") >= 12
    assert not any([(await lock.acheck("bob", f"10.8.{i}.1")).locked for i in range(12)])


def test_unlock_and_locked_accounts_find_locks_under_a_store_prefix_with_glob_characters(store: Store) -> None:
    # the store's prefix is the operator's text: a backslash or a bracket in it is taken literally by the scans
    # behind unlock() and locked_accounts(), on the memory store and Redis alike (both read Redis's glob rules)
    odd: Store = (
        RedisStore(REDIS_URL, prefix=store.prefix + ":a\\b*[c]", socket_timeout=10, connect_timeout=10)
        if isinstance(store, RedisStore)
        else MemoryStore(prefix=store.prefix + ":a\\b*[c]")
    )
    lock = Lockout(store=odd, max_failures=2)
    for ip in (IP, OTHER_IP):
        fail(lock, "alice", ip)
        fail(lock, "alice", ip)
    assert sorted(r.scope for r in lock.locked_accounts()) == ["pair", "pair"]
    lock.unlock("alice")
    assert not lock.check("alice", IP).locked
    assert not lock.check("alice", OTHER_IP).locked


# -- identifiers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["Alice", "  ALICE\t", "\uff41\uff4c\uff49\uff43\uff45"])
def test_identifier_variants_share_one_lock(store: Store, variant: str) -> None:
    lock = Lockout(store=store, max_failures=2)
    fail(lock, "alice")
    fail(lock, variant)
    assert lock.check("alice", IP).locked
    assert lock.account_id(variant) == lock.account_id("alice")


def test_normalization() -> None:
    assert normalize_identifier(" Stra\u00dfe ") == "strasse"
    assert normalize_identifier(b"ALICE") == "alice"
    assert normalize_identifier("\u212b") == normalize_identifier("\u00e5")  # Angstrom sign vs a-ring


def test_empty_identifier_never_makes_a_shared_lock(store: Store) -> None:
    lock = Lockout(store=store, max_failures=2, account_max_failures=2, account_ceiling=2)
    for _ in range(5):
        fail(lock, "", IP)
        fail(lock, "   ", IP)
    assert lock.check("", IP).locked  # counted per address ...
    assert lock.check("", OTHER_IP).locked is False  # ... never shared by every client
    assert lock.check(" ", OTHER_IP).locked is False
    assert store.scan(f"{store.prefix}:lockout:*:ac") == []


async def test_a_none_account_is_nobody_s_account_never_the_name_none(astore: Store) -> None:
    """``None`` (a login form without a name) is the empty identifier: counted per address only. It was counted
    as the account ``"none"``: every caller passing None shared one counter, and locked a user named None."""
    store = astore
    lock = Lockout(store=store, max_failures=2, account_max_failures=2, account_ceiling=2)
    for i in range(3):
        fail(lock, None, f"192.0.2.{i}")  # type: ignore[arg-type]
        fail(lock, None, f"192.0.2.{i}")  # type: ignore[arg-type]
        lock.record_failure(None, f"192.0.2.{i}")  # type: ignore[arg-type]
    async with lock.aattempt(None, "192.0.2.9"):  # type: ignore[arg-type]
        pass
    assert lock.check("none", OTHER_IP).locked is False  # the user named None is nobody's victim
    assert lock.check("None", "192.0.2.0").locked is False
    assert lock.check(None, OTHER_IP).locked is False  # type: ignore[arg-type]
    assert lock.check(None, "192.0.2.0").locked  # type: ignore[arg-type]  # counted per address
    assert lock.account_id(None) == lock.account_id("")  # type: ignore[arg-type]
    assert store.scan(f"{store.prefix}:lockout:*:ac") == []


async def test_unlock_of_a_none_account_lifts_the_lock_check_of_none_reports(astore: Store) -> None:
    """``check(None, ip)`` reports the empty identifier's lock at ``ip``: ``unlock(None, ip)`` (and ``aunlock``)
    must lift that lock, not silently delete the address-wide counter instead and leave it in place."""
    lock = Lockout(store=astore, max_failures=2, address_max_failures=50)
    for _ in range(2):
        fail(lock, None, IP)  # type: ignore[arg-type]
    assert lock.check(None, IP).locked  # type: ignore[arg-type]
    assert lock.unlock(None, IP) == 1  # type: ignore[arg-type]
    assert lock.check(None, IP).locked is False  # type: ignore[arg-type]
    for _ in range(2):
        fail(lock, None, OTHER_IP)  # type: ignore[arg-type]
    assert await lock.aunlock(None) >= 1  # type: ignore[arg-type]  # every address's pair of nobody's account
    assert lock.check(None, OTHER_IP).locked is False  # type: ignore[arg-type]
    assert lock.check("", OTHER_IP).locked is False
    lock.unlock_address(IP)
    lock.unlock_address(OTHER_IP)


def test_huge_and_unicode_identifiers_make_short_keys(store: Store) -> None:
    lock = Lockout(store=store, max_failures=2)
    huge = "x" * 1_000_000
    for name in (huge, "\U0001f600" * 1000, "a:b{c}*?[", "\x00\u200b"):
        fail(lock, name)
        fail(lock, name)
        assert lock.check(name, IP).locked
    assert lock.check(huge[:-1], IP).locked is False
    keys = store.scan(f"{store.prefix}:*", count=10_000)
    assert keys
    assert max(len(k) for k in keys) < 200
    assert not any("xxxx" in k for k in keys)


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_normalization_is_idempotent_and_ids_follow_it(name: str) -> None:
    once = normalize_identifier(name)
    assert normalize_identifier(once) == once
    lock = Lockout()
    assert lock.account_id(name) == lock.account_id(once)
    assert lock.account_id(f"  {name.upper()} ") == lock.account_id(name.upper())


def test_secret_changes_the_hashed_ids() -> None:
    a = Lockout(secret="s" * 32).account_id("alice")
    b = Lockout(secret="t" * 32).account_id("alice")
    assert a != b
    assert "alice" not in a
    with pytest.raises(ConfigurationError):
        Lockout(secret="short")


@pytest.mark.parametrize("size", [16, 64, 65, 1000])
def test_secrets_of_any_length_key_the_ids(size: int, store: Store) -> None:
    # BLAKE2b takes keys of at most 64 bytes: a longer secret is hashed first, never refused or truncated, so two
    # long secrets that share their first 64 bytes still key different ids.
    secret = b"k" * size
    lock = Lockout(store=store, secret=secret, max_failures=2)
    other = Lockout(store=store, secret=secret + b"x", max_failures=2)
    assert lock.account_id("alice") == Lockout(secret=secret).account_id(" ALICE ")
    assert lock.account_id("alice") != other.account_id("alice")
    assert len(lock.account_id("alice")) == 32
    lock.record_failure("alice", IP)
    assert lock.record_failure("alice", IP).remaining == 0
    assert lock.check("alice", IP).locked
    assert not other.check("alice", IP).locked  # other ids, other counters


def test_an_account_and_an_address_with_the_same_text_never_share_a_digest() -> None:
    lock = Lockout()
    assert lock._digest(b"account", "203.0.113.7") != lock._digest(b"address", "203.0.113.7")


# -- generic mode ------------------------------------------------------------------------------------------------


def test_generic_mode_answers_a_lock_exactly_as_a_wrong_password(store: Store) -> None:
    lock = Lockout(store=store, max_failures=1, generic=True)
    with pytest.raises(InvalidCredentials) as wrong, lock.attempt("alice", IP):
        raise lock.invalid_credentials()
    with pytest.raises(InvalidCredentials) as locked, lock.attempt("alice", IP):
        pytest.fail("a locked attempt must not reach the verifier")
    assert problem_response(wrong.value) == problem_response(locked.value)
    assert not isinstance(locked.value, AccountLocked)


def test_default_mode_is_a_429_account_locked_with_retry_after(store: Store) -> None:
    lock = Lockout(store=store, max_failures=1, lockout_duration=30)
    fail(lock, "alice")
    with pytest.raises(AccountLocked) as info, lock.attempt("alice", IP):
        pass
    status, headers, body = problem_response(info.value)
    assert status == 429
    assert dict(headers)["retry-after"] in ("30", "29")
    assert json.loads(body)["code"] == "account-locked"


# -- audit ---------------------------------------------------------------------------------------------------


def test_audit_events_through_logging_and_callback(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    events: list[LockoutEvent] = []
    lock = Lockout(store=store, max_failures=2, on_event=events.append)
    caplog.set_level(logging.INFO, logger="backend_guard.lockout")
    fail(lock, "alice")
    fail(lock, "alice")
    lock.unlock("alice")
    fail(lock, "alice")
    succeed(lock, "alice")
    kinds = [e.kind for e in events]
    assert kinds == ["failure", "failure", "lockout", "unlock", "failure", "success_after_failures"]
    lockout = events[2]
    assert lockout.scope == "pair"
    assert lockout.retry_after == 300
    assert lockout.account_id == lock.account_id("alice")
    assert lockout.account is None
    assert all(r.name == "backend_guard.lockout" for r in caplog.records)
    assert any(getattr(r, "lockout_event", None) == "lockout" for r in caplog.records)
    # each line names its event as the events bus does: "lockout.locked", never "lockout lockout"
    messages = [r.getMessage().split(" account_id=")[0] for r in caplog.records if hasattr(r, "lockout_event")]
    assert messages == ["lockout.failure", "lockout.failure", "lockout.locked", "lockout.unlocked", "lockout.failure",
                        "lockout.success_after_failures"]  # fmt: skip
    assert "alice" not in caplog.text


def test_a_failing_audit_callback_does_not_break_a_login(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: LockoutEvent) -> None:
        raise RuntimeError("sink down")

    lock = Lockout(on_event=broken)
    assert succeed(lock, "alice")
    assert fail(lock, "alice")
    assert "callback failed" in caplog.text


def test_locked_accounts_uses_scan(store: Store) -> None:
    lock = Lockout(store=store, max_failures=2, account_max_failures=3)
    for name in ("alice", "bob"):
        fail(lock, name)
        fail(lock, name)
    for i in range(3):
        fail(lock, "carol", f"10.0.{i}.1")
    found = {(r.account_id, r.scope) for r in lock.locked_accounts()}
    assert found == {
        (lock.account_id("alice"), "pair"),
        (lock.account_id("bob"), "pair"),
        (lock.account_id("carol"), "account"),
    }


# -- async twins ----------------------------------------------------------------------------------------------------


async def test_async_twins(astore: Store) -> None:
    lock = Lockout(store=astore, max_failures=2)
    assert (await lock.arecord_failure("alice", IP)).remaining == 1
    assert (await lock.arecord_failure("alice", IP)).locked is False  # the failure that locks is still counted
    assert (await lock.acheck("alice", IP)).locked
    assert [r.scope for r in await lock.alocked_accounts()] == ["pair"]
    await lock.aunlock("alice")
    assert (await lock.acheck("alice", IP)).locked is False
    await lock.arecord_failure("alice", IP)
    await lock.arecord_success("alice", IP)
    assert (await lock.acheck("alice", IP)).remaining == 2
    async with lock.aattempt("alice", IP) as attempt:
        attempt.succeeded()
    assert (await lock.acheck("alice", IP)).known_address


# -- storage failures ---------------------------------------------------------------------------------------------


def _dead_store() -> RedisStore:
    return RedisStore(f"redis://127.0.0.1:{free_port()}/0", breaker_cooldown=30)


def test_storage_failure_denies_by_default_with_a_storage_error() -> None:
    lock = Lockout(store=_dead_store())
    with pytest.raises(StorageError) as info, lock.attempt("alice", IP):
        pytest.fail("must not reach the verifier")
    assert info.value.status == 503
    with pytest.raises(StorageError):
        lock.check("alice", IP)
    lock.record_success("alice", IP)  # logged and ignored: the login already succeeded


def test_storage_failure_can_fail_open(caplog: pytest.LogCaptureFixture) -> None:
    lock = Lockout(store=_dead_store(), on_storage_error="allow")
    with lock.attempt("alice", IP) as attempt:
        assert attempt.status.degraded
        attempt.succeeded()
    assert lock.check("alice", IP).degraded
    assert lock.record_failure("alice", IP).locked is False
    assert "store unavailable" in caplog.text


def test_an_attempt_names_the_account_it_counts_as_normalised() -> None:
    lock = Lockout(store=MemoryStore())
    with lock.attempt("  \uff21lice ", IP) as attempt:  # a full-width A
        assert attempt.account == normalize_identifier("alice") == "alice"
    with Lockout(store=_dead_store(), on_storage_error="allow").attempt("alice", IP) as unchecked:
        assert unchecked.account is None  # nothing was counted


async def test_async_storage_failure() -> None:
    lock = Lockout(store=_dead_store(), on_storage_error="allow")
    async with lock.aattempt("alice", IP) as attempt:
        assert attempt.status.degraded
    deny = Lockout(store=_dead_store())
    with pytest.raises(StorageError):
        await deny.acheck("alice", IP)


# -- configuration -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"account_ceiling": 101},
        {"max_failures": 0},
        {"max_failures": 10, "account_ceiling": 5},
        {"window": 0},
        {"lockout_duration": float("nan")},
        {"lockout_duration": 100, "max_lockout_duration": 10},
        {"backoff_factor": 0.5},
        {"on_storage_error": "maybe"},
        {"address_max_failures": 0},
        {"account_max_failures": True},
    ],
)
def test_unsafe_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Lockout(**kwargs)


# -- a state machine against a simple model (memory store, frozen clock) --------------------------------------------

THRESHOLD, CEILING, WINDOW, BASE, MAXD, RESET = 3, 7, 100, 10, 80, 1000


class _Rule:
    """The documented rule, written plainly: n failures in a window lock; locks back off; quiet forgets."""

    def __init__(self, threshold: int, window: int) -> None:
        self.threshold, self.window = threshold, window
        self.n = self.w = self.u = self.s = self.x = 0

    def settle(self, now: int) -> None:
        if self.w <= now:
            self.n = 0
        if self.x <= now:
            self.s = 0

    def locked(self, now: int) -> bool:
        return self.u > now

    def count(self, now: int) -> None:
        self.settle(now)
        if self.n == 0:
            self.w = now + self.window
        self.n += 1
        if self.n >= self.threshold:
            self.s += 1
            self.u = now + min(MAXD, BASE * 2 ** (self.s - 1))
            self.n = self.threshold - 1
            self.w = self.u + self.window
            self.x = max(now + RESET, self.w)

    def clear(self) -> None:
        self.n = self.w = self.u = self.s = self.x = 0


class LockoutMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock()
        self.lock = Lockout(
            store=MemoryStore(clock=self.clock),
            max_failures=THRESHOLD,
            window=WINDOW,
            lockout_duration=BASE,
            max_lockout_duration=MAXD,
            backoff_reset=RESET,
            account_max_failures=None,
            account_ceiling=CEILING,
            ceiling_window=WINDOW,
        )
        self.t = 0
        self.pairs = {ip: _Rule(THRESHOLD, WINDOW) for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3")}
        self.ceiling = _Rule(CEILING, WINDOW)

    def _locked(self, ip: str) -> int:
        """Seconds left on the lock that refuses ``ip`` (0: not locked); the model counts in whole seconds."""
        rules = [r for r in (self.pairs[ip], self.ceiling) if r.locked(self.t)]
        return max((r.u - self.t for r in rules), default=0)

    @rule(ip=st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]))
    def wrong_password(self, ip: str) -> None:
        expected = not self._locked(ip)
        assert fail(self.lock, "alice", ip) == expected
        if expected:
            self.pairs[ip].count(self.t)
            self.ceiling.count(self.t)

    @rule(ip=st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]))
    def right_password(self, ip: str) -> None:
        expected = not self._locked(ip)
        assert succeed(self.lock, "alice", ip) == expected
        if expected:
            self.pairs[ip].clear()
            self.ceiling.clear()

    @rule(seconds=st.sampled_from([1, 5, 10, 40, 99, 100, 500, 1001]))
    def wait(self, seconds: int) -> None:
        self.t += seconds
        self.clock.advance(seconds)

    @invariant()
    def check_matches_model(self) -> None:
        for ip in self.pairs:
            status = self.lock.check("alice", ip)
            left = self._locked(ip)
            assert status.locked == bool(left)
            assert status.retry_after == pytest.approx(left)


LockoutMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestLockoutModel = LockoutMachine.TestCase


# -- login routes in the four frameworks ------------------------------------------------------------------------

PASSWORD = "correct horse"


class Login(BaseModel):
    username: str
    password: str


def _fastapi_app(lock: Lockout) -> Any:
    from fastapi import Depends, FastAPI

    app = FastAPI()

    # Async and sync routes (form bodies need python-multipart, not a dependency here: JSON bodies are used).
    @app.post("/login")
    @lock.protect()
    async def login(body: Login, request: Request) -> Any:
        if body.password != PASSWORD:
            raise lock.invalid_credentials()
        request.state.login_attempt.succeeded()  # the route reports its outcome
        return {"ok": True}

    @app.post("/login-json")
    @lock.protect(field="username", success_statuses=(200,))  # or the application names its success status
    def login_json(body: Login) -> Any:
        if body.password != PASSWORD:
            raise lock.invalid_credentials()
        return {"ok": True}

    @app.post("/login-dep")
    async def login_dep(body: Login, attempt: Attempt = Depends(lock.dependency())) -> Any:  # noqa: B008
        if body.password == PASSWORD:
            attempt.succeeded()
            return {"ok": True}
        return {"ok": False}

    from starlette.responses import Response

    from backend_guard.errors import problem_response
    from backend_guard.exceptions import GuardError

    @app.exception_handler(GuardError)
    async def guard_error(request: Any, exc: GuardError) -> Response:
        status, headers, body = problem_response(exc)
        return Response(body, status_code=status, headers={k: v for k, v in headers if k != "content-length"})

    return app


@pytest.mark.parametrize("path", ["/login", "/login-json", "/login-dep"])
def test_fastapi_login_routes(path: str) -> None:
    from fastapi.testclient import TestClient

    lock = Lockout(max_failures=3)
    client = TestClient(_fastapi_app(lock))

    def post(user: str, password: str) -> Any:
        data = {"username": user, "password": password}
        return client.post(path, json=data)

    assert post("Alice", PASSWORD).status_code == 200
    statuses = [post("alice", "wrong").status_code for _ in range(5)]
    if path == "/login-dep":
        assert statuses[:3] == [200, 200, 200]
    else:
        assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    refused = post("ALICE", PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "300"
    assert post("bob", PASSWORD).status_code == 200


def test_fastapi_generic_mode_is_indistinguishable() -> None:
    from fastapi.testclient import TestClient

    lock = Lockout(max_failures=2, generic=True)
    client = TestClient(_fastapi_app(lock))
    wrong = [client.post("/login", json={"username": "alice", "password": "x"}) for _ in range(2)]
    locked = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert locked.status_code == wrong[0].status_code == 401
    assert locked.content == wrong[0].content
    assert "retry-after" not in locked.headers


_SAME_EITHER_WAY = {"date", "x-request-id", "content-length", "ratelimit"}  # values that change per request


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_a_generic_lock_under_a_rate_limit_sends_the_headers_a_wrong_password_sends(framework: str) -> None:
    # Generic mode hides a lock: the locked 401 is the hook's refusal, the wrong password's 401 the route's own
    # InvalidCredentials. Under @limiter.limit both carry the route's RateLimit fields (before, only the lock's
    # did: a header told a locked account from a wrong password), on a real server.
    import httpx

    import backend_guard as bg

    from .servers import run_asgi, run_wsgi

    lock = Lockout(max_failures=2, generic=True)
    limiter = bg.RateLimiter()
    if framework == "fastapi":
        from fastapi import FastAPI

        import backend_guard.fastapi

        app: Any = FastAPI()
        backend_guard.fastapi.install(app, bg.GuardSettings())

        @app.post("/login")
        @limiter.limit("50/minute")
        @lock.protect()
        async def login(body: Login, request: Request) -> Any:
            if body.password != PASSWORD:
                raise lock.invalid_credentials()
            request.state.login_attempt.succeeded()
            return {"ok": True}

        server = run_asgi(app)
    else:
        from flask import Flask, g
        from flask import request as flask_request

        import backend_guard.flask

        app = Flask(__name__)
        backend_guard.flask.Guard(app)

        @app.post("/login")
        @limiter.limit("50/minute")
        @lock.protect()
        def flask_login() -> Any:
            if flask_request.get_json()["password"] != PASSWORD:
                raise lock.invalid_credentials()
            g.login_attempt.succeeded()
            return {"ok": True}

        server = run_wsgi(app)
    with server as url:
        wrong = [httpx.post(f"{url}/login", json={"username": "alice", "password": "x"}) for _ in range(2)]
        locked = httpx.post(f"{url}/login", json={"username": "alice", "password": PASSWORD})
    assert [r.status_code for r in (*wrong, locked)] == [401, 401, 401]

    def document(r: Any) -> dict[str, Any]:
        return {k: v for k, v in r.json().items() if k != "request_id"}  # each request's own id

    assert document(locked) == document(wrong[0])
    assert "ratelimit" in wrong[0].headers
    assert dict(locked.headers).keys() == dict(wrong[0].headers).keys()
    assert {k: v for k, v in locked.headers.items() if k not in _SAME_EITHER_WAY} == {
        k: v for k, v in wrong[1].headers.items() if k not in _SAME_EITHER_WAY
    }


def test_starlette_login_route() -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    lock = Lockout(max_failures=2)

    @lock.protect()
    async def login(request: Request) -> JSONResponse:
        ok = (await request.json())["password"] == PASSWORD  # still readable after the decorator read it
        if ok:
            request.state.login_attempt.succeeded()
        return JSONResponse({"ok": ok}, status_code=200 if ok else 401)

    client = TestClient(Starlette(routes=[Route("/login", login, methods=["POST"])]))
    assert [client.post("/login", json={"username": "a", "password": "x"}).status_code for _ in range(3)] == [
        401,
        401,
        429,
    ]
    assert client.post("/login", json={"username": "b", "password": PASSWORD}).json() == {"ok": True}


def test_flask_login_route() -> None:
    from flask import Flask, g, request

    lock = Lockout(max_failures=2)
    app = Flask(__name__)

    @app.post("/login")
    @lock.protect(field="email")
    def login() -> Any:
        data = request.get_json() if request.is_json else request.form
        if data["password"] != PASSWORD:
            return {"ok": False}, 401
        g.login_attempt.succeeded()
        return {"ok": True}, 200

    client = app.test_client()
    assert [client.post("/login", data={"email": "A@x.org", "password": "x"}).status_code for _ in range(3)] == [
        401,
        401,
        429,
    ]
    assert client.post("/login", json={"email": " a@X.org", "password": PASSWORD}).status_code == 429
    assert client.post("/login", json={"email": "b@x.org", "password": PASSWORD}).status_code == 200


def test_django_login_route() -> None:
    from . import django_app

    django_app.setup()
    from django.http import HttpRequest, JsonResponse
    from django.test import Client
    from django.urls import path

    lock = Lockout(max_failures=2)

    @lock.protect()
    def login(request: HttpRequest) -> JsonResponse:
        ok = request.POST.get("password") == PASSWORD
        if ok:
            request.login_attempt.succeeded()  # type: ignore[attr-defined]
        return JsonResponse({"ok": ok}, status=200 if ok else 401)

    django_app.add_urls(path("lockout-login/", login))
    from django.conf import settings

    settings.ROOT_URLCONF = django_app.__name__
    client = Client()
    statuses = [client.post("/lockout-login/", {"username": "a", "password": "x"}).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert client.post("/lockout-login/", {"username": "b", "password": PASSWORD}).status_code == 200


def test_identifier_caches_stay_bounded_and_never_mix_accounts() -> None:
    """Plans are cached per (account, address) for speed; a flood of names must not grow memory without bound,
    and after the cache is cleared a name still maps to its own counters."""
    lock = Lockout(MemoryStore(), max_failures=2)
    for i in range(5000):
        lock.check(f"flood-{i}", f"198.51.100.{i % 250}")
    assert len(lock._plans) <= 2048
    assert len(lock._addr_ids) <= 2048
    lock.record_failure("Alice", "203.0.113.7")
    for i in range(3000):  # push "Alice" out of the cache
        lock.check(f"flood2-{i}", "203.0.113.7")
    assert lock.record_failure(" ALICE ", "203.0.113.7").locked is False
    assert lock.check("alice", "203.0.113.7").locked is True
    assert lock.check("bob", "203.0.113.7").locked is False
    assert lock.check(b"alice", "203.0.113.7").locked is True
    assert lock.check(bytearray(b"carol"), "203.0.113.7").locked is False  # type: ignore[arg-type]  # not cached


def test_compiled_settings_are_read_only_and_call_time_settings_are_not() -> None:
    lock = Lockout(store=MemoryStore(), max_failures=2)
    for name, value in (("max_failures", 10), ("window", 5.0), ("extend_while_locked", True), ("namespace", "x")):
        with pytest.raises(AttributeError, match="build a new Lockout"):
            setattr(lock, name, value)
    assert lock.max_failures == 2
    lock.record_failure("alice", IP)
    lock.record_failure("alice", IP)
    assert lock.check("alice", IP).locked  # the policy it was made with still decides
    lock.generic = True  # read on every call: may change
    with pytest.raises(InvalidCredentials), lock.attempt("alice", IP):
        pass


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_ascii_names_normalise_as_the_general_rule_does(name: str) -> None:
    import unicodedata

    # The ASCII fast path must give what NFKC, case folding, NFKC and stripping give.
    general = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold()).strip()
    assert normalize_identifier(name) == general


def test_account_id_is_keyed_blake2b_of_the_normalised_name() -> None:
    import hashlib

    # Keys written by earlier versions of this release must still be found: the digest is pinned to its definition.
    secret = "s" * 32
    expected = hashlib.blake2b(b"alice", digest_size=16, key=secret.encode(), person=b"account").hexdigest()
    assert Lockout(secret=secret).account_id(" Alice ") == expected


def test_locked_accounts_lists_account_and_ceiling_locks_of_one_key(store: Store) -> None:
    # Both per-account scopes live in the account's one key: each live lock in it is listed, under its scope.
    lock = Lockout(store=store, max_failures=3, account_max_failures=3, account_ceiling=3)
    for i in range(3):
        fail(lock, "dora", f"10.1.{i}.1")
    found = sorted((r.account_id, r.scope) for r in lock.locked_accounts())
    assert found == [(lock.account_id("dora"), "account"), (lock.account_id("dora"), "ceiling")]
    assert len(lock.locked_accounts(limit=1)) == 1
    lock.unlock("dora")
    assert lock.locked_accounts() == []
    assert lock.check("dora", "10.1.9.1").locked is False
