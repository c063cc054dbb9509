"""Rules of the rate limit middlewares: :class:`RateLimitRule`, :class:`RuleSet` and path patterns.

What lives here (sans-IO matching): a rule's validation (a path or method no request can carry is refused
when the rule is made), :func:`compile_path` (``/users/{id}``, ``/api/*``, ``*``), and which rules apply to a
request's method and path (every matching rule; an exempt one wins), cached per method and path.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    if pattern.endswith("*"):
        return re.compile("^" + _path_regex(pattern[:-1]) + ".*$")
    return re.compile("^" + _path_regex(pattern) + "/?$")


def _path_regex(body: str) -> str:
    """The regex of a path pattern without its tail: literal text escaped, each parameter one segment (or the
    rest of the path for ``{name:path}``)."""
    out: list[str] = []
    pos = 0
    for m in PATH_PARAM.finditer(body):
        out += (re.escape(body[pos : m.start()]), ".*" if m.group(2) == "path" else "[^/]+")
        pos = m.end()
    out.append(re.escape(body[pos:]))
    return "".join(out)


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
        _refuse_part(path, char, what)


def _refuse_part(path: str, char: str, what: str) -> None:
    """Refuse a rule path holding ``char`` (what starts a query string or a fragment: never matched on)."""
    if char in path:
        fixed = path.split(char, 1)[0] or "/"
        raise ConfigurationError(
            f"rule {path!r}: a request's {what} is not part of the path rules match: did you mean {fixed!r}?"
        )


def _rule_methods(path: str, methods: Iterable[str] | None, custom: bool) -> frozenset[str] | None:
    """A rule's methods in upper case (None: any), each checked (:func:`_check_rule_method`)."""
    if methods is None:
        return None
    for method in methods:
        _check_rule_method(path, method, custom)
    return frozenset(m.upper() for m in methods)


def _read_once(methods: Iterable[str] | None) -> Iterable[str] | None:
    """``methods`` as a tuple when it is a one-shot iterator (a generator): it is read twice, by its type check
    and for the rule's method set, and would be found empty the second time (a rule matching no method)."""
    return tuple(methods) if isinstance(methods, Iterator) else methods


def _with_head(methods: frozenset[str] | None) -> frozenset[str] | None:
    """The methods a rule matches: HEAD runs the GET handler, so a rule for GET counts HEAD too (in the same
    bucket; the bucket's label, part of the storage key, stays the one of the methods as written)."""
    if methods is None or "GET" not in methods:
        return methods
    return methods | {"HEAD"}


def _check_limits_type(limits: object) -> None:
    """Refuse a rule's ``limits`` that is neither a rate string nor a list of rates."""
    if isinstance(limits, (bytes, bytearray, Mapping)) or not isinstance(limits, (str, Iterable)):
        raise ConfigurationError(
            f"limits must be a rate string ('5/minute;100/hour') or a list of rates, not {type(limits).__name__}."
        )


def _rule_rates(limits: str | Sequence[LimitSpec], exempt: bool) -> tuple[Rate, ...]:
    """A rule's rates (none for an exempt rule without limits); a bad rate is refused naming ``limits``."""
    specs = _limit_specs(limits)
    if exempt and not specs:
        return ()
    try:
        return parse_limits(specs)
    except ConfigurationError as exc:
        raise ConfigurationError(f"limits: {exc.detail}") from None


def _check_rule_method(path: str, method: str, custom: bool) -> None:
    """Refuse a rule method no request can carry (standard methods only unless ``custom``)."""
    if HTTP_TOKEN_RE.fullmatch(method) is None:
        raise ConfigurationError(f"rule {path!r}: {method!r} is not an HTTP method.")
    if custom or method.upper() in _RULE_METHODS:
        return
    hint = _method_hint(method)
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
        object.__setattr__(self, "methods", _read_once(self.methods))
        self._check_options()
        _check_rule_path(self.path)
        methods = _rule_methods(self.path, self.methods, self.custom_methods)
        if self.key is not None:
            KeyResolver(self.key)  # refuses a key that is neither 'ip', 'header:<name>' nor a callable
        rates = _rule_rates(self.limits, self.exempt)
        set_ = object.__setattr__
        set_(self, "rates", rates)
        set_(self, "method_set", _with_head(methods))
        set_(self, "regex", compile_path(self.path))
        set_(self, "bucket", self.scope or _bucket_label(methods, self.path))

    def _check_options(self) -> None:
        """Refuse an option of the wrong type (the cost, never negative, included)."""
        check_str("path", self.path)
        _check_limits_type(self.limits)
        optional(check_strs, "methods", self.methods)
        optional(check_str, "scope", self.scope)
        optional(check_str, "name", self.name)
        check_int("cost", self.cost, min=0)
        check_bool("exempt", self.exempt)
        check_bool("custom_methods", self.custom_methods)

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
            found = self._matching(method, path)
            self._cache.put(cache_key, found)  # bounded: paths come from clients
        return found

    def _matching(self, method: str, path: str) -> tuple[RateLimitRule, ...]:
        """:meth:`match` without its cache."""
        matched = tuple(r for r in self.rules if r.matches(method, path))
        return () if any(r.exempt for r in matched) else matched


def _method_hint(method: str) -> str:
    """``did you mean 'POST'? `` for the standard method nearest an unknown one (empty: none is near)."""
    near = difflib.get_close_matches(method.upper(), _RULE_METHODS, n=1, cutoff=0.5)
    return f"did you mean {near[0]!r}? " if near else ""


def _bucket_label(methods: frozenset[str] | None, path: str) -> str:
    """A rule's bucket without a scope: its methods as written (``*``: any) and its path pattern."""
    label = ",".join(sorted(methods)) if methods else "*"
    return f"{label} {path}"


def _limit_specs(limits: str | Sequence[LimitSpec]) -> list[LimitSpec]:
    """A rule's limits as a list of specs (a rate string is one spec)."""
    return [limits] if isinstance(limits, str) else list(limits)
