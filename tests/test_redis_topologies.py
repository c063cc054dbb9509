"""The Redis store and every stateful part on real Sentinel and Cluster topologies of the tests' own.

Each test starts private servers on free loopback ports (never the shared Redis on 6379): a master watched by
one sentinel (plus a replica for the failover test), or a three-master Redis Cluster. Every server is stopped
when the test ends. On a cluster, every key one script touches must be in one hash slot: the parts put a hash
tag in their keys, and these tests run them end to end with keys spread over all three masters.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import backend_guard as bg
from backend_guard._keys import generate_key
from backend_guard.exceptions import ConfigurationError, InvalidToken, TokenReused
from backend_guard.ratelimit import STRATEGIES, Charge, parse_limits
from backend_guard.storage import RedisStore, Script

from .faults import ClusterSetup, SentinelSetup, private_cluster, private_sentinel, redis_cli, wait_until
from .test_storage import INCR

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TIMEOUTS = {"socket_timeout": 5.0, "connect_timeout": 5.0}
PEM, _ = generate_key("EdDSA")

TWO_KEYS = Script(
    name="test_two_keys",
    lua="redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return 2",
    memory=lambda db, keys, args: 2,
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSetup]:
    """Three cluster masters of this test's own (no replicas); stopped when the test ends."""
    with private_cluster(tmp_path) as setup:
        yield setup


@pytest.fixture
async def cstore(cluster: ClusterSetup) -> AsyncIterator[RedisStore]:
    """A RedisStore on the private cluster, under a prefix of this test's own (its clients closed after)."""
    store = RedisStore(cluster.url, prefix=f"bgtest:{uuid.uuid4().hex[:12]}", **TIMEOUTS)
    try:
        yield store
    finally:
        await store.aclose()
        store.close()


def _keys_per_node(cluster: ClusterSetup) -> list[int]:
    return [int(redis_cli(port, "DBSIZE").strip()) for port in cluster.ports]


# -- sentinel ------------------------------------------------------------------------------------------------


async def test_sentinel_store_runs_scripts_sync_and_async(tmp_path: Path) -> None:
    with private_sentinel(tmp_path) as setup:
        store = RedisStore(setup.url, prefix="bgtest:sentinel", **TIMEOUTS)
        try:
            key = store.key("t", "counter")
            assert store.run(INCR, [key], [2, 60_000])[0] == 2
            assert (await store.arun(INCR, [key], [3, 60_000]))[0] == 5
            assert store.scan("bgtest:sentinel:*") == [key]
            assert await store.ascan("bgtest:sentinel:*") == [key]
            assert store.ping()
            # The sentinel really named our private master: the counter is there.
            assert redis_cli(setup.master, "GET", key).strip() == "5"
            limiter = bg.RateLimiter(store=store)
            assert [limiter.hit("k", "2/minute").allowed for _ in range(3)] == [True, True, False]
            assert not (await limiter.ahit("k", "2/minute")).allowed
        finally:
            await store.aclose()
            store.close()


async def test_sentinel_url_options_reach_the_master_and_the_sentinels(tmp_path: Path) -> None:
    # A Sentinel URL's query options were dropped without a word: the master's password, its database, and the
    # sentinels' own password; a misspelt one was taken too. They are read as in a redis:// URL now.
    with private_sentinel(tmp_path) as setup:
        redis_cli(setup.master, "CONFIG", "SET", "requirepass", "m&pw")
        redis_cli(setup.sentinel, "SENTINEL", "SET", setup.service, "auth-pass", "m&pw")
        redis_cli(setup.sentinel, "ACL", "SETUSER", "default", "resetpass", ">s#pw")
        base = f"redis+sentinel://127.0.0.1:{setup.sentinel}/{setup.service}/0"
        url = f"{base}?password=m%26pw&sentinel_password=s%23pw&db=4&client_name=bgtest-sentinel"
        store = RedisStore(url, prefix="bgtest:sentinel", **TIMEOUTS)
        try:
            key = store.key("t", "counter")
            assert store.run(INCR, [key], [2, 60_000])[0] == 2
            assert (await store.arun(INCR, [key], [3, 60_000]))[0] == 5
            master = ("-a", "m&pw", "--no-auth-warning")
            assert redis_cli(setup.master, *master, "-n", "4", "GET", key).strip() == "5"  # ?db=4, not the path's 0
            assert "name=bgtest-sentinel" in redis_cli(setup.master, *master, "CLIENT", "LIST")
            assert "password=***" in repr(store)
            assert "s%23pw" not in repr(store)
        finally:
            await store.aclose()
            store.close()
        # Without the sentinels' password the master is never found: the store says so, it does not go elsewhere.
        without = RedisStore(f"{base}?password=m%26pw", prefix="bgtest:sentinel", **TIMEOUTS)
        try:
            with pytest.raises(bg.StorageError):
                without.run(INCR, [key], [1, 60_000])
        finally:
            without.close()
        for option in ("bogus=1", "decode_responses=true", "db=abc", "ssl_cert_reqs=s3cret-looking"):
            with pytest.raises(ConfigurationError) as refused:
                RedisStore(f"{base}?{option}", prefix="bgtest:sentinel", **TIMEOUTS)
            message = str(refused.value)
            assert "abc" not in message
            assert "s3cret-looking" not in message
            assert message.count("does not take") <= 1  # said once, not wrapped twice
        # A user before "@" is the master's (an ACL user there), the password the master's and the sentinels'.
        acl = ("-a", "m&pw", "--no-auth-warning")
        redis_cli(setup.master, *acl, "ACL", "SETUSER", "bgapp", "on", ">u&pw", "~*", "+@all")
        user = f"redis+sentinel://bgapp:u%26pw@127.0.0.1:{setup.sentinel}/{setup.service}/0?sentinel_password=s%23pw"
        as_user = RedisStore(user, prefix="bgtest:sentinel", **TIMEOUTS)
        try:
            assert as_user.run(INCR, [key], [1, 60_000])[0] == 1  # database 0 this time
            assert "user=bgapp" in redis_cli(setup.master, *acl, "CLIENT", "LIST")
        finally:
            as_user.close()


async def test_sentinel_failover_keeps_the_store_working(tmp_path: Path) -> None:
    with private_sentinel(tmp_path, replica=True) as setup:
        assert setup.replica is not None
        store = RedisStore(setup.url, prefix="bgtest:failover", breaker_cooldown=0.2, **TIMEOUTS)
        try:
            key = store.key("t", "counter")
            assert store.run(INCR, [key], [1, 60_000])[0] == 1
            assert (await store.arun(INCR, [key], [1, 60_000]))[0] == 2
            replica = setup.replica
            wait_until(lambda: redis_cli(replica, "GET", key).strip() == "2", 10, "the replica to copy the key")

            assert setup.failover() == replica
            wait_until(
                lambda: "role:master" in redis_cli(replica, "INFO", "replication"), 10, "the replica to be master"
            )
            # Until the sentinel demotes the old master, it still accepts writes (Sentinel's split-brain window,
            # where writes can be lost); wait for its demotion so the checks below are exact.
            wait_until(
                lambda: "role:slave" in redis_cli(setup.master, "INFO", "replication"), 20, "the old master's demotion"
            )

            # The same store object (not rebuilt) finds the new master through the sentinel, on both paths.
            def sync_counts() -> bool:
                return bool(store.run(INCR, [key], [1, 60_000])[0] == 3)

            wait_until(sync_counts, 20, "the sync path to write to the new master", interval=0.25)

            async def async_counts() -> int:
                deadline = asyncio.get_running_loop().time() + 20
                while True:
                    try:
                        return int((await store.arun(INCR, [key], [1, 60_000]))[0])
                    except bg.StorageError:
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                        await asyncio.sleep(0.25)

            assert await async_counts() == 4
            assert redis_cli(replica, "GET", key).strip() == "4"  # written on the promoted server
        finally:
            await store.aclose()
            store.close()


# -- cluster: the store --------------------------------------------------------------------------------------


async def test_cluster_store_scripts_scan_and_delete_over_every_node(cluster: ClusterSetup, cstore: RedisStore) -> None:
    assert cstore.cluster
    keys = [cstore.key("t", "n", tag=f"user-{i}") for i in range(60)]
    for key in keys:
        assert cstore.run(INCR, [key], [2, 60_000])[0] == 2
    results = await asyncio.gather(*(cstore.arun(INCR, [key], [1, 60_000]) for key in keys))
    assert [r[0] for r in results] == [3] * 60
    assert all(n > 0 for n in _keys_per_node(cluster)), "the keys should be spread over all three masters"

    # SCAN walks every master, not only the seed node.
    assert sorted(cstore.scan(f"{cstore.prefix}:*")) == sorted(keys)
    assert sorted(await cstore.ascan(f"{cstore.prefix}:*")) == sorted(keys)
    assert len(cstore.scan(f"{cstore.prefix}:*", count=7)) == 7

    # Atomic under concurrent threads on one key.
    hot = cstore.key("t", "hot", tag="hot")
    seen: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            n = cstore.run(INCR, [hot], [1, 60_000])[0]
            with lock:
                seen.append(n)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(seen) == list(range(1, 101))

    # DEL of keys in many slots is split per slot by the client.
    assert cstore.delete(*keys[:30]) == 30
    assert await cstore.adelete(*keys[30:], hot) == 31
    assert cstore.scan(f"{cstore.prefix}:*") == []


async def test_cluster_keys_in_two_slots_are_a_configuration_error(cstore: RedisStore) -> None:
    same = [cstore.key("t", "a", tag="x"), cstore.key("t", "b", tag="x")]
    assert cstore.run(TWO_KEYS, same, ["v"]) == 2
    apart = [cstore.key("t", "a", tag="x"), cstore.key("t", "a", tag="y")]
    with pytest.raises(ConfigurationError, match="hash slots"):
        cstore.run(TWO_KEYS, apart, ["v"])
    with pytest.raises(ConfigurationError, match="hash slots"):
        await cstore.arun(TWO_KEYS, apart, ["v"])


# -- cluster: the parts end to end ---------------------------------------------------------------------------


async def test_cluster_rate_limiter_every_strategy(cluster: ClusterSetup, cstore: RedisStore) -> None:
    for strategy in STRATEGIES:
        limiter = bg.RateLimiter(store=cstore, strategy=strategy, key_prefix=strategy)
        for i in range(12):  # keys spread over the three masters
            key = f"client-{i}"
            assert limiter.test(key, "3/minute", "10/hour").allowed
            got = [limiter.hit(key, "3/minute", "10/hour").allowed for _ in range(4)]
            assert got == [True, True, True, False], (strategy, key)
            refused = limiter.hit(key, "3/minute", "10/hour")
            assert refused.retry_after > 0
            assert not limiter.test(key, "3/minute", "10/hour").allowed
            assert limiter.reset(key) == 2  # both limits' counters, found by SCAN on the key's node
            assert limiter.hit(key, "3/minute", "10/hour").remaining == 2

            akey = f"aclient-{i}"
            assert (await limiter.atest(akey, "2/minute", "5/hour")).allowed
            agot = [(await limiter.ahit(akey, "2/minute", "5/hour")).allowed for _ in range(3)]
            assert agot == [True, True, False], (strategy, akey)
            assert await limiter.areset(akey, "2/minute", "5/hour") == 2
            assert (await limiter.ahit(akey, "2/minute", "5/hour")).allowed

        # Several charges of one key (say a global and a per-route limit) in one atomic decision.
        charges = [
            Charge("ip-1", parse_limits(["5/minute"]), scope="global"),
            Charge("ip-1", parse_limits(["1/minute"]), scope="POST /login"),
        ]
        assert limiter.hit_all(charges).allowed
        assert not limiter.hit_all(charges).allowed
        assert not (await limiter.ahit_all(charges)).allowed
        # Charges of different keys cannot be one atomic script on a cluster: refused clearly, not fail-open.
        mixed = [Charge("ip-1", parse_limits(["5/minute"])), Charge("api-key-9", parse_limits(["5/minute"]))]
        with pytest.raises(ConfigurationError, match="Redis Cluster"):
            limiter.hit_all(mixed)
        with pytest.raises(ConfigurationError, match="Redis Cluster"):
            await limiter.ahit_all(mixed)
    assert all(n > 0 for n in _keys_per_node(cluster))


async def test_cluster_lockout(cluster: ClusterSetup, cstore: RedisStore) -> None:
    lock = bg.Lockout(store=cstore, max_failures=3, account_max_failures=6, secret="s" * 32)
    accounts = [f"user{i}@example.com" for i in range(9)]
    for account in accounts:
        for _ in range(3):
            with lock.attempt(account, "203.0.113.7"):
                pass  # not marked succeeded: a failure
        assert lock.check(account, "203.0.113.7").locked
        with pytest.raises(bg.AccountLocked), lock.attempt(account, "203.0.113.7"):
            pass
        assert not lock.check(account, "198.51.100.1").locked  # another address: not this pair's lock
    assert all(n > 0 for n in _keys_per_node(cluster)), "accounts should be spread over all masters"

    # locked_accounts() scans every master.
    ids = {lock.account_id(a) for a in accounts}
    assert {r.account_id for r in lock.locked_accounts()} == ids
    assert {r.account_id for r in await lock.alocked_accounts()} == ids

    lock.unlock(accounts[0])
    assert not lock.check(accounts[0], "203.0.113.7").locked
    await lock.aunlock(accounts[1])
    assert not (await lock.acheck(accounts[1], "203.0.113.7")).locked
    assert {r.account_id for r in lock.locked_accounts()} == ids - {lock.account_id(a) for a in accounts[:2]}

    # record_failure / record_success and their async twins; a success clears the pair.
    who = "carol"
    assert lock.record_failure(who, "192.0.2.1").remaining == 2
    assert (await lock.arecord_failure(who, "192.0.2.1")).remaining == 1
    lock.record_success(who, "192.0.2.1")
    assert lock.check(who, "192.0.2.1").remaining == 3
    await lock.arecord_failure(who, "192.0.2.1")
    await lock.arecord_success(who, "192.0.2.1")
    async with lock.aattempt(who, "192.0.2.1") as attempt:
        attempt.succeeded()
    assert (await lock.acheck(who, "192.0.2.1")).remaining == 3

    # The address-wide counter cannot share a slot with every account: refused when built on a cluster.
    with pytest.raises(ConfigurationError, match="Redis Cluster"):
        bg.Lockout(store=cstore, address_max_failures=50)


async def test_cluster_token_manager(cstore: RedisStore) -> None:
    tm = bg.TokenManager(
        PEM, "EdDSA", issuer="https://auth.example", audience="api", store=cstore, check_revocation=True
    )
    subjects = [f"user-{i}" for i in range(6)]
    for subject in subjects:
        first = tm.issue(subject, {"scope": "read"})
        second = tm.rotate(first.refresh_token)
        assert tm.verify_access(second.access_token)["sub"] == subject
        third = await tm.arotate(second.refresh_token)
        # An older token again: reuse detected, the whole family revoked.
        with pytest.raises(TokenReused):
            tm.rotate(first.refresh_token)
        with pytest.raises(InvalidToken):
            tm.rotate(third.refresh_token)
        with pytest.raises(InvalidToken):
            tm.verify_access(third.access_token)

        pair = await tm.aissue(subject)
        assert tm.revoke(pair.refresh_token)
        with pytest.raises(InvalidToken):
            await tm.arotate(pair.refresh_token)
        pair = tm.issue(subject)
        assert await tm.arevoke(pair.refresh_token)

        logins = [tm.issue(subject) for _ in range(3)]
        assert tm.revoke_subject(subject) == 3
        for login in logins:
            with pytest.raises(InvalidToken):
                await tm.averify_access(login.access_token)
        more = await tm.aissue(subject)
        assert await tm.arevoke_subject(subject) == 1
        with pytest.raises(InvalidToken):
            tm.rotate(more.refresh_token)


async def test_cluster_one_time_tokens(cstore: RedisStore) -> None:
    ot = bg.OneTimeTokens(["k" * 32], purpose="password-reset", max_age=600, store=cstore)
    for i in range(10):
        token = ot.create(f"user-{i}", {"n": i})
        assert ot.consume(token).data == {"n": i}
        with pytest.raises(InvalidToken):
            ot.consume(token)
        atoken = ot.create(f"user-{i}")
        assert (await ot.aconsume(atoken)).subject == f"user-{i}"
        with pytest.raises(InvalidToken):
            await ot.aconsume(atoken)


def test_cluster_setup_is_torn_down(tmp_path: Path) -> None:
    with private_cluster(tmp_path) as setup:
        ports = list(setup.ports)
        assert "cluster_state:ok" in redis_cli(ports[0], "CLUSTER", "INFO")
    for port in ports:
        with pytest.raises(Exception):  # noqa: B017 - any failure to connect will do
            redis_cli(port, "PING", timeout=5)


def test_sentinel_setup_names_its_master(tmp_path: Path) -> None:
    with private_sentinel(tmp_path) as setup:
        assert isinstance(setup, SentinelSetup)
        assert setup.master_port() == setup.master


async def test_cluster_store_refuses_when_any_master_can_evict_security_state(cluster: ClusterSetup) -> None:
    # Each node has its own maxmemory-policy: one evicting master is enough to lose families and used tokens.
    redis_cli(cluster.ports[-1], "CONFIG", "SET", "maxmemory-policy", "volatile-lru")  # a private node
    for path in ("sync", "async"):
        store = RedisStore(cluster.url, prefix=f"bgtest:{uuid.uuid4().hex[:12]}", **TIMEOUTS)
        ot = bg.OneTimeTokens(["k" * 32], purpose="password-reset", max_age=600, store=store)
        token = ot.create("user-1")
        try:
            if path == "sync":
                with pytest.raises(ConfigurationError, match="volatile-lru"):
                    ot.consume(token)
            else:
                with pytest.raises(ConfigurationError, match="volatile-lru"):
                    await ot.aconsume(token)
        finally:
            await store.aclose()
            store.close()
