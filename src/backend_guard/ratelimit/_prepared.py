"""A compiled decision: the store keys and arguments of one script call, and its header templates.

What lives here: :class:`_Prepared`, built once per distinct set of charges by the limiter (and cached), the
header texts its limits share with every other client's plan of them (:class:`_FieldTexts`, one bounded cache),
the parts of building one that need no store (policy names, script arguments, the Redis Cluster one-slot check),
and the reading of a store reply into ``RateLimit`` header values without building a result. The shells use
its ``raw_fields``/``str_fields`` on their request path.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .._cache import BoundedCache
from ..exceptions import ConfigurationError
from ..storage import Script
from ._keys import Charge
from ._rates import Rate
from ._result import header_secs, sf_string
from ._scripts import RateLimitReply

__all__ = ["_Prepared", "check_one_slot", "policy_names", "policy_names_of", "script_args"]


def policy_names(charge: Charge) -> list[str]:
    """The policy name of each of ``charge``'s limits in the ``RateLimit`` fields: the rate's own name, else
    the charge's name or scope (with the amount and window when the charge has several limits).

    Example::

        policy_names(Charge("ip:1.2.3.4", parse_limits(["5/minute"]), scope="POST /login"))  # ['POST /login']
    """
    base = _charge_name(charge)
    if len(charge.rates) == 1:
        return [charge.rates[0].name or base]
    return [_rate_name(rate, base) for rate in charge.rates]


def policy_names_of(charges: Sequence[Charge]) -> list[str]:
    """The policy names of every limit of ``charges``, in order (:func:`policy_names` of each).

    Example::

        policy_names_of([Charge("ip:1.2.3.4", parse_limits(["5/minute"]), scope="global")])  # ['global']
    """
    return [name for charge in charges for name in policy_names(charge)]


def _rate_name(rate: Rate, base: str) -> str:
    """The policy name of one of several limits of a charge: its own, else ``base`` with its amount and window."""
    return rate.name or f"{base}-{rate.amount}-per-{header_secs(rate.window)}s"


def _reset_secs(reset_ms: int) -> int:
    """``header_secs(reset_ms / 1000)`` in integer arithmetic: whole seconds, rounded up, never negative."""
    return max(0, -(-int(reset_ms) // 1000))


class _FieldTexts:
    """The ``RateLimit`` field texts of one set of limits, made from their policy names and their amounts and
    windows alone: the whole ``RateLimit-Policy`` value and, per limit, a template for its ``RateLimit`` item.

    Made once per set of limits and kept in a bounded cache (:func:`_field_texts`): every client's plan of the same
    limits shares them, so a new client's first request neither formats nor sizes them again.
    """

    __slots__ = ("names", "policy", "policy_pair", "policy_raw", "rates", "raw_template", "single", "templates")

    def __init__(self, names: tuple[str, ...], rates: tuple[tuple[int, float], ...]) -> None:
        self.names = names
        self.rates = rates
        self.policy = _policy_value(names, rates)
        self.policy_raw = self.policy.encode("latin-1")
        self.policy_pair = (b"ratelimit-policy", self.policy_raw)  # the same ASGI pair on every request
        self.templates = tuple(_item_template(name) for name in names)
        self.single = len(rates) == 1
        self.raw_template = self.templates[0].encode("latin-1") if self.single else b""

    def __sizeof__(self) -> int:
        texts = (*self.names, *self.templates, self.policy, self.policy_raw, self.raw_template)
        containers = (self.names, self.templates, self.rates)
        return object.__sizeof__(self) + sum(map(sys.getsizeof, containers)) + sum(map(sys.getsizeof, texts))


#: The field texts by (policy names, (amount, window) of each limit). Names come from rule names, scopes and route
#: templates, so the cache is bounded like any other; one too large to keep is made again for each plan.
_TEXTS: BoundedCache[tuple[tuple[str, ...], tuple[tuple[int, float], ...]], _FieldTexts] = BoundedCache(
    "ratelimit.field_texts", max_entries=1024, max_bytes=1 << 20
)


def _field_texts(names: tuple[str, ...], rates: tuple[tuple[int, float], ...]) -> _FieldTexts:
    """The shared :class:`_FieldTexts` of limits named ``names`` with these (amount, window) pairs."""
    key = (names, rates)
    texts = _TEXTS.get(key)
    if texts is None:
        texts = _FieldTexts(names, rates)
        _TEXTS.put(key, texts)
    return texts


class _Prepared:
    """One decision compiled once per distinct set of charges (then reused from a bounded cache).

    It holds the store keys and arguments of the script and the parts of the ``RateLimit`` header fields
    that do not change between requests: the whole ``RateLimit-Policy`` value and, per limit, a template
    for its ``RateLimit`` item. A request then costs one script call and one string formatting.
    """

    __slots__ = (
        "args",
        "charges",
        "keys",
        "names",
        "policy",
        "policy_pair",
        "policy_raw",
        "rates",
        "raw_template",
        "script",
        "single",
        "templates",
    )

    def __init__(
        self, charges: tuple[Charge, ...], keys: list[str], args: list[int], names: list[str], script: Script
    ) -> None:
        self.charges = charges
        #: The script deciding it (for one limit, the strategy's :data:`~._scripts.ONE_LIMIT` script).
        self.script = script
        self.keys = keys
        self.args = args
        # The header texts follow from the limits alone: shared by every client's plan of them (read from here
        # on each request, as the plan's own attributes).
        texts = _field_texts(tuple(names), tuple((r.amount, r.window) for r in _all_rates(charges)))
        self.names = texts.names
        self.rates = texts.rates
        self.policy = texts.policy
        self.policy_raw = texts.policy_raw
        self.policy_pair = texts.policy_pair
        self.templates = texts.templates
        self.single = texts.single
        self.raw_template = texts.raw_template

    def __sizeof__(self) -> int:
        # What a cache of plans holds per entry: the store keys and the charges' keys (client-chosen); the header
        # texts are shared with the other plans of the same limits (and sized in their own cache).
        return (
            object.__sizeof__(self)
            + sys.getsizeof(self.keys)
            + sum(map(sys.getsizeof, self.keys))
            + sum(sys.getsizeof(c.key) for c in self.charges)
        )

    def ratelimit_value(self, reply: RateLimitReply) -> str:
        """The ``RateLimit`` field value for a store reply (what :func:`format_headers` writes)."""
        if self.single:
            remaining, reset_ms = reply.remaining_reset(0)
            return self.templates[0] % (remaining, _reset_secs(reset_ms))
        return ", ".join(t % (reply.remaining(i), _reset_secs(reply.reset_ms(i))) for i, t in enumerate(self.templates))

    def raw_fields(self, reply: RateLimitReply) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Policy`` and ``RateLimit`` as ASGI header pairs (lower-case names)."""
        if self.single:
            remaining, reset_ms = reply.remaining_reset(0)
            reset = -(-reset_ms // 1000)
            value = self.raw_template % (remaining, reset if reset > 0 else 0)
        else:
            value = self.ratelimit_value(reply).encode("latin-1")
        return [self.policy_pair, (b"ratelimit", value)]

    def str_fields(self, reply: RateLimitReply) -> list[tuple[str, str]]:
        """``RateLimit-Policy`` and ``RateLimit`` as WSGI header pairs."""
        return [("RateLimit-Policy", self.policy), ("RateLimit", self.ratelimit_value(reply))]


def _policy_value(names: Sequence[str], rates: Sequence[tuple[int, float]]) -> str:
    """The ``RateLimit-Policy`` value of limits named ``names`` with these (amount, window) pairs (what
    :func:`format_headers` writes)."""
    return ", ".join(
        f"{sf_string(n)};q={amount};w={header_secs(window)}" for n, (amount, window) in zip(names, rates, strict=True)
    )


def _item_template(name: str) -> str:
    """The ``%`` template of a limit's ``RateLimit`` item: its name, then its remaining and reset to fill in."""
    return sf_string(name).replace("%", "%%") + ";r=%d;t=%d"


def _charge_name(charge: Charge) -> str:
    """What a charge's limits are named after: its name, else its scope, else ``default``."""
    return charge.name or charge.scope or "default"


def _all_rates(charges: Sequence[Charge]) -> list[Rate]:
    """Every limit of ``charges``, in order (the order of the script's keys)."""
    return [rate for charge in charges for rate in charge.rates]


def check_one_slot(charges: Sequence[Charge]) -> None:
    """Refuse (on Redis Cluster) charges of different keys decided together: every counter of a key shares the
    key's hash tag, and one atomic decision cannot span two slots.

    Example::

        check_one_slot([Charge("ip:1.2.3.4", rates), Charge("user:42", rates)])   # ConfigurationError
    """
    if len({c.key for c in charges}) > 1:
        names = ", ".join(sorted({_label(c) for c in charges}))
        raise ConfigurationError(
            "On Redis Cluster, limits decided together must share one key: these rules key requests "
            f"differently ({names}). Give them the same key, or use one limiter (middleware) per key."
        )


def _label(charge: Charge) -> str:
    """A charge as a configuration error names it: its name, else its scope."""
    return charge.name or charge.scope or "limit"


def script_args(charge: Charge) -> list[int]:
    """A charge's script arguments: per limit, its amount, its window in ms and the cost, as ints (what the
    memory twins read: a plan's one-limit body takes them as they are).

    Example::

        script_args(Charge("ip:1.2.3.4", parse_limits(["5/minute"]), cost=2))   # [5, 60000, 2]
    """
    cost = int(charge.cost)  # the memory twin's coercion, once per plan
    return [n for rate in charge.rates for n in (int(rate.amount), rate.window_ms, cost)]
