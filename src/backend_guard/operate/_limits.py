"""Limits: what is left of a client's quota under each rate limit rule, and forgetting it.

A client key is what the middleware charges: ``ip:<address bucket>`` for the default key (give the address), or
the key itself (``--key``: a header key's digest as the middleware built it). Showing is a peek (``spend=False``:
nothing is charged), one store call per rule; a reset forgets every counter of the key in this limiter.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ..clientip import address_bucket
from ..clientip._address import parse_ip, strip_port
from ..exceptions import ConfigurationError
from ..ratelimit import Charge, RateLimiter, RateLimitResult, RateLimitRule, RulePlan
from ._model import QuotaEntry, audit, digest

__all__ = ["Limits", "client_key", "quota_rows"]


def client_key(address: str | None = None, key: str | None = None, ipv6_prefix: int = 64) -> str:
    """The key the middleware charges a client: ``key`` as given, or ``ip:`` and the bucket of ``address``.

    Example::

        client_key("203.0.113.7")   # 'ip:203.0.113.7'
    """
    if key is not None:
        return key
    if address is None:
        raise ConfigurationError("give a client address or key.")
    text = address.strip()
    if not _is_address(strip_port(text)):  # a typo (203.0.113.8O) would show a fresh, untouched bucket
        raise ConfigurationError(f"{text[:60]!r} is not an IP address (another key: --key ip:<text>).")
    return "ip:" + address_bucket(text, ipv6_prefix)


def _is_address(text: str) -> bool:
    """True for an IP address, an IPv6 one with its zone (``fe80::1%eth0``, a bucket of its own) included."""
    if parse_ip(text) is not None:
        return True
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _charges(rules: Sequence[RateLimitRule], key: str) -> list[Charge]:
    """One peek charge per rule that limits anything (an exempt rule has no limits to show)."""
    return [Charge(key, r.rates, max(r.cost, 1), r.bucket, r.name) for r in rules if r.rates and not r.exempt]


def quota_rows(charge: Charge, result: RateLimitResult) -> list[QuotaEntry]:
    """The rows of one rule's peek: one per limit (pure).

    Example::

        quota_rows(charge, limiter.hit_all([charge], spend=False))
    """
    rule = charge.name or charge.scope
    return [
        QuotaEntry(rule, charge.scope, s.limit, s.window, s.remaining, s.reset_after, s.allowed) for s in result.limits
    ]


def _all_rules(rules: Sequence[RateLimitRule], default_limits: str | None) -> tuple[RateLimitRule, ...]:
    """The middleware's rules, with its global limit first, as its plan compiles them."""
    if not rules and not default_limits:
        return ()
    return RulePlan(rules, limits=default_limits).rules.rules


class Limits:
    """The quota of client keys under a rate limiter's rules: shown without spending, and reset.

    Example::

        limits = Limits(limiter, rules, default_limits="100/minute")
        limits.show(address="203.0.113.7")
        limits.reset(address="203.0.113.7", by="jane")
    """

    def __init__(
        self,
        limiter: RateLimiter,
        rules: Sequence[RateLimitRule] = (),
        *,
        default_limits: str | None = None,
        ipv6_prefix: int = 64,
    ) -> None:
        self.limiter = limiter
        self.rules = _all_rules(rules, default_limits)
        self.ipv6_prefix = ipv6_prefix

    def key(self, address: str | None = None, key: str | None = None) -> str:
        """The client key of ``address`` (or ``key`` as it is).

        Example::

            limits.key("2001:db8::1")   # 'ip:2001:db8::/64'
        """
        return client_key(address, key, self.ipv6_prefix)

    def show(self, *, address: str | None = None, key: str | None = None) -> list[QuotaEntry]:
        """Every rule's remaining quota for the client, without charging it.

        Example::

            rows = limits.show(address="203.0.113.7")
        """
        found: list[QuotaEntry] = []
        for charge in _charges(self.rules, self.key(address, key)):
            found += quota_rows(charge, self.limiter.hit_all([charge], spend=False))
        return found

    async def ashow(self, *, address: str | None = None, key: str | None = None) -> list[QuotaEntry]:
        """Async twin of :meth:`show`.

        Example::

            rows = await limits.ashow(address="203.0.113.7")
        """
        found: list[QuotaEntry] = []
        for charge in _charges(self.rules, self.key(address, key)):
            found += quota_rows(charge, await self.limiter.ahit_all([charge], spend=False))
        return found

    def reset(self, *, address: str | None = None, key: str | None = None, by: str | None = None) -> int:
        """Forget every counter of the client in this limiter; how many counters there were.

        Example::

            limits.reset(address="203.0.113.7", by="jane")
        """
        client = self.key(address, key)
        removed = self.limiter.reset(client)
        audit(by, "limits.reset", digest(client), removed=removed)
        return removed

    async def areset(self, *, address: str | None = None, key: str | None = None, by: str | None = None) -> int:
        """Async twin of :meth:`reset`.

        Example::

            await limits.areset(address="203.0.113.7")
        """
        client = self.key(address, key)
        removed = await self.limiter.areset(client)
        audit(by, "limits.reset", digest(client), removed=removed)
        return removed
