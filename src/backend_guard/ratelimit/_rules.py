"""Rules of the rate limit middlewares: :class:`RateLimitRule`, :class:`RuleSet` and path patterns.

What lives here (sans-IO matching): a rule's validation (a path or method no request can carry is refused
when the rule is made), :func:`compile_path` (``/users/{id}``, ``/api/*``, ``*``), and which rules apply to a
request's method and path (every matching rule; an exempt one wins), cached per method and path.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .._cache import BoundedCache
from .._check import check_bool, check_int, check_str, check_strs, optional
from .._http import HTTP_TOKEN_RE
from ..exceptions import ConfigurationError
from ._keys import BUCKET_METHODS as _BUCKET_METHODS
from ._keys import KeyFunc, KeyResolver
from ._rates import LimitSpec, Rate, parse_limits

__all__ = ["PATH_PARAM", "RateLimitRule", "RuleSet", "compile_path"]

#: A parameter in a rule path: ``{name}`` (one segment) or ``{name:path}`` (the rest of the path).
PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?\}")


def compile_path(pattern: str) -> re.Pattern[str]:
    """A regex for a path pattern: ``{name}`` is one segment, ``{name:path}`` the rest, a final ``*`` any tail.

    Example::

        >>> bool(compile_path("/users/{id}").match("/users/42"))
        True
    """
    if pattern in ("*", "/*"):
        return re.compile(r".*")
    out = ["^"]
    pos = 0
    tail = pattern.endswith("*")
    body = pattern[:-1] if tail else pattern
    for m in PATH_PARAM.finditer(body):
        out.append(re.escape(body[pos : m.start()]))
        out.append(".*" if m.group(2) == "path" else "[^/]+")
        pos = m.end()
    out.append(re.escape(body[pos:]))
    out.append(".*$" if tail else "/?$")
    return re.compile("".join(out))


#: The methods a rule may name without ``custom_methods`` (RFC 9110, PATCH of RFC 5789).
_RULE_METHODS = (*sorted(_BUCKET_METHODS), "HEAD")


def _check_rule_path(path: str) -> None:
    """Refuse a rule path no request path can ever match."""
    if path in ("*", "/*"):
        return
    if not path.startswith("/"):
        raise ConfigurationError(
            f"rule {path!r}: a rule path starts with '/' (request paths always do): did you mean {'/' + path!r}?"
        )
    for char, what in (("?", "query string"), ("#", "fragment")):
        if char in path:
            fixed = path.split(char, 1)[0] or "/"
            raise ConfigurationError(
                f"rule {path!r}: a request's {what} is not part of the path rules match: did you mean {fixed!r}?"
            )


def _check_rule_method(path: str, method: str, custom: bool) -> None:
    """Refuse a rule method no request can carry (standard methods only unless ``custom``)."""
    if HTTP_TOKEN_RE.fullmatch(method) is None:
        raise ConfigurationError(f"rule {path!r}: {method!r} is not an HTTP method.")
    if custom or method.upper() in _RULE_METHODS:
        return
    near = difflib.get_close_matches(method.upper(), _RULE_METHODS, n=1, cutoff=0.5)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise ConfigurationError(
        f"rule {path!r}: unknown HTTP method {method!r}: {hint}(standard methods: {', '.join(_RULE_METHODS)};"
        " for another method, set custom_methods=True on the rule)."
    )


@dataclass(frozen=True)
class RateLimitRule:
    """Limits for requests whose path matches ``path`` (and method one of ``methods``; None: any).

    Methods match in any case, and a rule for ``GET`` also counts ``HEAD`` (the same handler answers both), in
    the same bucket: alternating GET and HEAD never doubles a client's quota.

    ``path``: ``"/users/{id}"`` (one bucket for the route, never per concrete URL), ``"/api/*"`` or ``"*"``.
    ``key`` overrides the middleware's key for this rule. Rules with the same ``scope`` share counters (a
    limit shared by several routes); the default scope is the method list and pattern. ``exempt=True``
    lets matching requests through unlimited. ``name`` is the policy name in the headers.

    A rule that could never match is refused here with a ConfigurationError naming it: a path that does not
    start with ``/`` (``"login"``), one holding a query or fragment (``?``, ``#``: never part of the path a
    request is matched on), and a method that is not one of HTTP's standard ones (``"PSOT"``), unless
    ``custom_methods=True`` (then any HTTP token, e.g. WebDAV's ``PROPFIND``). Against the app's own routes,
    rules are checked when the app starts (see :func:`check_rule_routes`).

    Example::

        rules = [RateLimitRule("*", "1000/hour", name="global"),
                 RateLimitRule("/login", "5/minute", methods=["POST"]),
                 RateLimitRule("/health", exempt=True)]
    """

    path: str
    limits: str | Sequence[LimitSpec] = ()
    methods: Iterable[str] | None = None
    key: KeyFunc | str | None = None
    scope: str | None = None
    cost: int = 1
    exempt: bool = False
    name: str | None = None
    custom_methods: bool = False
    rates: tuple[Rate, ...] = field(init=False, repr=False)
    method_set: frozenset[str] | None = field(init=False, repr=False)
    regex: re.Pattern[str] = field(init=False, repr=False)
    bucket: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_str("path", self.path)
        if isinstance(self.limits, (bytes, bytearray, Mapping)) or not isinstance(self.limits, (str, Iterable)):
            raise ConfigurationError(
                "limits must be a rate string ('5/minute;100/hour') or a list of rates,"
                f" not {type(self.limits).__name__}."
            )
        optional(check_strs, "methods", self.methods)
        optional(check_str, "scope", self.scope)
        optional(check_str, "name", self.name)
        check_int("cost", self.cost, min=0)
        check_bool("exempt", self.exempt)
        check_bool("custom_methods", self.custom_methods)
        _check_rule_path(self.path)
        if self.methods is not None:
            for method in self.methods:
                _check_rule_method(self.path, method, self.custom_methods)
        if self.key is not None:
            KeyResolver(self.key)  # refuses a key that is neither 'ip', 'header:<name>' nor a callable
        specs = [self.limits] if isinstance(self.limits, str) else list(self.limits)
        try:
            rates = () if self.exempt and not specs else parse_limits(specs)
        except ConfigurationError as exc:
            raise ConfigurationError(f"limits: {exc.detail}") from None
        methods = None if self.methods is None else frozenset(m.upper() for m in self.methods)
        if self.cost < 0:
            raise ConfigurationError("A rule's cost must not be negative.")
        set_ = object.__setattr__
        set_(self, "rates", rates)
        # HEAD runs the GET handler: a rule for GET counts HEAD too (in the same bucket; the label, part of the
        # storage key, stays the one of the methods as written).
        set_(self, "method_set", methods | {"HEAD"} if methods is not None and "GET" in methods else methods)
        set_(self, "regex", compile_path(self.path))
        label = ",".join(sorted(methods)) if methods else "*"
        set_(self, "bucket", self.scope or f"{label} {self.path}")

    def matches(self, method: str, path: str) -> bool:
        """True when this rule applies to ``method`` (any case; HEAD when the rule has GET) and ``path``."""
        if self.method_set is not None and method.upper() not in self.method_set:
            return False
        return self.regex.match(path) is not None


class RuleSet:
    """Compiled rules: which apply to a request (every matching rule applies; an exempt match wins).

    Example::

        RuleSet([RateLimitRule("*", "100/minute")]).match("GET", "/x")
    """

    def __init__(self, rules: Iterable[RateLimitRule]) -> None:
        self.rules = tuple(rules)
        self._cache: BoundedCache[tuple[str, str], tuple[RateLimitRule, ...]] = BoundedCache(
            "ratelimit.rules", max_entries=2048, max_bytes=1 << 20
        )

    def match(self, method: str, path: str) -> tuple[RateLimitRule, ...]:
        """The rules for this request: empty when none applies or an exempt rule matches."""
        cache_key = (method, path)
        found = self._cache.get(cache_key)
        if found is None:
            matched = [r for r in self.rules if r.matches(method, path)]
            found = () if any(r.exempt for r in matched) else tuple(matched)
            self._cache.put(cache_key, found)  # bounded: paths come from clients
        return found
