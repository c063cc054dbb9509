"""A rule-based state machine for refresh-token rotation against a simple model (memory store, frozen clock).

The rate limiter and the lockout already have their machines (tests/test_ratelimit.py ``LimiterMachine``,
tests/test_lockout.py ``LockoutMachine``); this adds the missing one. Hypothesis issues logins, rotates any
refresh token ever handed out (current, previous, stale), revokes, and moves the clock; after every step the
model and the store must agree, and no family may ever have two live successors.

The model of one family (one login): the list of refresh tokens handed out, which one is current, the
previous one and the end of its grace window, whether the grace replay was used, and whether the family was
revoked for reuse or ended by logout. ``leeway=0`` so a token's ``exp`` and the store's expiry coincide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from backend_guard.exceptions import InvalidToken, TokenExpired, TokenReused
from backend_guard.storage import MemoryStore, MemoryView, Script
from backend_guard.tokens import TokenManager, _digest

from .conftest import FrozenClock

SECRET = b"stateful-rotation-secret-0123456789ab"
GRACE = 10
ACCESS_TTL = 60
REFRESH_TTL = 600

_PEEK = Script(
    name="test_peek_family",
    memory=lambda db, keys, args: _peek(db, keys),
    lua="return redis.call('HGET', KEYS[1], 'cur')",
)


def _peek(db: MemoryView, keys: Sequence[str]) -> Any:
    fam = db.get(keys[0])
    return None if fam is None else fam.get("cur")


@dataclass
class Family:
    """The model of one login."""

    subject: str
    sid: str
    expires: int  # absolute end of the login (seconds)
    tokens: list[str] = field(default_factory=list)  # every refresh token handed out, in order
    current: int = 0  # index into tokens
    previous: int | None = None
    grace_until: int = 0
    grace_used: bool = True
    state: str = "alive"  # "alive", "reused" (revoked by reuse detection), "ended" (logged out)


class RotationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock(1_700_000_000.0)
        self.store = MemoryStore(clock=self.clock)
        self.tm = TokenManager(
            SECRET,
            "HS256",
            issuer="https://auth.example",
            audience="api",
            store=self.store,
            clock=self.clock,
            access_ttl=ACCESS_TTL,
            refresh_ttl=REFRESH_TTL,
            leeway=0,
            grace_window=GRACE,
        )
        self.families: list[Family] = []

    @property
    def now(self) -> int:
        return int(self.clock())

    @rule(subject=st.sampled_from(["alice", "bob"]))
    def issue(self, subject: str) -> None:
        pair = self.tm.issue(subject)
        claims = self.tm.verify_access(pair.access_token)
        fam = Family(subject, claims["sid"], self.now + REFRESH_TTL, [pair.refresh_token])
        self.families.append(fam)

    @precondition(lambda self: bool(self.families))
    @rule(data=st.data())
    def rotate(self, data: st.DataObject) -> None:
        fam = data.draw(st.sampled_from(self.families))
        index = data.draw(st.integers(0, len(fam.tokens) - 1))
        token = fam.tokens[index]
        now = self.now
        try:
            pair = self.tm.rotate(token)
        except TokenExpired:
            assert now >= fam.expires, "expired before the end of the login"
            return
        except TokenReused:
            assert now < fam.expires
            assert fam.state == "reused" or not self._may_rotate(fam, index, now), "a valid rotation was refused"
            fam.state = "reused"
            return
        except InvalidToken:
            assert now < fam.expires
            assert fam.state == "ended", "a live family was said to have ended"
            return
        assert now < fam.expires
        assert fam.state == "alive"
        claims = self.tm.verify_access(pair.access_token)
        assert claims["sid"] == fam.sid
        assert claims["sub"] == fam.subject
        if index == fam.current:
            assert pair.refresh_token not in fam.tokens
            fam.tokens.append(pair.refresh_token)
            fam.previous, fam.current = fam.current, len(fam.tokens) - 1
            fam.grace_until, fam.grace_used = now + GRACE, False
        else:
            # The grace replay: the previous token gets the very same successor back, once.
            assert index == fam.previous, "a stale token rotated"
            assert not fam.grace_used, "the grace replay was given twice"
            assert now < fam.grace_until, "the grace replay was given after its window"
            assert pair.refresh_token == fam.tokens[fam.current]
            fam.grace_used = True

    @staticmethod
    def _may_rotate(fam: Family, index: int, now: int) -> bool:
        if fam.state != "alive":
            return False
        if index == fam.current:
            return True
        return index == fam.previous and not fam.grace_used and now < fam.grace_until

    @precondition(lambda self: bool(self.families))
    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        fam = data.draw(st.sampled_from(self.families))
        token = data.draw(st.sampled_from(fam.tokens))
        alive = self.tm.revoke(token)
        assert alive == (fam.state == "alive" and self.now < fam.expires) or fam.state == "reused"
        if fam.state == "alive":
            fam.state = "ended"
        elif fam.state == "reused":
            fam.state = "ended"  # logout deletes the tombstone too: later presentations say "ended"

    @rule(seconds=st.sampled_from([1, 3, GRACE - 1, GRACE, GRACE + 1, 120, REFRESH_TTL]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def at_most_one_live_successor(self) -> None:
        now = self.now
        for fam in self.families:
            cur = self.store.run(_PEEK, [self.tm._family_keys(fam.subject, fam.sid)[0]], [])
            live = [t for t in fam.tokens if cur is not None and _digest(t.encode("ascii")) == cur]
            assert len(live) <= 1
            if fam.state == "alive" and now < fam.expires:
                assert live == [fam.tokens[fam.current]], "the store lost the current token"
            else:
                assert not live, "a revoked, ended or expired family still has a live token"


TestRotationMachine = RotationMachine.TestCase
TestRotationMachine.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
