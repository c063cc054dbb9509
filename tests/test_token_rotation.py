"""Refresh rotation over the memory store and the real Redis: grace window, reuse, revocation, concurrency."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from typing import Any

import jwt
import pytest
import redis

from backend_guard._keys import generate_key
from backend_guard.exceptions import InvalidToken, TokenExpired, TokenReused
from backend_guard.operate import Families
from backend_guard.storage import MemoryStore, RedisStore, Store
from backend_guard.tokens import TokenManager, TokenPair
from backend_guard.tokens import _scripts as scripts

from .conftest import FrozenClock

PEM, _ = generate_key("EdDSA")


def _tm(store: Store, clock: FrozenClock | None = None, **kw: Any) -> TokenManager:
    return TokenManager(
        PEM, "EdDSA", issuer="https://auth.example", audience="api", store=store, clock=clock or FrozenClock(), **kw
    )


def _memory(clock: FrozenClock) -> MemoryStore:
    return MemoryStore(clock=clock)


def test_rotation_replaces_the_current_token(store: Store) -> None:
    tm = _tm(store, grace_window=0)
    first = tm.issue("u", {"scope": "read"})
    second = tm.rotate(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    claims = tm.verify_access(second.access_token)
    assert claims["scope"] == "read"
    assert claims["sid"] == tm.verify_access(first.access_token)["sid"]
    third = tm.rotate(second.refresh_token, claims={"scope": "admin"})
    assert tm.verify_access(third.access_token)["scope"] == "admin"


def test_grace_window_returns_the_same_successor_once(store: Store) -> None:
    tm = _tm(store, grace_window=30)
    first = tm.issue("u")
    successor = tm.rotate(first.refresh_token)
    replay = tm.rotate(first.refresh_token)
    assert replay.refresh_token == successor.refresh_token
    assert replay.access_token == successor.access_token
    with pytest.raises(TokenReused):
        tm.rotate(first.refresh_token)
    # Reuse revoked the whole family: the successor is dead too.
    with pytest.raises(TokenReused):
        tm.rotate(successor.refresh_token)


def test_revoking_a_family_revoked_for_reuse_keeps_the_evidence(store: Store) -> None:
    """A logout (or an operator's revoke) after reuse must not erase the reuse tombstone: a later replay of the
    stolen token must still be reported as reuse, not as an ended session; and nothing live was ended."""
    tm = _tm(store, grace_window=0)
    first = tm.issue("u")
    successor = tm.rotate(first.refresh_token)
    with pytest.raises(TokenReused):
        tm.rotate(first.refresh_token)
    sid = tm.verify_access(first.access_token)["sid"]
    assert tm.revoke(successor.refresh_token) is False  # it was not alive
    assert Families(store).revoke("u", sid, by="jane") == 0
    with pytest.raises(TokenReused):
        tm.rotate(successor.refresh_token)
    live = tm.issue("u")  # a live family still ends, with its key
    assert tm.revoke(live.refresh_token) is True
    with pytest.raises(InvalidToken) as ended:
        tm.rotate(live.refresh_token)
    assert not isinstance(ended.value, TokenReused)


def test_without_grace_the_previous_token_is_reuse(store: Store) -> None:
    tm = _tm(store, grace_window=0)
    first = tm.issue("u")
    successor = tm.rotate(first.refresh_token)
    with pytest.raises(TokenReused):
        tm.rotate(first.refresh_token)
    with pytest.raises(TokenReused):
        tm.rotate(successor.refresh_token)


def test_grace_window_ends_on_the_store_clock(clock: FrozenClock) -> None:
    tm = _tm(_memory(clock), clock, grace_window=5)
    first = tm.issue("u")
    successor = tm.rotate(first.refresh_token)
    clock.advance(4.999)
    assert tm.rotate(first.refresh_token).refresh_token == successor.refresh_token
    tm2 = _tm(_memory(clock), clock, grace_window=5)
    first2 = tm2.issue("u")
    tm2.rotate(first2.refresh_token)
    clock.advance(5)
    with pytest.raises(TokenReused):
        tm2.rotate(first2.refresh_token)


def test_grace_never_chains(store: Store) -> None:
    tm = _tm(store, grace_window=30)
    first = tm.issue("u")
    second = tm.rotate(first.refresh_token)
    third = tm.rotate(second.refresh_token)
    # first is no longer the immediate predecessor: reuse, even inside the window.
    with pytest.raises(TokenReused):
        tm.rotate(first.refresh_token)
    with pytest.raises(TokenReused):
        tm.rotate(third.refresh_token)


def test_rotation_never_extends_the_family_lifetime(clock: FrozenClock) -> None:
    store = _memory(clock)
    tm = _tm(store, clock, access_ttl=60, refresh_ttl=1000, grace_window=0)
    pair = tm.issue("u")
    first_exp = tm._decode(pair.refresh_token, "rt+jwt")["exp"]
    for _ in range(5):
        clock.advance(199)
        pair = tm.rotate(pair.refresh_token)
        assert tm._decode(pair.refresh_token, "rt+jwt")["exp"] == first_exp
        assert tm.verify_access(pair.access_token)["exp"] <= first_exp
    assert pair.expires_in == 5  # the last access token is cut at the family's end
    clock.advance(6)
    with pytest.raises(InvalidToken, match="ended"):  # inside the leeway, but the store already pruned it
        tm.rotate(pair.refresh_token)
    clock.advance(30)
    with pytest.raises(TokenExpired):
        tm.rotate(pair.refresh_token)


@pytest.mark.redis
def test_redis_rotation_keeps_the_family_ttl(redis_store: RedisStore) -> None:
    tm = _tm(redis_store, refresh_ttl=1000, access_ttl=100)
    pair = tm.issue("u")
    sid = tm.verify_access(pair.access_token)["sid"]
    fam_key = tm._family_keys("u", sid)[0]
    client = redis_store.client
    before = client.pttl(fam_key)
    assert 0 < before <= 1_000_000
    for _ in range(3):
        pair = tm.rotate(pair.refresh_token)
    assert 0 < client.pttl(fam_key) <= before


def test_reuse_revokes_access_tokens_when_revocation_checking_is_on(store: Store) -> None:
    tm = _tm(store, grace_window=0, check_revocation=True)
    first = tm.issue("u")
    second = tm.rotate(first.refresh_token)
    assert tm.verify_access(second.access_token)["sub"] == "u"
    with pytest.raises(TokenReused):
        tm.rotate(first.refresh_token)
    for token in (first.access_token, second.access_token):
        with pytest.raises(InvalidToken, match="ended"):
            tm.verify_access(token)


def test_without_revocation_checking_access_tokens_live_until_exp(store: Store) -> None:
    tm = _tm(store, grace_window=0)
    first = tm.issue("u")
    tm.rotate(first.refresh_token)
    with pytest.raises(TokenReused):
        tm.rotate(first.refresh_token)
    assert tm.verify_access(first.access_token)["sub"] == "u"


def test_revoke_and_revoke_subject(store: Store) -> None:
    tm = _tm(store, check_revocation=True)
    a = tm.issue("alice")
    b = tm.issue("alice")
    c = tm.issue("bob")
    assert tm.revoke(a.refresh_token) is True
    assert tm.revoke(a.refresh_token) is False
    with pytest.raises(InvalidToken, match="ended"):
        tm.rotate(a.refresh_token)
    with pytest.raises(InvalidToken):
        tm.verify_access(a.access_token)
    assert tm.verify_access(b.access_token)["sub"] == "alice"
    d = tm.issue("alice")
    assert tm.revoke_subject("alice") == 2
    for pair in (b, d):
        with pytest.raises(InvalidToken):
            tm.rotate(pair.refresh_token)
        with pytest.raises(InvalidToken):
            tm.verify_access(pair.access_token)
    assert tm.verify_access(c.access_token)["sub"] == "bob"
    assert tm.rotate(c.refresh_token).token_type == "Bearer"
    assert tm.revoke_subject("nobody") == 0


async def test_async_twins(astore: Store) -> None:
    tm = _tm(astore, check_revocation=True)
    pair = await tm.aissue("carol")
    assert (await tm.averify_access(pair.access_token))["sub"] == "carol"
    pair = await tm.arotate(pair.refresh_token)
    assert await tm.arevoke(pair.refresh_token) is True
    with pytest.raises(InvalidToken):
        await tm.averify_access(pair.access_token)
    await tm.aissue("carol")
    other = await tm.aissue("carol")
    assert await tm.arevoke_subject("carol") == 2
    with pytest.raises(InvalidToken):
        await tm.arotate(other.refresh_token)


def test_revoke_refuses_forged_tokens_and_accepts_expired_ones(clock: FrozenClock) -> None:
    tm = _tm(_memory(clock), clock, refresh_ttl=100, access_ttl=10)
    pair = tm.issue("u")
    with pytest.raises(InvalidToken):
        tm.revoke(pair.refresh_token[:-4] + "AAAA")
    with pytest.raises(InvalidToken):
        tm.revoke(pair.access_token)
    clock.advance(1000)
    assert tm.revoke(pair.refresh_token) is False


def _resigned_with_raw_claim(tm: TokenManager, token: str, claim: str, raw_json: str) -> str:
    """``token`` with ``claim`` replaced by the JSON text ``raw_json``, signed again with ``tm``'s own key."""
    head, body, _ = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[claim] = "__raw_claim__"
    text = json.dumps(payload).replace('"__raw_claim__"', raw_json)
    signing_input = f"{head}.{base64.urlsafe_b64encode(text.encode()).rstrip(b'=').decode()}"
    key = tm.keys.keys[0]
    algorithm = jwt.algorithms.get_default_algorithms()[key.algorithm]
    signature = algorithm.sign(signing_input.encode(), algorithm.prepare_key(key.signing))
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    "raw_json",
    ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400, "true", '"123"'],
    ids=lambda v: v if len(v) < 20 else "int-of-401-digits",
)
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_refresh_tokens_with_non_finite_or_non_numeric_time_claims_never_rotate_or_revoke(
    store: Store, claim: str, raw_json: str
) -> None:
    tm = _tm(store, grace_window=0)
    pair = tm.issue("u")
    forged = _resigned_with_raw_claim(tm, pair.refresh_token, claim, raw_json)
    with pytest.raises(InvalidToken) as rotating:
        tm.rotate(forged)
    assert type(rotating.value) is InvalidToken  # not TokenExpired/TokenReused, not OverflowError/ValueError
    with pytest.raises(InvalidToken) as revoking:
        tm.revoke(forged)
    assert type(revoking.value) is InvalidToken
    # The login itself is untouched: its real refresh token still rotates.
    assert tm.rotate(pair.refresh_token).refresh_token != pair.refresh_token


def test_issue_prunes_ended_logins_from_the_subject_index(clock: FrozenClock) -> None:
    store = _memory(clock)
    tm = _tm(store, clock, refresh_ttl=100, access_ttl=10)
    tm.issue("u")
    clock.advance(50)
    tm.issue("u")
    clock.advance(60)
    tm.issue("u")
    sub_key = tm._family_keys("u", "x")[1]
    assert store.scan(sub_key) == [sub_key]
    assert tm.revoke_subject("u") == 2


def _rotate_concurrently(tm: TokenManager, token: str, n: int = 50) -> tuple[list[TokenPair], list[Exception]]:
    barrier = threading.Barrier(n)
    ok: list[TokenPair] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            result = tm.rotate(token)
        except InvalidToken as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                ok.append(result)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ok, errors


@pytest.mark.parametrize("grace", [0, 30])
def test_fifty_concurrent_rotations_yield_one_successor_threads(store: Store, grace: int) -> None:
    tm = _tm(store, grace_window=grace)
    pair = tm.issue("u")
    ok, errors = _rotate_concurrently(tm, pair.refresh_token)
    assert len({p.refresh_token for p in ok}) == 1
    assert len(ok) == (2 if grace else 1)  # the winner, plus the one grace replay
    assert len(errors) == 50 - len(ok)
    assert all(isinstance(e, TokenReused) for e in errors)


@pytest.mark.parametrize("grace", [0, 30])
async def test_fifty_concurrent_rotations_yield_one_successor_tasks(astore: Store, grace: int) -> None:
    tm = _tm(astore, grace_window=grace)
    pair = await tm.aissue("u")
    results = await asyncio.gather(*(tm.arotate(pair.refresh_token) for _ in range(50)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, TokenPair)]
    errors = [r for r in results if not isinstance(r, TokenPair)]
    assert len({p.refresh_token for p in ok}) == 1
    assert len(ok) == (2 if grace else 1)
    assert all(isinstance(e, TokenReused) for e in errors)


def test_single_caller_rotation_chain_under_threads(store: Store) -> None:
    """Many logins rotating in parallel never disturb each other."""
    tm = _tm(store, grace_window=0)
    failures: list[BaseException] = []

    def login(i: int) -> None:
        try:
            pair = tm.issue(f"user-{i % 3}")
            for _ in range(10):
                pair = tm.rotate(pair.refresh_token)
            tm.verify_access(pair.access_token)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.redis
def test_redis_holds_only_digests(redis_store: RedisStore, redis_url: str) -> None:
    tm = _tm(redis_store, grace_window=30)
    pair = tm.issue("dave")
    successor = tm.rotate(pair.refresh_token)
    client = redis.Redis.from_url(redis_url)
    try:
        dump = b""
        for key in client.scan_iter(match=f"{redis_store.prefix}:*"):
            kind = client.type(key)
            if kind == b"hash":
                dump += b"".join(k + v for k, v in client.hgetall(key).items())
            elif kind == b"set":
                dump += b"".join(client.smembers(key))
            else:
                dump += client.dump(key) or b""
    finally:
        client.close()
    assert dump
    for token in (pair.refresh_token, successor.refresh_token, successor.access_token, pair.access_token):
        for segment in token.split("."):
            assert segment.encode() not in dump


def test_unknown_family_is_invalid_not_reuse(store: Store) -> None:
    tm = _tm(store)
    pair = tm.issue("erin")
    store.delete(tm._family_keys("erin", tm.verify_access(pair.access_token)["sid"])[0])
    with pytest.raises(InvalidToken, match="ended") as info:
        tm.rotate(pair.refresh_token)
    assert not isinstance(info.value, TokenReused)


def test_scripts_agree_on_reply_shapes(store: Store) -> None:
    fam = store.key("tok", "fam", "s" * 24, tag="x")
    sub = store.key("tok", "sub", tag="x")
    prefix = store.key("tok", "fam", tag="x") + ":"
    assert int(store.run(scripts.ISSUE, [fam, sub], ["d1", 60_000, "s" * 24, prefix])) == 1
    assert [int(v) for v in store.run(scripts.ROTATE, [fam, sub], ["d1", "d2", "blob", 10_000, "s" * 24, 0])] == [1]
    replay = store.run(scripts.ROTATE, [fam, sub], ["d1", "d3", "other", 10_000, "s" * 24, 0])
    assert int(replay[0]) == 2
    assert scripts.text(replay[1]) == "blob"
    assert [int(v) for v in store.run(scripts.ROTATE, [fam, sub], ["d1", "d4", "x", 10_000, "s" * 24, 0])] == [3]
    assert int(store.run(scripts.ALIVE, [fam], [])) == 0
    assert [int(v) for v in store.run(scripts.ROTATE, [fam, sub], ["d2", "d5", "x", 10_000, "s" * 24, 0])] == [3]
    # the idle timeout (ARGV 6, ms): a family whose last use is older ends, deleted, as {4}
    fam2 = store.key("tok", "fam", "t" * 24, tag="x")
    assert int(store.run(scripts.ISSUE, [fam2, sub], ["e1", 60_000, "t" * 24, prefix])) == 1
    assert [int(v) for v in store.run(scripts.ROTATE, [fam2, sub], ["e1", "e2", "", 0, "t" * 24, 60_000])] == [1]
    assert int(store.run(scripts.ALIVE, [fam2], [])) == 1


@pytest.mark.redis
@pytest.mark.slow
async def test_revocation_check_when_the_store_is_down_denies_or_allows_as_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from backend_guard.exceptions import StorageError

    from .faults import private_redis

    with private_redis() as server:
        store = RedisStore(server.url, breaker_cooldown=0.05)
        deny = _tm(store, check_revocation=True)
        allow = _tm(store, check_revocation=True, revocation_on_storage_error="allow")
        pair = deny.issue("u")
        ended = deny.issue("u")
        deny.revoke(ended.refresh_token)
        with pytest.raises(InvalidToken, match="ended"):
            allow.verify_access(ended.access_token)
        server.stop()
        # deny (the default): the store's failure is the answer, never an accepted token
        with pytest.raises(StorageError):
            deny.verify_access(pair.access_token)
        with pytest.raises(StorageError):
            await deny.averify_access(pair.access_token)
        # allow: signature and exp decide, as without the check; logged once for the outage
        with caplog.at_level("WARNING", logger="backend_guard.tokens"):
            assert allow.verify_access(pair.access_token)["sub"] == "u"
            assert (await allow.averify_access(pair.access_token))["sub"] == "u"
            assert allow.verify_access(ended.access_token)["sub"] == "u"  # the price of failing open
        outage = [r for r in caplog.records if "without the revocation check" in r.getMessage()]
        assert len(outage) == 1
        assert pair.access_token not in caplog.text
        # a bad token is still refused during the outage
        with pytest.raises(InvalidToken):
            allow.verify_access(pair.access_token[:-4] + "AAAA")
        server.start()  # empty data: every login is gone, so the check refuses again once the store answers
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            try:
                allow.verify_access(pair.access_token)
            except InvalidToken:
                break
            assert asyncio.get_running_loop().time() < deadline, "the check never came back"
            await asyncio.sleep(0.05)
        store.close()
        await store.aclose()


def test_revocation_on_storage_error_is_validated() -> None:
    from backend_guard.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="revocation_on_storage_error"):
        _tm(MemoryStore(), revocation_on_storage_error="open")  # type: ignore[arg-type]


def test_refresh_idle_ends_a_login_left_unused(clock: FrozenClock) -> None:
    store = _memory(clock)
    tm = _tm(store, clock, grace_window=0, access_ttl=60, refresh_ttl=86400, refresh_idle=3600)
    pair = tm.issue("idle")
    for _ in range(5):  # used within the idle timeout: the login lives on, past several idle periods in all
        clock.advance(3000)
        pair = tm.rotate(pair.refresh_token)
    clock.advance(3601)
    with pytest.raises(TokenExpired, match="inactivity"):
        tm.rotate(pair.refresh_token)
    # the family is gone: the same token again is an ended login, not reuse
    with pytest.raises(InvalidToken, match="ended") as info:
        tm.rotate(pair.refresh_token)
    assert not isinstance(info.value, TokenReused)
    assert tm.revoke_subject("idle") == 0  # nothing left to end


@pytest.mark.redis
def test_refresh_idle_on_redis_uses_the_server_clock(redis_store: RedisStore) -> None:
    import time

    tm = TokenManager(
        PEM,
        "EdDSA",
        issuer="https://auth.example",
        audience="api",
        store=redis_store,
        access_ttl=1,
        refresh_ttl=3600,
        refresh_idle=1,
        grace_window=0,
    )
    pair = tm.issue("idle")
    pair = tm.rotate(pair.refresh_token)  # just used: well within the idle timeout
    time.sleep(1.3)
    with pytest.raises(TokenExpired, match="inactivity"):
        tm.rotate(pair.refresh_token)


def test_refresh_idle_is_validated() -> None:
    from backend_guard.exceptions import ConfigurationError

    for idle in (10, 90_000):  # shorter than an access token, longer than the login
        with pytest.raises(ConfigurationError, match="refresh_idle"):
            _tm(MemoryStore(), access_ttl=60, refresh_ttl=86400, refresh_idle=idle)
