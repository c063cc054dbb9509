"""What a decision says: :class:`RateLimitResult`, each limit's :class:`LimitState`, and their header values.

What lives here: the result objects the limiter returns (the binding limit of several, the degraded result of
a store outage), the 429 error a refusal raises (naming the limit by its policy name), and
:func:`format_headers`, the ``RateLimit``/``RateLimit-Policy`` header fields (draft-ietf-httpapi-ratelimit-headers)
with the optional legacy ``X-RateLimit-*`` ones. Pure values: no store, no request.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

from .. import events
from .._durations import wait_text, window_text
from ..exceptions import RateLimited
from ._keys import Charge

__all__ = [
    "LimitState",
    "RateLimitResult",
    "binding_limit",
    "degraded_result",
    "emit_refused",
    "format_headers",
    "header_secs",
    "sf_string",
]


@dataclass(frozen=True, slots=True)
class LimitState:
    """The state of one limit after a decision (also what its ``RateLimit`` header item says).

    Example::

        for state in result.limits:
            log.info("%s: %d of %d left", state.name, state.remaining, state.limit)
    """

    name: str
    limit: int
    window: float
    remaining: int
    reset_after: float
    retry_after: float
    allowed: bool


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """The decision for a request: allowed or not, and the numbers a client should see.

    ``limit``, ``remaining`` and ``reset_after`` describe the binding limit (the one closest to refusing);
    ``reset_after`` (the ``RateLimit`` header's ``t``) is the seconds until more quota is available, i.e. until
    a request of ``remaining + 1`` would pass (0 when the whole quota is), for every strategy; ``retry_after``
    is 0 when allowed, else the seconds after which the same request can pass. ``limits``
    holds every limit's :class:`LimitState`. ``degraded`` is True when the store failed and the limiter's
    ``on_storage_error`` answered instead (then ``limits`` is empty).

    Example::

        result = limiter.hit("user:42", "5/minute", "100/hour")
        if not result.allowed:
            raise bg.RateLimited(result.retry_after)
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float
    limits: tuple[LimitState, ...] = ()
    degraded: bool = False

    def headers(self, *, policy: bool = True, legacy: bool = False) -> list[tuple[str, str]]:
        """``RateLimit-Policy``/``RateLimit`` (and optionally ``X-RateLimit-*``) header pairs for this result."""
        return format_headers(self, policy=policy, legacy=legacy)

    def error(self) -> RateLimited:
        """The :class:`~backend_guard.exceptions.RateLimited` error for a refused request.

        Its detail names the limit that refused, by the policy name clients already see in ``RateLimit-Policy``
        (a route template, a rule's name; never the key), its amount and window, and when to retry::

            Too many requests: the limit is 5 per minute ("POST /login"); retry in 37 seconds.

        Example::

            result = limiter.hit(f"login:{ip}", "5/minute")
            if not result.allowed:
                raise result.error()
        """
        state = _refusing(self.limits)
        if state is None:  # the store failed closed: no limit to name
            return RateLimited(self.retry_after)
        detail = (
            f"Too many requests: the limit is {state.limit} per {window_text(state.window)} "
            f"({json.dumps(state.name)}); retry in {wait_text(self.retry_after)}."
        )
        return RateLimited(self.retry_after, detail)


@functools.lru_cache(maxsize=1024)
def sf_string(text: str) -> str:
    """``text`` as a structured-field String (RFC 8941): printable ASCII, quotes and backslashes escaped."""
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_headers(result: RateLimitResult, *, policy: bool = True, legacy: bool = False) -> list[tuple[str, str]]:
    """Header pairs for ``result`` per draft-ietf-httpapi-ratelimit-headers-10, one field each.

    ``RateLimit-Policy: "name";q=100;w=60`` lists every policy; ``RateLimit: "name";r=98;t=30`` the state of
    each (``t`` in whole seconds, rounded up). ``legacy`` adds ``X-RateLimit-Limit``, ``-Remaining`` and
    ``-Reset`` (seconds) of the binding limit. A degraded result (store down) has no headers.

    Example::

        >>> r = RateLimitResult(True, 100, 98, 30.0, 0.0, (LimitState("default", 100, 60.0, 98, 30.0, 0.0, True),))
        >>> format_headers(r)
        [('RateLimit-Policy', '"default";q=100;w=60'), ('RateLimit', '"default";r=98;t=30')]
    """
    if not result.limits:
        return []
    out = [("RateLimit-Policy", _policy_field(result.limits))] if policy else []
    out.append(("RateLimit", _state_field(result.limits)))
    if legacy:
        out += _legacy_fields(result)
    return out


def _policy_field(limits: tuple[LimitState, ...]) -> str:
    """The ``RateLimit-Policy`` value: each limit's name, quota and window."""
    return ", ".join(f"{sf_string(s.name)};q={s.limit};w={header_secs(s.window)}" for s in limits)


def _state_field(limits: tuple[LimitState, ...]) -> str:
    """The ``RateLimit`` value: each limit's name, remaining quota and seconds until more is available."""
    return ", ".join(f"{sf_string(s.name)};r={s.remaining};t={header_secs(s.reset_after)}" for s in limits)


def _legacy_fields(result: RateLimitResult) -> list[tuple[str, str]]:
    """The legacy ``X-RateLimit-*`` fields: the binding limit's quota, remaining and reset (seconds)."""
    return [
        ("X-RateLimit-Limit", str(result.limit)),
        ("X-RateLimit-Remaining", str(result.remaining)),
        ("X-RateLimit-Reset", str(header_secs(result.reset_after))),
    ]


def header_secs(value: float) -> int:
    """Seconds as a header writes them: whole, rounded up (a float's noise aside), never negative.

    Example::

        >>> header_secs(29.2), header_secs(-1.0)
        (30, 0)
    """
    return max(0, math.ceil(value - 1e-9))


def _refusing(limits: tuple[LimitState, ...]) -> LimitState | None:
    """The limit refusing longest (None: none refuses, the store failed closed)."""
    refusing = [s for s in limits if not s.allowed]
    return max(refusing, key=lambda s: s.retry_after) if refusing else None


def binding_limit(states: list[LimitState], allowed: bool) -> LimitState:
    """The limit a client is shown of several: allowed, the one closest to refusing; refused, the one refusing
    longest.

    Example::

        binding = binding_limit(list(result.limits), result.allowed)
    """
    if allowed:
        return min(states, key=lambda s: (s.remaining, -s.reset_after))
    return max(states, key=lambda s: s.retry_after)


def degraded_result(*, allowed: bool) -> RateLimitResult:
    """The result while the store fails: allowed (``"allow"``, fail open) or refused for a second (``"deny"``).

    Example::

        >>> degraded_result(allowed=False).retry_after
        1.0
    """
    if allowed:
        return RateLimitResult(True, 0, 0, 0.0, 0.0, (), degraded=True)
    return RateLimitResult(False, 0, 0, 0.0, 1.0, (), degraded=True)


def emit_refused(charges: tuple[Charge, ...], result: RateLimitResult) -> None:
    """Publish ``ratelimit.refused`` for a refused decision on ``charges``: the refusing limit's policy name, the
    digest of its charge's key (never the key: an address, a user id), and when to retry.

    Example::

        emit_refused(plan.charges, result)
    """
    state = _refusing(result.limits)
    index = result.limits.index(state) if state is not None else 0
    events.emit(
        "ratelimit",
        "ratelimit.refused",
        key_id=events.digest(_key_of(charges, index)),
        policy=state.name if state is not None else None,
        retry_after=result.retry_after,
    )


def _key_of(charges: tuple[Charge, ...], index: int) -> str:
    """The key of the charge holding the ``index``-th limit of ``charges`` (limits in charge order)."""
    for charge in charges:
        if index < len(charge.rates):
            return charge.key
        index -= len(charge.rates)
    return charges[-1].key if charges else ""
