"""Without ``secret=``, the ids a Lockout stores (and digests in its logs and events) cannot be reversed by hashing
a list of names: an in-process store uses a key drawn at random per process; a shared store (Redis) must use one
key in every process, so it keeps a public one and says so at start-up."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import backend_guard as bg
from backend_guard.storage import RedisStore


def test_an_in_process_lockout_without_a_secret_hashes_names_with_a_per_process_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from backend_guard.lockout import _keys

    # account_id is the digest logs and events carry: not the public key's
    assert bg.Lockout(store="memory://", max_failures=3).account_id("alice") != bg.Lockout(
        store="memory://", max_failures=3, secret=_keys.mac_key(None, shared=True)
    ).account_id("alice")
    caplog.set_level(logging.WARNING, logger="backend_guard.lockout")
    assert _keys.mac_key(None, shared=False) == _keys.mac_key(None, shared=False)  # one key for the process
    assert _keys.mac_key(None, shared=False) != _keys.mac_key(None, shared=True)  # not the public one
    caplog.clear()
    bg.Lockout(store="memory://", max_failures=3)
    assert not caplog.records  # nothing to warn about
    child = "from backend_guard.lockout import _keys; print(_keys.mac_key(None, shared=False).hex())"
    other = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout  # noqa: S603
    assert other.strip() != _keys.mac_key(None, shared=False).hex()  # another process draws its own


@pytest.mark.redis
def test_a_shared_lockout_without_a_secret_warns_at_start_up(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backend_guard.lockout")
    store = RedisStore(redis_url, prefix=prefix)
    try:
        bg.Lockout(store=store, max_failures=3)
        assert any("secret=" in r.getMessage() for r in caplog.records)
        caplog.clear()
        bg.Lockout(store=store, max_failures=3, secret="s" * 32)
        assert not caplog.records
    finally:
        store.close()


def test_two_lockouts_of_one_process_without_a_secret_share_their_locks() -> None:
    # the operator's tools build their own Lockout over the app's memory store: the same key, the same locks
    store = bg.MemoryStore()
    app_lock = bg.Lockout(store=store, max_failures=1)
    app_lock.record_failure("alice", "192.0.2.1")
    operator_lock = bg.Lockout(store=store, max_failures=1)
    assert operator_lock.account_id("alice") == app_lock.account_id("alice")
    assert operator_lock.check("alice", "192.0.2.1").locked
