"""Rates and strategies: what a limit is (``5/minute``), how rate strings parse, which strategies exist.

What lives here: :class:`Rate` (one limit: an amount per window), :func:`parse_limits` (rate strings,
``Rate`` objects or ``limits.RateLimitItem`` objects to rates, with a bounded parse cache), and the strategy
names (:data:`STRATEGIES`, :data:`DEFAULT_STRATEGY`, their aliases and their short codes in storage keys,
:func:`checked_strategy`).
``limits`` is imported only when a string is first parsed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from limits import RateLimitItem

__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "STRATEGY_ALIASES",
    "STRATEGY_CODES",
    "LimitSpec",
    "Rate",
    "Strategy",
    "checked_strategy",
    "parse_limits",
]

Strategy = Literal["sliding-window-counter", "fixed-window", "moving-window", "gcra"]

#: The strategies, by name. ``"token-bucket"`` is accepted as an alias of ``"gcra"``.
STRATEGIES: tuple[str, ...] = ("sliding-window-counter", "fixed-window", "moving-window", "gcra")
#: The default: O(1) state per key, no burst of twice the limit at a window edge (see docs/ratelimit.md).
DEFAULT_STRATEGY: Strategy = "sliding-window-counter"

#: Other names accepted for a strategy.
STRATEGY_ALIASES = {"token-bucket": "gcra", "sliding-window": "sliding-window-counter"}
#: Each strategy's part of a storage key (two strategies never read each other's state).
STRATEGY_CODES = {"sliding-window-counter": "sw", "fixed-window": "fw", "moving-window": "mw", "gcra": "gc"}


@dataclass(frozen=True, slots=True)
class Rate:
    """One limit: ``amount`` hits per ``window`` seconds, parsed from a rate string by ``limits``.

    ``name`` is the policy name used in the ``RateLimit`` header fields (None: a name is derived).

    Example::

        Rate.parse("5/minute")     # (Rate(amount=5, window=60.0, ...),)
    """

    amount: int
    window: float
    text: str
    name: str | None = None

    def __post_init__(self) -> None:
        # A Rate built by hand (or from a limits.RateLimitItem) is checked like a parsed one: a zero amount or
        # window would divide by zero in the strategies, a negative window never limit anything.
        if not _positive(self.amount, self.window):
            raise ConfigurationError(f"Invalid rate limit {self.text!r}: the amount and window must be positive.")

    @property
    def window_ms(self) -> int:
        """The window in whole milliseconds."""
        return round(self.window * 1000)

    @property
    def ident(self) -> str:
        """The part of the storage key that names this limit (amount and window)."""
        return f"{self.amount}/{self.window_ms}"

    @classmethod
    def from_item(cls, item: RateLimitItem, name: str | None = None) -> Rate:
        """A Rate from a ``limits.RateLimitItem``."""
        return cls(int(item.amount), float(item.get_expiry()), str(item), name)

    @classmethod
    def parse(cls, spec: str, name: str | None = None) -> tuple[Rate, ...]:
        """Every limit in ``spec`` (``"5/minute;100/hour"``, ``"10 per 2 seconds"``), or ConfigurationError."""
        from limits import parse_many

        try:
            items = parse_many(spec)
        except ValueError as exc:
            raise ConfigurationError(f"Invalid rate limit {spec!r}: {exc}") from exc
        if not all(_positive(item.amount, item.get_expiry()) for item in items):
            raise ConfigurationError(f"Invalid rate limit {spec!r}: the amount and window must be positive.")
        return tuple(cls.from_item(item, name) for item in items)


def _positive(amount: object, window: object) -> bool:
    """True for a whole amount of at least 1 and a finite window of at least a millisecond (a usable limit)."""
    if type(amount) is not int or isinstance(window, bool) or not isinstance(window, (int, float)):
        return False
    return amount >= 1 and math.isfinite(window) and window >= 0.001


LimitSpec = str | Rate | Any  # Any: a limits.RateLimitItem

_parse_cache: dict[str, tuple[Rate, ...]] = {}


def parse_limits(specs: Iterable[LimitSpec]) -> tuple[Rate, ...]:
    """Rates from rate strings, :class:`Rate` objects or ``limits.RateLimitItem`` objects.

    Example::

        >>> [r.amount for r in parse_limits(["5/minute;100/hour"])]
        [5, 100]
    """
    out = tuple(rate for spec in specs for rate in _rates_of(spec))
    if not out:
        raise ConfigurationError("At least one limit is needed.")
    return out


def _rates_of(spec: LimitSpec) -> tuple[Rate, ...]:
    """The rates of one limit spec: a :class:`Rate`, a rate string or a ``limits.RateLimitItem``."""
    if isinstance(spec, Rate):
        return (spec,)
    if isinstance(spec, str):
        return _parsed(spec)
    if _is_rate_item(spec):
        return (Rate.from_item(spec),)
    raise ConfigurationError(f"A limit must be a rate string or a RateLimitItem, not {type(spec).__name__}.")


def _parsed(spec: str) -> tuple[Rate, ...]:
    """:meth:`Rate.parse`, cached (at most 1024 strings: rate strings come from code, not requests)."""
    cached = _parse_cache.get(spec)
    if cached is None:
        cached = Rate.parse(spec)
        if len(_parse_cache) < 1024:
            _parse_cache[spec] = cached
    return cached


def _is_rate_item(spec: object) -> bool:
    """True for a ``limits.RateLimitItem`` (or anything with its ``amount`` and ``get_expiry``)."""
    return hasattr(spec, "amount") and hasattr(spec, "get_expiry")


def checked_strategy(strategy: str, on_storage_error: str) -> str:
    """The strategy's own name (an alias read); an unknown strategy or ``on_storage_error`` is refused.

    Example::

        >>> checked_strategy("token-bucket", "allow")
        'gcra'
    """
    strategy = STRATEGY_ALIASES.get(strategy, strategy)
    if strategy not in STRATEGIES:
        raise ConfigurationError(f"Unknown rate limit strategy {strategy!r}: use one of {', '.join(STRATEGIES)}.")
    if on_storage_error not in ("allow", "deny", "raise"):
        raise ConfigurationError("on_storage_error must be 'allow', 'deny' or 'raise'.")
    return strategy
