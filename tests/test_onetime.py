"""OneTimeTokens: single use through the store, purpose, expiry, secret rotation, user-state binding."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend_guard.exceptions import ConfigurationError, InvalidToken, TokenExpired
from backend_guard.storage import MemoryStore, Store
from backend_guard.tokens.onetime import OneTimePayload, OneTimeTokens

from .conftest import FrozenClock

SECRET = "k" * 32
NEW_SECRET = "n" * 40


def _ot(store: Store | None = None, **kw: Any) -> OneTimeTokens:
    kw.setdefault("purpose", "password-reset")
    kw.setdefault("max_age", 600)
    kw.setdefault("secret_keys", [SECRET])
    return OneTimeTokens(store=store if store is not None else MemoryStore(), **kw)


def test_create_then_consume_once(store: Store) -> None:
    ot = _ot(store)
    token = ot.create("user-1", {"email": "a@example.com"})
    payload = ot.consume(token)
    assert isinstance(payload, OneTimePayload)
    assert payload.subject == "user-1"
    assert payload.data == {"email": "a@example.com"}
    with pytest.raises(InvalidToken, match="already used"):
        ot.consume(token)
    assert ot.consume(ot.create("user-1")).data is None


async def test_async_consume_once(astore: Store) -> None:
    ot = _ot(astore)
    token = await ot.acreate("user-2")
    results = await asyncio.gather(*(ot.aconsume(token) for _ in range(20)), return_exceptions=True)
    assert sum(isinstance(r, OneTimePayload) for r in results) == 1
    assert all(isinstance(r, (OneTimePayload, InvalidToken)) for r in results)


def test_concurrent_threads_consume_once(store: Store) -> None:
    ot = _ot(store)
    token = ot.create("user-3")
    barrier = threading.Barrier(16)
    wins: list[OneTimePayload] = []

    def worker() -> None:
        barrier.wait()
        with contextlib.suppress(InvalidToken):
            wins.append(ot.consume(token))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_purpose_binding() -> None:
    store = MemoryStore()
    reset = _ot(store, purpose="password-reset")
    verify = _ot(store, purpose="email-verify")
    with pytest.raises(InvalidToken):
        verify.consume(reset.create("u"))


def test_expiry_on_the_clock(clock: FrozenClock) -> None:
    ot = _ot(MemoryStore(clock=clock), max_age=60, clock=clock)
    token = ot.create("u")
    late = ot.create("u")
    clock.advance(60)
    assert ot.consume(token).issued_at == clock.now - 60
    clock.advance(1)
    with pytest.raises(TokenExpired):
        ot.consume(late)


def test_secret_rotation() -> None:
    store = MemoryStore()
    old = _ot(store, secret_keys=[SECRET])
    rotated = _ot(store, secret_keys=[SECRET, NEW_SECRET])
    dropped = _ot(store, secret_keys=[NEW_SECRET])
    token = old.create("u")
    new_token = rotated.create("u")
    assert rotated.consume(token).subject == "u"
    assert dropped.consume(new_token).subject == "u"  # signed with the newest secret
    with pytest.raises(InvalidToken):
        dropped.consume(old.create("u"))


def test_fingerprint_binds_to_user_state() -> None:
    state = {"u": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"}
    ot = _ot(fingerprint=lambda subject: state.get(subject), secret_keys=[SECRET, NEW_SECRET])
    first = ot.create("u")
    second = ot.create("u")
    # The readable payload holds no hash material.
    body = first.split(".")[0]
    decoded = base64.urlsafe_b64decode(body.lstrip(".") + "=" * (-len(body) % 4))
    assert b"argon2" not in decoded
    assert b"c2FsdA" not in decoded
    assert ot.consume(first).subject == "u"
    state["u"] = "$argon2id$v=19$m=65536,t=3,p=4$bmV3$bmV3aGFzaA"  # the password changed
    with pytest.raises(InvalidToken, match="no longer valid"):
        ot.consume(second)
    # A token made without the binding is refused by a binding manager.
    with pytest.raises(InvalidToken):
        ot.consume(_ot(secret_keys=[SECRET]).create("u"))


async def test_async_fingerprint() -> None:
    state = {"u": "hash-1"}

    async def lookup(subject: str) -> str | None:
        return state.get(subject)

    ot = _ot(fingerprint=lookup)
    token = await ot.acreate("u")
    with pytest.raises(ConfigurationError):
        ot.create("u")
    state["u"] = "hash-2"
    with pytest.raises(InvalidToken):
        await ot.aconsume(token)


def test_tampered_truncated_and_over_long_tokens() -> None:
    ot = _ot()
    token = ot.create("u", {"role": "user"})
    for bad in (token[:-2], token[:10], token + "x", "x" * 5000, "", "a.b.c", b"\xff\xff", 42):
        with pytest.raises(InvalidToken):
            ot.consume(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret_keys": ["short"]},
        {"secret_keys": []},
        {"purpose": ""},
        {"max_age": 0},
        {"max_age": 10**9},
    ],
)
def test_unsafe_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        _ot(**kwargs)


def test_store_prunes_used_markers(clock: FrozenClock) -> None:
    store = MemoryStore(clock=clock)
    ot = _ot(store, max_age=60, clock=clock)
    ot.consume(ot.create("u"))
    assert len(store.scan(f"{store.prefix}:ot:*")) == 1
    clock.advance(60 + 61)
    assert store.scan(f"{store.prefix}:ot:*") == []


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=20)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=st.text(min_size=1, max_size=50), data=_json)
def test_round_trip_property(subject: str, data: Any) -> None:
    ot = _ot()
    payload = ot.consume(ot.create(subject, data))
    assert payload.subject == subject
    assert payload.data == data


@settings(max_examples=150)
@given(token=st.text(max_size=200))
def test_garbage_is_always_invalid(token: str) -> None:
    with pytest.raises(InvalidToken):
        _ot().consume(token)


def test_peek_checks_without_using_up(store: Store) -> None:
    ot = _ot(store)
    token = ot.create("user-7", {"email": "p@example.com"})
    first = ot.peek(token)
    assert (first.subject, first.data) == ("user-7", {"email": "p@example.com"})
    assert ot.peek(token) == first  # a peek leaves the token usable, as often as asked
    assert ot.consume(token) == first
    with pytest.raises(InvalidToken, match="already used"):
        ot.peek(token)
    for bad in (token[:-2], "", "a.b.c"):
        with pytest.raises(InvalidToken):
            ot.peek(bad)


async def test_apeek_checks_without_using_up(astore: Store) -> None:
    ot = _ot(astore)
    token = await ot.acreate("user-8")
    assert (await ot.apeek(token)).subject == "user-8"
    assert (await ot.aconsume(token)).subject == "user-8"
    with pytest.raises(InvalidToken, match="already used"):
        await ot.apeek(token)


def test_peek_refuses_what_consume_refuses(clock: FrozenClock) -> None:
    state = {"u": "hash-1"}
    ot = _ot(clock=clock, fingerprint=lambda subject: state.get(subject))
    token = ot.create("u")
    assert ot.peek(token).subject == "u"
    state["u"] = "hash-2"  # the password changed: the link is dead for peek and consume alike
    with pytest.raises(InvalidToken, match="no longer valid"):
        ot.peek(token)
    state["u"] = "hash-1"
    clock.advance(601)
    with pytest.raises(TokenExpired):
        ot.peek(token)
    with pytest.raises(InvalidToken):
        _ot(purpose="verify-email").peek(ot.create("u"))
