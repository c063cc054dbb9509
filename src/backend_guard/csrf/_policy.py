"""The cross-origin request policy: one decision per request from its method and two browser headers.

What lives here: :class:`CrossOriginProtection`. The order of the rules (the docs' decision table):

1. A safe method (``GET``, ``HEAD``, ``OPTIONS``, exactly so spelt) passes: those must not change state. A
   WebSocket handshake (:meth:`CrossOriginProtection.check_websocket`) is a ``GET`` judged as unsafe.
2. With ``Sec-Fetch-Site`` (Fetch Metadata): ``same-origin`` and ``none`` pass; ``same-site`` passes with
   ``allow_same_site=True``; any other case passes only when the single ``Origin`` is a trusted origin, and is
   refused otherwise (``cross-site``, ``same-site``, a value no browser sends, two different values). The
   header is a forbidden header name: a page's script cannot set it, so it is believed over ``Origin``.
3. Without it, ``Origin``: none at all passes (not a browser); several, a malformed one or ``null`` (unless
   ``allow_null_origin=True``) are refused; otherwise it passes when it equals the request's own origin (scheme
   and host as resolved from trusted proxies, default ports normalised) or is a trusted origin.

Header values arrive as the shells have them (``str`` from WSGI, ``bytes`` from ASGI), one item per header
field; nothing here raises on any input.

The verdict of a single ``Origin`` value depends on that value and the request's scheme and host alone (the
policy is fixed at construction), so it is remembered per (value, scheme, host) in a :class:`BoundedCache`:
a browser's requests without Fetch Metadata (older browsers) cost one lookup, no parse. A value never seen is
parsed in full, exactly as before; values are bounded in count and bytes (a flood of distinct or huge ones
only costs their parse again).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .. import events
from .._cache import BoundedCache
from ..cors._origin import Origin, parse_origin
from ..exceptions import ConfigurationError
from . import _decision as d
from ._decision import CrossOriginDecision
from ._trusted import TrustedOrigins

__all__ = ["SAFE_METHODS", "CrossOriginProtection", "publish_refusal"]

#: Methods never refused (RFC 9110 safe methods a browser form or fetch can send; case-sensitive, as HTTP is).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Longest Sec-Fetch-Site value read: browsers send at most 11 characters ("same-origin").
_MAX_FETCH_SITE = 64
# What one Sec-Fetch-Site value says when it is a single well-formed token (both types, exact bytes first).
_SITE_TOKENS = ("same-origin", "none", "same-site", "cross-site")
# A WebSocket's own origin is written with the scheme of the page that opens it.
_PAGE_SCHEMES = {"ws": "http", "wss": "https"}
# Bounds of each policy's memory of Origin verdicts: the origins of the app's own pages and a few more (an
# origin is at most 512 characters; a longer value is refused, and a huge one is too big to be remembered).
_VERDICTS = 1024
_VERDICT_BYTES = 1 << 20


class CrossOriginProtection:
    """Refuse state-changing requests a browser sends from another site (CSRF), without tokens.

    :param trusted_origins: other origins whose unsafe requests pass (``"https://admin.example.com"``, or
        ``"https://*.example.com"`` for any subdomain); validated like CORS origins, at construction.
    :param allow_same_site: let ``Sec-Fetch-Site: same-site`` pass (another origin of the same registrable
        domain, such as ``https://app.example.com`` calling ``https://api.example.com``). Off by default:
        any subdomain (a forgotten one, a user-content one) could then forge requests.
    :param allow_null_origin: let ``Origin: null`` pass when there is no ``Sec-Fetch-Site`` (only old browsers
        send no Fetch Metadata). Off by default: sandboxed iframes and ``data:`` documents of any site send it.

    A policy is frozen (it remembers its verdicts): assigning a setting raises ``AttributeError``; build a new one.

    Example::

        >>> import backend_guard as bg
        >>> csrf = bg.CrossOriginProtection(trusted_origins=["https://admin.example.com"])
        >>> csrf.check("POST", scheme="https", host="example.com", sec_fetch_site=["same-origin"]).allowed
        True
        >>> csrf.check("POST", scheme="https", host="example.com", origin=["https://evil.example"]).allowed
        False
        >>> csrf.check("POST", scheme="https", host="example.com").allowed  # curl, a server-side client
        True
    """

    __slots__ = (
        "_null",
        "_site_bytes",
        "_sites",
        "_verdicts",
        "allow_null_origin",
        "allow_same_site",
        "trusted_origins",
    )
    trusted_origins: TrustedOrigins
    allow_same_site: bool
    allow_null_origin: bool
    _sites: dict[str, CrossOriginDecision]
    _site_bytes: dict[bytes, CrossOriginDecision]
    _null: CrossOriginDecision
    _verdicts: BoundedCache[tuple[bool, str | bytes, str, str], CrossOriginDecision]

    def __init__(
        self,
        trusted_origins: Iterable[str] = (),
        allow_same_site: bool = False,
        *,
        allow_null_origin: bool = False,
    ) -> None:
        _check_bool("allow_same_site", allow_same_site)
        _check_bool("allow_null_origin", allow_null_origin)
        s = object.__setattr__  # frozen (see __setattr__): the remembered verdicts are these settings' own
        s(self, "trusted_origins", TrustedOrigins(trusted_origins))
        s(self, "allow_same_site", allow_same_site)
        s(self, "allow_null_origin", allow_null_origin)
        sites = _site_verdicts(allow_same_site)
        s(self, "_sites", sites)
        s(self, "_site_bytes", {token.encode(): verdict for token, verdict in sites.items()})
        s(self, "_null", d.NULL_ALLOWED if allow_null_origin else d.ORIGIN_NULL)  # the verdict of ``Origin: null``
        #: The verdict of one ``Origin`` value (as received) for a scheme and host: see the module's documentation.
        s(self, "_verdicts", BoundedCache("csrf.origins", max_entries=_VERDICTS, max_bytes=_VERDICT_BYTES))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CrossOriginProtection is frozen (its verdicts are remembered); build a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("CrossOriginProtection is frozen (its verdicts are remembered); build a new one")

    def check(
        self,
        method: str,
        *,
        scheme: str,
        host: str,
        sec_fetch_site: Sequence[str | bytes] = (),
        origin: Sequence[str | bytes] = (),
    ) -> CrossOriginDecision:
        """Decide one request.

        :param method: the request method (``"POST"``).
        :param scheme: the request's scheme as resolved from trusted proxies (``"https"``).
        :param host: the request's host as resolved (the ``Host`` value: ``"example.com"``, ``"127.0.0.1:8000"``).
        :param sec_fetch_site: the ``Sec-Fetch-Site`` values, one per header field (empty when absent).
        :param origin: the ``Origin`` values, one per header field (empty when absent).
        """
        if method in SAFE_METHODS:
            return d.SAFE
        return self._unsafe(scheme, host, sec_fetch_site, origin)

    def check_websocket(
        self,
        *,
        scheme: str,
        host: str,
        sec_fetch_site: Sequence[str | bytes] = (),
        origin: Sequence[str | bytes] = (),
    ) -> CrossOriginDecision:
        """Decide a WebSocket handshake: a ``GET`` that opens a channel, so judged as an unsafe method.

        A page on another site may open a socket to this server and the browser sends the user's cookies with
        the handshake (cross-site WebSocket hijacking). ``scheme`` may be ``ws``/``wss``: it is compared as
        ``http``/``https``, the scheme of the page's ``Origin``.

        Example::

            >>> csrf = CrossOriginProtection()
            >>> csrf.check_websocket(scheme="wss", host="example.com", origin=["https://example.com"]).allowed
            True
            >>> csrf.check_websocket(scheme="wss", host="example.com", origin=["https://evil.example"]).rule
            'origin-mismatch'
        """
        return self._unsafe(_PAGE_SCHEMES.get(scheme, scheme), host, sec_fetch_site, origin)

    def _unsafe(
        self,
        scheme: str,
        host: str,
        sec_fetch_site: Sequence[str | bytes],
        origin: Sequence[str | bytes],
    ) -> CrossOriginDecision:
        """The rules for an unsafe method: Fetch Metadata first, then ``Origin``. Nothing is published here: the
        request may still be exempt (:func:`publish_refusal` is the caller's, once it refuses)."""
        if sec_fetch_site:
            verdict = self._fetch_site(sec_fetch_site)
            if verdict.allowed:
                return verdict
            return d.TRUSTED if self.trusted_origins.allows(origin) else verdict
        return self._origin(scheme, host, origin)

    def _fetch_site(self, values: Sequence[str | bytes]) -> CrossOriginDecision:
        """The verdict of the ``Sec-Fetch-Site`` values alone (trusted origins are the caller's next step)."""
        if len(values) == 1:
            value = values[0]
            # Apart by type: a bytes key never meets a str one (a BytesWarning, an error under ``python -bb``).
            verdict = self._site_bytes.get(value) if isinstance(value, bytes) else self._sites.get(value)
            if verdict is not None:
                return verdict  # the common case: one well-formed token, one lookup
        return self._fetch_site_list(values)

    def _fetch_site_list(self, values: Sequence[str | bytes]) -> CrossOriginDecision:
        """The verdict of values that are not one well-formed token: lists, odd case, several fields."""
        tokens = _fetch_site_tokens(values)
        if not tokens:
            return d.FETCH_UNKNOWN  # an overlong value (None), or only empty ones: a browser never sends them
        if len(tokens) > 1:
            return d.FETCH_CONFLICT
        return self._sites.get(tokens.pop(), d.FETCH_UNKNOWN)

    def _origin(self, scheme: str, host: str, values: Sequence[str | bytes]) -> CrossOriginDecision:
        """The verdict without Fetch Metadata: the ``Origin`` against the request's own origin."""
        if not values:
            return d.NO_BROWSER
        if len(values) > 1:
            return d.ORIGIN_DUPLICATE
        key = (isinstance(values[0], bytes), values[0], scheme, host)  # the type first: bytes never meets str
        verdict = self._verdicts.get(key)
        if verdict is None:  # never seen (or forgotten): decided in full, then remembered
            verdict = self._one_origin(scheme, host, _text(values[0]))
            self._verdicts.put(key, verdict)
        return verdict

    def _one_origin(self, scheme: str, host: str, text: str) -> CrossOriginDecision:
        """The verdict of the request's single ``Origin`` value."""
        if text == "null":
            return self._null
        origin = parse_origin(text)
        if origin is None:
            return d.ORIGIN_MALFORMED
        if self.trusted_origins.matches(origin):
            return d.TRUSTED
        return _compare_with_own(origin, text, f"{scheme}://{host}")


def publish_refusal(decision: CrossOriginDecision, *, websocket: bool = False) -> None:
    """Publish ``csrf.refused`` (the ``rule`` that refused, ``websocket``) for a request actually refused.

    The middlewares and ``TokenCookies`` call it when they answer the 403, after the exemptions (``exempt_paths``,
    a ``csrf_exempt`` view) are known; :meth:`CrossOriginProtection.check` itself publishes nothing.

    Example::

        >>> decision = CrossOriginProtection().check("POST", scheme="https", host="a.example", origin=["null"])
        >>> publish_refusal(decision)
    """
    events.emit("csrf", "csrf.refused", rule=decision.rule, websocket=websocket)


def _compare_with_own(origin: Origin, text: str, own_text: str) -> CrossOriginDecision:
    """Same origin or not: ``origin`` (parsed from ``text``) against the request's ``scheme://host``."""
    if text == own_text:
        return d.SAME_ORIGIN  # the same characters, already parsed as a valid origin: no second parse
    return _compare_parsed(origin, parse_origin(own_text))


def _compare_parsed(origin: Origin, own: Origin | None) -> CrossOriginDecision:
    """Same origin or not, the request's own origin parsed (None: its host is malformed)."""
    if own is None:
        return d.HOST_MALFORMED
    return d.SAME_ORIGIN if origin == own else d.ORIGIN_MISMATCH


def _text(value: str | bytes) -> str:
    # latin-1 maps each byte to one character: a byte that is not ASCII stays non-ASCII, refused by the grammar
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"CrossOriginProtection {name} must be True or False, got {value!r}.")


def _site_verdicts(allow_same_site: bool) -> dict[str, CrossOriginDecision]:
    """The verdict of each single well-formed ``Sec-Fetch-Site`` value: one lookup answers the common case."""
    same_site = d.FETCH_SAME_SITE_ALLOWED if allow_same_site else d.SAME_SITE
    verdicts = (d.FETCH_SAME_ORIGIN, d.FETCH_SAME_ORIGIN, same_site, d.CROSS_SITE)
    return dict(zip(_SITE_TOKENS, verdicts, strict=True))


def _fetch_site_tokens(values: Sequence[str | bytes]) -> set[str] | None:
    """The distinct lower-case tokens of the values (a field may hold a comma-separated list); None when a
    value is overlong."""
    tokens: set[str] = set()
    for value in values:
        if len(value) > _MAX_FETCH_SITE:
            return None
        tokens.update(_tokens(_text(value)))
    return tokens


def _tokens(text: str) -> set[str]:
    """The non-empty lower-case items of a comma-separated field value."""
    return {token for token in (part.strip().lower() for part in text.split(",")) if token}
