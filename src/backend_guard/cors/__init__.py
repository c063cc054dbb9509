"""CORS: a policy compiled once, origins compared structurally, and decisions as plain results (sans-IO).

What lives here: parsing origins into ``(scheme, host, port)``, matching them against the configured origins,
subdomain patterns and an optional full-match regex, and deciding what a preflight or an actual response gets.
No framework and no I/O: the ASGI and WSGI middlewares (``backend_guard.asgi``/``backend_guard.wsgi``) only read
headers, ask the policy and write headers back.

Why structural matching: comparing strings with prefixes or loose regexes is how CORS filters get fooled
(``https://example.com.evil.net``, ``https://example.com@evil.net``, ``https://evilexample.com``). An origin
here is parsed by a strict grammar first; anything that is not exactly ``scheme://host[:port]`` is never allowed,
and a match compares the scheme, the host and the port as separate values.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from .._cache import BoundedCache
from .._check import check_bool, check_int, check_str, check_strs, optional
from .._http import HTTP_TOKEN_RE
from .._routes import RouteCall, RouteHooks, guard_route
from ..exceptions import ConfigurationError
from ._regex_samples import regex_samples

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = ["CORSDecision", "CORSPolicy", "Origin", "cors_headers", "cors_route", "parse_origin"]

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
# Browsers send these without a preflight for simple values; a JSON body still asks for content-type, so they
# are always allowed when requested (as Starlette and django-cors-headers do).
SAFELISTED_HEADERS = ("accept", "accept-language", "content-language", "content-type")
ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
PREFLIGHT_VARY = ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
PNA_VARY = "Access-Control-Request-Private-Network"
ACTUAL_VARY = ("Origin",)
F = TypeVar("F", bound=Callable[..., Any])
STATE_KEY = "backend_guard.cors"  # scope["state"][...] / environ[...]: a per-route CORSPolicy override

MAX_ORIGIN_LENGTH = 512  # longer than any real origin (a host is at most 253 characters)
MAX_REQUEST_HEADERS_LENGTH = 4096
_CACHE_SIZE = 1024
_CACHE_BYTES = 1 << 20  # origins are at most 512 characters: 1024 of them fit

_SCHEME = r"[a-z][a-z0-9+.\-]*"
_LABEL = r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_ORIGIN_RE = re.compile(rf"({_SCHEME})://({_HOST}|\[[0-9a-f:.]+\])(?::([0-9]{{1,5}}))?", re.ASCII)
_PATTERN_RE = re.compile(rf"({_SCHEME})://\*\.({_HOST})(?::([0-9]{{1,5}}|\*))?", re.ASCII)
_IDNA_DEVIATIONS = frozenset("\u00df\u1e9e\u03c2\u200c\u200d")  # UTS 46 deviations (and capitals)
# Hosts no attacker can choose under a pattern or regex: the loopback name (browsers resolve "*.localhost" to
# loopback), so "http://*.localhost:*" stays a fine development setting although "localhost" is no domain.
_LOOPBACK_NAMES = frozenset({"localhost"})
# Sites an attacker may own, tried against an origin regex besides the ones derived from what it matches.
_FOREIGN_HOSTS = ("attacker.com", "evil.example", "attacker.com.evil.net", "attacker", "203.0.113.7")

_HOST_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"

_SITES_READ = "those sites would read your users' data"

log = logging.getLogger("backend_guard.cors")


class Origin(NamedTuple):
    """A parsed origin: lower-case scheme, lower-case ASCII host (IDNA), and the port (default filled in).

    Example::

        >>> parse_origin("HTTPS://Example.COM:443")
        Origin(scheme='https', host='example.com', port=443)
        >>> parse_origin("https://example.com:443").serialize()
        'https://example.com'
    """

    scheme: str
    host: str
    port: int | None

    def serialize(self) -> str:
        """The origin as a browser writes it in the ``Origin`` header (default port left out)."""
        if self.port is None or DEFAULT_PORTS.get(self.scheme) == self.port:
            return f"{self.scheme}://{self.host}"
        return f"{self.scheme}://{self.host}:{self.port}"


def _finish(scheme: str, host: str, port_text: str | None) -> Origin | None:
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    elif len(host) > 253:
        return None
    port: int | None = DEFAULT_PORTS.get(scheme)
    if port_text is not None:
        port = int(port_text)
        if not 0 < port < 65536:
            return None
    return Origin(scheme, host, port)


def parse_origin(value: str | bytes) -> Origin | None:
    """Parse a request's ``Origin`` value; None when it is not exactly ``scheme://host[:port]`` (or is ``null``).

    Strict on purpose: no path, no userinfo, no whitespace, ASCII only (browsers send IDNA hosts as
    ``xn--``), at most 512 characters. Case and default ports are normalised.

    Example::

        >>> parse_origin("https://example.com@evil.net") is None
        True
        >>> parse_origin("http://localhost:8000")
        Origin(scheme='http', host='localhost', port=8000)
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if len(value) > MAX_ORIGIN_LENGTH or not value.isascii():
        return None
    m = _ORIGIN_RE.fullmatch(value.lower())
    if m is None:
        return None
    return _finish(m.group(1), m.group(2), m.group(3))


def _config_origin(text: str) -> Origin:
    """Parse a configured origin, explaining what is wrong (IDNA hosts allowed here)."""
    if not isinstance(text, str) or not text:
        raise ConfigurationError(f"CORS origin must be a non-empty string, got {text!r}.")
    if "://" not in text:
        raise ConfigurationError(f"CORS origin {text!r} has no scheme; write it as 'https://host[:port]'.")
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise ConfigurationError(f"CORS origin {text!r} has userinfo ('user@'); an origin never has one.")
    if parts.path or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ConfigurationError(
            f"CORS origin {text!r} has a path, query or fragment; an origin is only 'scheme://host[:port]'"
            " (no trailing slash)."
        )
    scheme, _, rest = text.partition("://")
    host, port_text = rest, None
    if ("]:" in rest) if rest.startswith("[") else (":" in rest):
        host, _, port_text = rest.rpartition(":")
    if not host.isascii() and any(ch in _IDNA_DEVIATIONS for ch in host):
        # Python's codec (IDNA 2003) maps these ("faß" -> "fass"), browsers (UTS 46 non-transitional) keep them
        # ("xn--fa-hia"): the policy would allow another registrant's domain and not the one meant.
        raise ConfigurationError(
            f"CORS origin {text!r} has a character IDNA 2003 and browsers encode differently (ß, ς, ZWJ, ZWNJ);"
            " write the host in its 'xn--' form."
        )
    try:
        ascii_host = host.lower() if host.isascii() else host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ConfigurationError(f"CORS origin {text!r} has a host that is not a valid IDNA name.") from None
    candidate = f"{scheme.lower()}://{ascii_host}" + (f":{port_text}" if port_text is not None else "")
    origin = parse_origin(candidate)
    if origin is None:
        raise ConfigurationError(f"CORS origin {text!r} is not a valid 'scheme://host[:port]' origin.")
    return origin


@dataclass(frozen=True, slots=True)
class _HostPattern:
    scheme: str
    suffix: str  # ".example.com": any subdomain, at any depth
    port: int | None  # None with any_port
    any_port: bool

    def matches(self, origin: Origin) -> bool:
        return (
            origin.scheme == self.scheme
            and origin.host.endswith(self.suffix)
            and (self.any_port or origin.port == self.port)
            and not origin.host.startswith("[")
        )


@functools.cache
def _psl() -> PublicSuffixList:
    """The Public Suffix List shipped inside the ``publicsuffixlist`` package (read once; no network)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@functools.cache
def _suffixes_below() -> dict[str, tuple[str, ...]]:
    """For each domain with public suffixes under it, hosts an attacker may register there (``amazonaws.com``:
    ``attacker.s3.amazonaws.com``, ...). Read once from the list file shipped in ``publicsuffixlist``."""
    from publicsuffixlist import PSLFILE

    below: dict[str, list[str]] = {}
    with open(PSLFILE, encoding="utf-8") as lines:
        for line in lines:
            rule = line.lower().split(" ")[0].strip()
            if not rule or rule.startswith(("//", "!")):
                continue
            try:
                rule = rule if rule.isascii() else rule.encode("idna").decode("ascii")
            except UnicodeError:
                continue
            host = "attacker." + rule.replace("*", "attacker")
            labels = rule.split(".")
            for k in range(1, len(labels)):
                below.setdefault(".".join(labels[k:]), []).append(host)
    return {domain: tuple(hosts) for domain, hosts in below.items()}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _registrable(host: str) -> str:
    """The part of ``host`` one registrant holds (``example.co.uk`` of ``app.example.co.uk``).

    A host that is itself a public suffix (``github.io``, ``co.uk``, an unknown one-label name) is its own
    answer, so that variations of its first label count as other registrants.
    """
    found = _psl().privatesuffix(host)
    return found if found is not None else host


def _site(host: str) -> str:
    return host if host.startswith("[") or _is_ip(host) else _registrable(host)


def _refuse_or_warn(credentials: bool, message: str, instead: str, risk: str = _SITES_READ) -> None:
    # With credentials another site reads the user's data: refused. Without, it reads what any client could
    # fetch anonymously, as allow_origins=["*"] (accepted without credentials) would: a warning at start-up.
    if credentials:
        raise ConfigurationError(f"{message} With allow_credentials=True {risk}; {instead}")
    log.warning("%s %s", message, instead)


def _check_public_pattern(text: str, base_host: str, credentials: bool) -> None:
    if base_host in _LOOPBACK_NAMES or _is_ip(base_host):
        return
    below = _suffixes_below().get(base_host)
    if below and not _psl().is_public(base_host):
        # The domain is someone's, but sites under it belong to its customers (attacker.s3.amazonaws.com).
        _refuse_or_warn(
            credentials,
            f"CORS allow_origin_patterns {text!r}: public suffixes lie under {base_host!r}, so"
            f" '*.{base_host}' admits sites anyone registers there (such as"
            f" '{text.partition('://')[0]}://{below[0]}').",
            "list your own origins in allow_origins, or narrow the pattern to a name you own.",
        )
        return
    if not _psl().is_public(base_host):
        return
    _refuse_or_warn(
        credentials,
        f"CORS allow_origin_patterns {text!r}: {base_host!r} is a public suffix, so '*.{base_host}' admits every"
        f" site anyone registers under it (such as '{text.partition('://')[0]}://attacker.{base_host}').",
        f"list your own origins in allow_origins, or narrow the pattern to a name you own"
        f" ('{text.partition('://')[0]}://*.yourname.{base_host}').",
    )


def _config_pattern(text: str, credentials: bool = False) -> _HostPattern:
    if not isinstance(text, str) or "://" not in text:
        raise ConfigurationError(f"CORS origin pattern {text!r} has no scheme; write 'https://*.example.com'.")
    scheme, _, rest = text.partition("://")
    if not rest.startswith("*."):
        raise ConfigurationError(
            f"CORS origin pattern {text!r}: the only wildcard is a leading '*.' label ('https://*.example.com')."
        )
    base_host, port_text = rest[2:], None
    if ":" in base_host:
        base_host, _, port_text = base_host.rpartition(":")
    if port_text == "*":
        base = _config_origin(f"{scheme}://{base_host}")
    else:
        base = _config_origin(f"{scheme}://{base_host}" + (f":{port_text}" if port_text is not None else ""))
    if base.host.startswith("[") or ("." not in base.host and base.host != "localhost"):
        raise ConfigurationError(
            f"CORS origin pattern {text!r} would admit a whole top-level domain; name a registrable domain."
        )
    _check_public_pattern(text, base.host, credentials)
    return _HostPattern(base.scheme, "." + base.host, None if port_text == "*" else base.port, port_text == "*")


def _check_regex(text: str) -> re.Pattern[str]:
    """Compile a raw origin regex, refusing unescaped dots outside character classes."""
    in_class = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if text[i + 1 : i + 2] == "]":  # a ']' first in a class is literal
                i += 1
        elif ch == "." and text[i + 1 : i + 2] not in ("*", "+", "{"):  # a repeated '.' is a wildcard on purpose
            raise ConfigurationError(
                f"CORS origin regex {text!r} has an unescaped '.', which matches any character"
                " ('https://app.example.com' would admit 'https://appxexample.com'); write '\\.' or a class"
                " such as '[a-z0-9-]+'."
            )
        i += 1
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigurationError(f"CORS origin regex {text!r} does not compile: {exc}.") from None
    except RecursionError:
        raise ConfigurationError(f"CORS origin regex {text!r} is nested too deeply to compile.") from None


def _foreign_variants(host: str) -> list[str]:
    """Hosts of other registrants made from ``host``: its registrable label changed (from its own characters,
    so a loose character class admits them too), another suffix, and the whole host under an attacker's domain.
    """
    if host.startswith("[") or _is_ip(host):
        return []
    registrable = _registrable(host)
    sub = host[: len(host) - len(registrable)]  # "app." of "app.example.com"
    label, _, suffix = registrable.partition(".")
    dot_suffix = f".{suffix}" if suffix else ""
    out: list[str] = []
    for other in (
        "attacker",
        "attacker" + label,
        label + "attacker",
        label + label,
        label[0] + label,
        label + label[-1],
    ):
        out += [sub + other + dot_suffix, other + dot_suffix]
    if suffix:
        out += [f"{sub}{label}.{other}" for other in (suffix + suffix[-1], "zz", "attacker")]
    out += [host + ".attacker.zz", host + "zz"]
    out += _suffixes_below().get(registrable, ())
    # One character of the registrable domain changed ("example.c[a-z]" admits example.cn, "shop[0-9]" shop2.com).
    for i in range(len(sub), len(host)):
        if host[i] != ".":
            out += [host[:i] + ch + host[i + 1 :] for ch in _HOST_CHARS if ch != host[i]]
    return out


def _regex_escape(regex: re.Pattern[str]) -> tuple[str | None, str | None]:
    """``(origin outside the domains the regex names that it admits, an origin it matched)``; the first is
    None when none was found, the second None when no origin it matches could be made to check it with."""
    samples: list[Origin] = []
    try:
        texts = regex_samples(regex.pattern, MAX_ORIGIN_LENGTH)
    except (ValueError, RecursionError):  # too many alternatives or too deep to write out: not checkable
        texts = []
    for text in texts:
        origin = parse_origin(text)
        if origin is not None and origin not in samples and regex.fullmatch(origin.serialize()):
            samples.append(origin)
    named = {_site(o.host) for o in samples}  # the registrable domains the regex names
    bases = samples or [Origin("https", "example.com", 443), Origin("http", "example.com", 80)]
    tried: set[tuple[str, str, int | None]] = set()
    for origin in bases:
        site = (origin.scheme, _site(origin.host), origin.port)
        if site in tried:  # the other registrants of this site were tried from an earlier sample
            continue
        tried.add(site)
        for host in (*_FOREIGN_HOSTS, *_foreign_variants(origin.host)):
            probe = parse_origin(Origin(origin.scheme, host, origin.port).serialize())
            if probe is not None and _site(probe.host) not in named and regex.fullmatch(probe.serialize()):
                return probe.serialize(), (origin.serialize() if samples else None)
    return None, (samples[0].serialize() if samples else None)


def _check_regex_reach(text: str, regex: re.Pattern[str], credentials: bool) -> None:
    instead = (
        "name your own registrable domain with escaped dots after the wildcard part"
        " ('https://[a-z0-9-]+\\.example\\.com'), or use allow_origin_patterns=['https://*.example.com']."
    )
    escape, sample = _regex_escape(regex)
    if escape is not None:
        matched = f" (besides {sample!r})" if sample else ""
        _refuse_or_warn(
            credentials,
            f"CORS allow_origin_regex {text!r} admits {escape!r}{matched}, a site outside the domains it names.",
            instead,
        )
    elif sample is None:
        _refuse_or_warn(
            credentials,
            f"CORS allow_origin_regex {text!r} could not be checked: no origin it matches could be made from it"
            " (back references, lookarounds, or no valid 'scheme://host[:port]' at all).",
            "write it without back references or lookarounds, or list origins in allow_origins.",
            "a regex must be checkable",
        )


def _compile_path(spec: str) -> re.Pattern[str] | str:
    if not isinstance(spec, str) or not spec.startswith("/"):
        raise ConfigurationError(f"CORS path {spec!r} must start with '/'.")
    if "*" not in spec:
        return spec.rstrip("/")  # a prefix at a segment boundary; "/" -> "" covers everything
    out = []
    for part in re.split(r"(\*\*|\*)", spec):
        out.append(".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part))
    return re.compile("".join(out))


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigurationError(f"CORS {what} must be a list of strings, not one string.")
    out: list[str] = []
    for v in values:
        if not isinstance(v, str) or (v != "*" and HTTP_TOKEN_RE.fullmatch(v) is None):
            raise ConfigurationError(f"CORS {what}: {v!r} is not a valid name.")
        if v not in out:
            out.append(v)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CORSDecision:
    """What CORS adds to one response: a plain result any shell can write out.

    ``headers`` are the ``Access-Control-*`` headers to set (none when refused); ``vary`` are names to merge
    into the response's ``Vary`` (always, allowed or not). For a preflight, ``status`` is the status of the
    whole response the shell answers with (204 allowed, 403 refused); for an actual request it is None (the
    app's response goes on). ``reason`` says what was refused (``"origin"``, ``"method"``, ``"headers"``).

    Example::

        d = policy.preflight("https://app.example.com", "PUT", "content-type")
        if d.preflight:
            respond(d.status, d.headers + [("Vary", ", ".join(d.vary))])
    """

    allowed: bool
    preflight: bool
    headers: tuple[tuple[str, str], ...] = ()
    vary: tuple[str, ...] = ACTUAL_VARY
    status: int | None = None
    reason: str | None = None


RawHeaders = tuple[tuple[bytes, bytes], ...]
_NOTHING: RawHeaders = ()


class CORSPolicy:
    """A CORS policy, validated and compiled when built (``ConfigurationError`` on unsafe settings).

    ``allow_origins`` are exact origins (``"*"`` for any, ``"null"`` only on purpose); ``allow_origin_patterns``
    are ``"https://*.example.com"`` (any subdomain, never the bare domain; ``:*`` for any port);
    ``allow_origin_regex`` is a full-match regex over the normalised origin with no unescaped dots.
    ``allow_methods``/``allow_headers`` may be ``["*"]`` (any method; any header but ``Authorization``, which
    must be listed). ``paths`` limits the policy to path prefixes (``"/api"``) or patterns (``"/v*/public/**"``);
    None covers every path. Frozen: build a new one to change it.

    Example::

        policy = bg.CORSPolicy(
            allow_origins=["https://app.example.com"],
            allow_origin_patterns=["https://*.preview.example.com"],
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["authorization", "x-request-id"],
            allow_credentials=True,
            paths=["/api"],
        )
        policy.is_allowed_origin("https://app.example.com")        # True
        policy.is_allowed_origin("https://app.example.com.evil.net")  # False
    """

    __slots__ = (
        "_actual_cache",
        "_allow_all",
        "_allowed_headers",
        "_any_header",
        "_any_method",
        "_exact",
        "_methods",
        "_path_patterns",
        "_path_prefixes",
        "_patterns",
        "_preflight_common",
        "_regex",
        "_simple_tail",
        "allow_credentials",
        "allow_headers",
        "allow_methods",
        "allow_null",
        "allow_origin_patterns",
        "allow_origin_regex",
        "allow_origins",
        "allow_private_network",
        "expose_headers",
        "max_age",
        "paths",
        "preflight_status",
    )

    allow_origins: tuple[str, ...]
    allow_origin_patterns: tuple[str, ...]
    allow_origin_regex: str | None
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    allow_credentials: bool
    max_age: int
    allow_private_network: bool
    allow_null: bool
    paths: tuple[str, ...] | None
    preflight_status: int
    _actual_cache: BoundedCache[bytes, RawHeaders]
    _allow_all: bool
    _allowed_headers: frozenset[str]
    _any_header: bool
    _any_method: bool
    _exact: dict[Origin, str]
    _methods: frozenset[str]
    _path_patterns: tuple[re.Pattern[str], ...]
    _path_prefixes: tuple[str, ...]
    _patterns: tuple[_HostPattern, ...]
    _preflight_common: RawHeaders
    _regex: re.Pattern[str] | None
    _simple_tail: RawHeaders

    def __init__(
        self,
        allow_origins: Sequence[str] = (),
        allow_origin_patterns: Sequence[str] = (),
        allow_methods: Sequence[str] = ("GET", "HEAD", "POST"),
        allow_headers: Sequence[str] = (),
        expose_headers: Sequence[str] = (),
        allow_credentials: bool = False,
        max_age: int = 600,
        allow_private_network: bool = False,
        *,
        allow_origin_regex: str | None = None,
        paths: Sequence[str] | None = None,
        preflight_status: int = 204,
    ) -> None:
        allow_origins = check_strs("allow_origins", allow_origins)
        allow_origin_patterns = check_strs("allow_origin_patterns", allow_origin_patterns)
        allow_methods = check_strs("allow_methods", allow_methods)
        allow_headers = check_strs("allow_headers", allow_headers)
        expose_headers = check_strs("expose_headers", expose_headers)
        check_bool("allow_credentials", allow_credentials)
        check_int("max_age", max_age, min=0)
        check_bool("allow_private_network", allow_private_network)
        optional(check_str, "allow_origin_regex", allow_origin_regex)
        paths = optional(check_strs, "paths", paths)
        check_int("preflight_status", preflight_status)
        s = object.__setattr__
        origins = tuple(allow_origins)
        allow_all = "*" in origins
        allow_null = "null" in origins
        if not isinstance(allow_credentials, bool):
            raise ConfigurationError("CORS allow_credentials must be True or False.")
        if allow_all and allow_credentials:
            raise ConfigurationError(
                "CORS allow_origins=['*'] with allow_credentials=True would let any site read credentialed"
                " responses; list the origins instead."
            )
        if allow_all and (len(origins) > 1 or allow_origin_patterns or allow_origin_regex):
            raise ConfigurationError("CORS allow_origins=['*'] already allows every origin; list nothing else.")
        if allow_null and allow_credentials:
            raise ConfigurationError(
                "CORS origin 'null' with allow_credentials=True: sandboxed iframes and data: URLs of any site"
                " send 'null', so this admits everyone with the user's credentials."
            )
        exact: dict[Origin, str] = {}
        for text in origins:
            if text in ("*", "null"):
                continue
            origin = _config_origin(text)
            exact[origin] = origin.serialize()
        patterns = tuple(_config_pattern(p, allow_credentials) for p in allow_origin_patterns)
        regex = None
        if allow_origin_regex is not None:
            regex = _check_regex(allow_origin_regex)
            _check_regex_reach(allow_origin_regex, regex, allow_credentials)

        methods = tuple(m.upper() for m in _names(allow_methods, "allow_methods"))
        any_method = "*" in methods
        headers = tuple(h.lower() for h in _names(allow_headers, "allow_headers"))
        any_header = "*" in headers
        expose = _names(expose_headers, "expose_headers")
        if "*" in expose and allow_credentials:
            raise ConfigurationError(
                "CORS expose_headers=['*'] is taken literally by browsers on credentialed requests; list names."
            )
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ConfigurationError(f"CORS max_age must be a whole number of seconds >= 0, got {max_age!r}.")
        if preflight_status not in (200, 204):
            raise ConfigurationError("CORS preflight_status must be 200 or 204.")
        compiled_paths = [_compile_path(p) for p in paths] if paths is not None else []

        s(self, "allow_origins", origins)
        s(self, "allow_origin_patterns", tuple(allow_origin_patterns))
        s(self, "allow_origin_regex", allow_origin_regex)
        s(self, "allow_methods", methods)
        s(self, "allow_headers", headers)
        s(self, "expose_headers", expose)
        s(self, "allow_credentials", allow_credentials)
        s(self, "max_age", max_age)
        s(self, "allow_private_network", bool(allow_private_network))
        s(self, "allow_null", allow_null)
        s(self, "paths", tuple(paths) if paths is not None else None)
        s(self, "preflight_status", preflight_status)
        s(self, "_allow_all", allow_all)
        s(self, "_exact", exact)
        s(self, "_patterns", patterns)
        s(self, "_regex", regex)
        s(self, "_methods", frozenset(methods) | SAFELISTED_METHODS)
        s(self, "_any_method", any_method)
        s(self, "_allowed_headers", frozenset(headers) | frozenset(SAFELISTED_HEADERS))
        s(self, "_any_header", any_header)
        s(self, "_path_prefixes", tuple(p for p in compiled_paths if isinstance(p, str)))
        s(self, "_path_patterns", tuple(p for p in compiled_paths if not isinstance(p, str)))
        tail: list[tuple[bytes, bytes]] = []
        if allow_credentials:
            tail.append((b"access-control-allow-credentials", b"true"))
        if expose:
            tail.append((b"access-control-expose-headers", ", ".join(expose).encode("latin-1")))
        s(self, "_simple_tail", tuple(tail))
        common = list(tail[:1])
        if not any_method:
            common.append((b"access-control-allow-methods", ", ".join(methods).encode("latin-1")))
        common.append((b"access-control-max-age", str(max_age).encode("latin-1")))
        s(self, "_preflight_common", tuple(common))
        s(self, "_actual_cache", BoundedCache("cors.actual", max_entries=_CACHE_SIZE, max_bytes=_CACHE_BYTES))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("CORSPolicy is frozen; build a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("CORSPolicy is frozen; build a new one")

    def __repr__(self) -> str:
        return (
            f"CORSPolicy(allow_origins={list(self.allow_origins)!r}, "
            f"allow_origin_patterns={list(self.allow_origin_patterns)!r}, allow_methods={list(self.allow_methods)!r}, "
            f"allow_credentials={self.allow_credentials!r}, paths={self.paths!r})"
        )

    # -- matching ---------------------------------------------------------------------------------------

    def applies_to(self, path: str) -> bool:
        """True when this policy covers ``path`` (always, without ``paths``).

        Example::

            >>> CORSPolicy(allow_origins=["https://a.example"], paths=["/api"]).applies_to("/api/users")
            True
        """
        if self.paths is None:
            return True
        for prefix in self._path_prefixes:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                return True
        return any(p.fullmatch(path) for p in self._path_patterns)

    def match_origin(self, origin: str | bytes | None) -> str | None:
        """The value for ``Access-Control-Allow-Origin`` when ``origin`` is allowed, else None.

        ``"*"`` for a policy allowing any origin; otherwise the normalised origin (``"null"`` when listed).

        Example::

            >>> CORSPolicy(allow_origins=["https://example.com"]).match_origin("https://example.com:443")
            'https://example.com'
        """
        if origin is None:
            return None
        if origin in ("null", b"null"):
            return "null" if self.allow_null else ("*" if self._allow_all else None)
        parsed = parse_origin(origin)
        if parsed is None:
            return None
        if self._allow_all:
            return "*"
        found = self._exact.get(parsed)
        if found is not None:
            return found
        for pattern in self._patterns:
            if pattern.matches(parsed):
                return parsed.serialize()
        if self._regex is not None:
            text = parsed.serialize()
            if self._regex.fullmatch(text):
                return text
        return None

    def is_allowed_origin(self, origin: str | bytes | None) -> bool:
        """True when ``origin`` (a request's ``Origin`` value) is allowed by this policy.

        Example::

            >>> CORSPolicy(allow_origin_patterns=["https://*.example.com"]).is_allowed_origin("https://example.com")
            False
        """
        return self.match_origin(origin) is not None

    # -- decisions -----------------------------------------------------------------------------------------

    def actual_raw(self, origin: bytes | None) -> RawHeaders:
        """``Access-Control-*`` header pairs (lower-case bytes) for an actual response; () when not allowed.

        The shells' hot path: the answer for an origin is computed once and cached (bounded).

        Example::

            policy.actual_raw(b"https://app.example.com")
            # ((b'access-control-allow-origin', b'https://app.example.com'),)
        """
        if origin is None:
            return _NOTHING
        cache = self._actual_cache
        found = cache.get(origin)
        if found is not None:
            return found
        value = self.match_origin(origin)
        result: RawHeaders = (
            _NOTHING if value is None else ((b"access-control-allow-origin", value.encode("ascii")), *self._simple_tail)
        )
        if len(origin) <= MAX_ORIGIN_LENGTH:
            cache.put(origin, result)
        return result

    def actual(self, origin: str | None) -> CORSDecision:
        """The decision for an actual (non-preflight) response to a request with this ``Origin``.

        Example::

            d = policy.actual("https://app.example.com")
            d.allowed, d.headers, d.vary   # True, (("Access-Control-Allow-Origin", ...), ...), ("Origin",)
        """
        raw = self.actual_raw(origin.encode("latin-1", "replace") if origin is not None else None)
        return CORSDecision(allowed=bool(raw), preflight=False, headers=_title(raw), vary=ACTUAL_VARY)

    def preflight_vary(self) -> tuple[str, ...]:
        """Names a preflight response varies on (the private-network one only when enabled)."""
        return (*PREFLIGHT_VARY, PNA_VARY) if self.allow_private_network else PREFLIGHT_VARY

    def preflight_raw(
        self,
        origin: str | bytes | None,
        method: str | bytes | None,
        request_headers: str | bytes | None = None,
        private_network: bool = False,
    ) -> tuple[bool, RawHeaders, str | None]:
        """``(allowed, Access-Control-* pairs, refusal reason)`` for a preflight; the shells' form.

        Example::

            allowed, headers, reason = policy.preflight_raw(b"https://a.example", b"PUT", b"content-type")
        """
        value = self.match_origin(origin)
        if value is None:
            return False, _NOTHING, "origin"
        if isinstance(method, bytes):
            method = method.decode("latin-1")
        if not method or HTTP_TOKEN_RE.fullmatch(method) is None:
            return False, _NOTHING, "method"
        if not self._any_method and method not in self._methods:
            return False, _NOTHING, "method"
        asked: list[str] = []
        if request_headers:
            if isinstance(request_headers, bytes):
                request_headers = request_headers.decode("latin-1")
            if len(request_headers) > MAX_REQUEST_HEADERS_LENGTH:
                return False, _NOTHING, "headers"
            for item in request_headers.split(","):
                name = item.strip().lower()
                if not name:
                    continue
                if HTTP_TOKEN_RE.fullmatch(name) is None:
                    return False, _NOTHING, "headers"
                if name not in self._allowed_headers and not (self._any_header and name != "authorization"):
                    return False, _NOTHING, "headers"
                if name not in asked:
                    asked.append(name)
        out: list[tuple[bytes, bytes]] = [(b"access-control-allow-origin", value.encode("ascii"))]
        out.extend(self._preflight_common)
        if self._any_method:
            out.append((b"access-control-allow-methods", method.encode("latin-1")))
        if asked:
            out.append((b"access-control-allow-headers", ", ".join(asked).encode("latin-1")))
        if private_network and self.allow_private_network:
            out.append((b"access-control-allow-private-network", b"true"))
        return True, tuple(out), None

    def preflight(
        self,
        origin: str | None,
        method: str | None,
        request_headers: str | None = None,
        private_network: bool = False,
    ) -> CORSDecision:
        """The decision for a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``).

        ``request_headers`` is the ``Access-Control-Request-Headers`` value; ``private_network`` whether
        ``Access-Control-Request-Private-Network: true`` was sent. Refused -> ``status`` 403 and no
        ``Access-Control-*`` header at all.

        Example::

            d = policy.preflight("https://app.example.com", "DELETE", "authorization")
            d.status   # 204 (allowed) or 403 (refused)
        """
        allowed, raw, reason = self.preflight_raw(origin, method, request_headers, private_network)
        return CORSDecision(
            allowed=allowed,
            preflight=True,
            headers=_title(raw),
            vary=self.preflight_vary(),
            status=self.preflight_status if allowed else 403,
            reason=reason,
        )


_TITLES = {
    b"access-control-allow-origin": "Access-Control-Allow-Origin",
    b"access-control-allow-credentials": "Access-Control-Allow-Credentials",
    b"access-control-expose-headers": "Access-Control-Expose-Headers",
    b"access-control-allow-methods": "Access-Control-Allow-Methods",
    b"access-control-allow-headers": "Access-Control-Allow-Headers",
    b"access-control-max-age": "Access-Control-Max-Age",
    b"access-control-allow-private-network": "Access-Control-Allow-Private-Network",
}


def _title(raw: RawHeaders) -> tuple[tuple[str, str], ...]:
    return tuple((_TITLES[k], v.decode("latin-1")) for k, v in raw)


def _lookup(request_headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    items = request_headers.items() if isinstance(request_headers, Mapping) else request_headers
    for k, v in items:
        if k.lower() == name:
            return v
    return None


def cors_headers(
    policy: CORSPolicy,
    method: str,
    origin: str | None,
    request_headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> CORSDecision:
    """The CORS decision for one request, for code that is neither ASGI nor WSGI.

    A preflight is an ``OPTIONS`` with an ``Origin`` and ``Access-Control-Request-Method`` (read from
    ``request_headers``); anything else is an actual request. Write ``decision.headers`` onto the response
    and merge ``decision.vary`` into its ``Vary``; for a preflight, answer with ``decision.status`` yourself.

    Example::

        d = bg.cors_headers(policy, "GET", request.headers.get("origin"), request.headers)
        for name, value in d.headers:
            response.headers[name] = value
        response.headers["Vary"] = merge_vary(response.headers.get("Vary"), d.vary)
    """
    if method == "OPTIONS" and origin is not None:
        acrm = _lookup(request_headers, "access-control-request-method")
        if acrm is not None:
            pna = _lookup(request_headers, "access-control-request-private-network")
            return policy.preflight(
                origin,
                acrm,
                _lookup(request_headers, "access-control-request-headers"),
                private_network=(pna or "").strip().lower() == "true",
            )
    return policy.actual(origin)


def cors_route(policy: CORSPolicy) -> Callable[[F], F]:
    """A decorator giving one route its own CORS policy for actual responses (FastAPI, Starlette, Flask, Django).

    The route leaves ``policy`` where the CORS middleware looks when the response starts
    (``scope["state"]["backend_guard.cors"]`` / ``environ["backend_guard.cors"]``); the middleware must be
    installed. Preflights are answered before any route runs, so give the route's path its own preflight rules
    with a path-scoped policy in the middleware's list (``CORSMiddleware(app, policy=[route_policy, default])``).

    Example::

        public = bg.CORSPolicy(allow_origins=["*"], paths=["/public"])

        @app.get("/public/feed")
        @bg.cors_route(public)
        async def feed(): ...
    """
    if not isinstance(policy, CORSPolicy):
        raise ConfigurationError("cors_route needs a CORSPolicy.")

    class _CORSHooks(RouteHooks):
        def before(self, call: RouteCall) -> None:
            call.set_state(STATE_KEY, policy)

    return guard_route(_CORSHooks())
