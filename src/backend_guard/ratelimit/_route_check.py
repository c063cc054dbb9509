"""Rules against the app's own routes: :func:`check_rule_routes` and :class:`KnownRoutes`.

What lives here: telling whether a rate limit rule reaches any route the framework knows (a rule matching
none usually is a typo that leaves the real route unlimited), and the near miss to suggest. The framework
adapters build the :class:`KnownRoutes` and call the check when the app starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ..exceptions import ConfigurationError
from ._rules import PATH_PARAM, RateLimitRule

__all__ = ["KnownRoutes", "check_rule_routes"]


@dataclass(frozen=True)
class KnownRoutes:
    """What a framework knows of an app's routes, for :func:`check_rule_routes` (the adapters build it).

    ``serves(path)``: True when the app routes this concrete request path (to any handler, any method; a path
    the router only redirects is not served). ``samples``: one concrete path per route (its parameters
    filled in). ``complete``: the samples cover every route (False when some route could not be read, e.g.
    a custom route class: then only rules naming a concrete path are checked).

    Example::

        routes = KnownRoutes(lambda p: p in {"/login", "/users/1"}, ("/login", "/users/1"))
        check_rule_routes([RateLimitRule("/login/", "5/minute")], routes)   # ConfigurationError
    """

    serves: Callable[[str], bool]
    samples: tuple[str, ...] = ()
    complete: bool = True


#: Values tried for a rule's parameters and tail when looking for a route it reaches.
_SAMPLE_VALUES = ("1", "x", "00000000-0000-0000-0000-000000000000")


def _rule_samples(rule: RateLimitRule) -> list[str]:
    """Concrete paths ``rule`` matches: its parameters and tail filled with each sample value, as written and
    with one more final slash (a rule matches both)."""
    return [path for path in dict.fromkeys(_spellings(rule.path)) if rule.regex.match(path)]


def _spellings(pattern: str) -> list[str]:
    """``pattern`` filled with each sample value (:func:`_filled`), as written and with one more final slash."""
    return [path for value in _SAMPLE_VALUES for filled in _filled(pattern, value) for path in (filled, filled + "/")]


def _filled(pattern: str, value: str) -> tuple[str, ...]:
    """``pattern`` with its parameters filled with ``value``; for a ``*`` tail, with no tail and with ``value``."""
    if pattern.endswith("*"):
        filled = PATH_PARAM.sub(value, pattern[:-1])
        return filled, filled + value
    return (PATH_PARAM.sub(value, pattern),)


def _reaches(rule: RateLimitRule, routes: KnownRoutes) -> bool | None:
    """True when ``rule`` matches some route; None when that cannot be told (an incomplete route list)."""
    if _serves_a_sample(rule, routes):
        return True
    if routes.complete or _is_literal(rule.path):
        return False
    return None


def _serves_a_sample(rule: RateLimitRule, routes: KnownRoutes) -> bool:
    """True when the app serves a path ``rule`` matches, or ``rule`` matches one of the routes' samples."""
    if any(routes.serves(path) for path in _rule_samples(rule)):
        return True
    return any(rule.regex.match(path) for path in routes.samples)


def _is_literal(pattern: str) -> bool:
    """True when a rule path names one concrete path (no parameter, no ``*`` tail)."""
    return not pattern.endswith("*") and PATH_PARAM.search(pattern) is None


def _near_misses(path: str, routes: KnownRoutes) -> list[str]:
    """Spellings of ``path`` a user may have meant: another case, the other trailing slash, a route's own."""
    bare = _bare(path)
    out = [path.lower(), bare, bare.lower()]
    out += _samples_like(bare, routes)
    return [p for p in dict.fromkeys(out) if p != path]


def _samples_like(bare: str, routes: KnownRoutes) -> list[str]:
    """The routes' samples that are ``bare`` but for case and trailing slashes (the route's own spelling)."""
    return [s for s in routes.samples if _bare(s).lower() == bare.lower()]


def _bare(path: str) -> str:
    """``path`` without its trailing slashes (``/`` stays ``/``)."""
    return path.rstrip("/") or "/"


def check_rule_routes(rules: Iterable[RateLimitRule], routes: KnownRoutes) -> None:
    """Refuse a rule whose path matches none of the app's routes (ConfigurationError naming the rule).

    The framework adapters call it when the app starts (FastAPI/Starlette: the ASGI lifespan startup; Flask and
    Django: the first request, refused until fixed), with the app's routes. A rule matching nothing usually
    is a typo: another case (``/Login``), a trailing slash the route has not (``/login/`` for ``/login``),
    which would leave the real route unlimited. The message suggests the near miss that does match.
    ``"*"`` rules always pass. Set ``rate_limit.check_routes=False`` (or ``check_routes=False`` on the
    middleware) for paths served outside the app's router.

    Example::

        check_rule_routes(rules, KnownRoutes(lambda p: p == "/login", ("/login",)))
    """
    for rule in rules:
        if rule.path not in ("*", "/*") and _reaches(rule, routes) is False:
            raise ConfigurationError(
                f"rate limit rule {rule.path!r} matches no route of the app: {_hint(rule, routes)} (or set"
                " rate_limit.check_routes=False when the path is served outside the app's router)."
            )


def _hint(rule: RateLimitRule, routes: KnownRoutes) -> str:
    """What to tell about a rule matching no route: the near miss that does match, if any."""
    fixes = [p for p in _near_misses(rule.path, routes) if _reaches(replace(rule, path=p), routes)]
    return f"did you mean {fixes[0]!r}?" if fixes else "rule paths match request paths exactly, case included"
