"""Security response headers: a validated CSP builder, a Permissions-Policy builder, and ``SecureHeaders``.

What must live here (sans-IO): every decision about which header goes on a response. A policy is validated
and compiled once, at construction, into header bytes; per request the shells pass plain values (is the
request secure, its path, this response's nonce if one was used, the headers the app already set) and get
back the merged header list. The ASGI and WSGI middlewares and the route decorator only translate.

Nonces are lazy: :func:`csp_nonce` makes one (144 bits from ``os.urandom``, the CSPRNG behind :mod:`secrets`)
the first time a request asks for it and keeps it on the request (``scope["state"]``, the WSGI environ,
Django's ``request.csp_nonce``); the middleware adds it to the CSP only for responses that asked. Policies
write the nonce as the placeholder source ``'nonce'`` (:attr:`ContentSecurityPolicy.NONCE`). A response that
used no nonce gets the policy without it; a directive left with ``'strict-dynamic'`` and no nonce or hash then
becomes ``'none'``, which is what a CSP3 browser would enforce anyway, written so that every browser and
checker reads it the same way.
"""

from __future__ import annotations

import difflib
import re
import sys
from binascii import b2a_base64 as _b2a_base64
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from os import urandom as _urandom
from typing import Any, Final, TypeVar

from .._cache import BoundedCache
from .._check import check_bool, check_choice, check_int, check_mapping, check_str, check_strs
from .._routes import RouteCall, RouteHooks, guard_route
from ..exceptions import ConfigurationError
from ..request import framework_of

__all__ = [
    "DISCLOSURE_HEADERS",
    "ENVIRON_NONCE_KEY",
    "ENVIRON_OVERRIDE_KEY",
    "NONCE_KEY",
    "OVERRIDE_KEY",
    "ContentSecurityPolicy",
    "PermissionsPolicy",
    "SecureHeaders",
    "csp_nonce",
    "peek_nonce",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Where the lazily made nonce is kept: ``scope["state"][NONCE_KEY]`` (ASGI) and ``environ[NONCE_KEY]`` (WSGI).
NONCE_KEY: Final = "backend_guard.csp_nonce"
ENVIRON_NONCE_KEY: Final = NONCE_KEY
#: Where a per-route :class:`SecureHeaders` that replaces the middleware's policy is kept.
OVERRIDE_KEY: Final = "backend_guard.secure_headers"
ENVIRON_OVERRIDE_KEY: Final = OVERRIDE_KEY

#: Headers that only tell an attacker what software answers; removed from every response by default.
DISCLOSURE_HEADERS: Final = (
    "Server",
    "X-Powered-By",
    "X-AspNet-Version",
    "X-AspNetMvc-Version",
    "X-Generator",
    "X-Runtime",
    "X-Version",
    "X-Backend-Server",
)

_NONCE_RE = re.compile(r"[A-Za-z0-9+/_-]{16,128}={0,2}")
_NONCE_MATCH = _NONCE_RE.fullmatch
_CTL_RE = re.compile(r"[\x00-\x1f\x7f;,]")

# --------------------------------------------------------------------------------------------------------------
# Content-Security-Policy
# --------------------------------------------------------------------------------------------------------------

_FETCH_DIRECTIVES = frozenset(
    {
        "default-src",
        "child-src",
        "connect-src",
        "fenced-frame-src",
        "font-src",
        "frame-src",
        "img-src",
        "manifest-src",
        "media-src",
        "object-src",
        "script-src",
        "script-src-elem",
        "script-src-attr",
        "style-src",
        "style-src-elem",
        "style-src-attr",
        "worker-src",
    }
)
_SOURCE_LIST_DIRECTIVES = _FETCH_DIRECTIVES | {"base-uri", "form-action", "frame-ancestors"}
_BOOLEAN_DIRECTIVES = frozenset({"upgrade-insecure-requests", "block-all-mixed-content"})
_OTHER_DIRECTIVES = frozenset(
    {"sandbox", "report-uri", "report-to", "require-trusted-types-for", "trusted-types", "webrtc"}
)
_ALL_DIRECTIVES = _SOURCE_LIST_DIRECTIVES | _BOOLEAN_DIRECTIVES | _OTHER_DIRECTIVES

_KEYWORDS = frozenset(
    {
        "self",
        "none",
        "unsafe-inline",
        "unsafe-eval",
        "strict-dynamic",
        "unsafe-hashes",
        "report-sample",
        "wasm-unsafe-eval",
        "unsafe-allow-redirects",
        "inline-speculation-rules",
        "trusted-types-eval",
    }
)
_SANDBOX_TOKENS = frozenset(
    {
        "allow-downloads",
        "allow-forms",
        "allow-modals",
        "allow-orientation-lock",
        "allow-pointer-lock",
        "allow-popups",
        "allow-popups-to-escape-sandbox",
        "allow-presentation",
        "allow-same-origin",
        "allow-scripts",
        "allow-storage-access-by-user-activation",
        "allow-top-navigation",
        "allow-top-navigation-by-user-activation",
        "allow-top-navigation-to-custom-protocols",
    }
)
_HASH_RE = re.compile(r"'(?:sha256|sha384|sha512)-[A-Za-z0-9+/_-]+={0,2}'")
_NONCE_SOURCE_RE = re.compile(r"'nonce-[A-Za-z0-9+/_-]+={0,2}'")
_SCHEME_SOURCE_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_HOST_SOURCE_RE = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*://)?"
    r"(?:\*|(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?:[0-9]{1,5}|\*))?"
    r"(?:/[A-Za-z0-9._~!$&()*+=:@%/-]*)?"
)
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
_TT_NAME_RE = re.compile(r"[A-Za-z0-9\-#=_/@.%]+|\*|'none'|'allow-duplicates'")
_URI_RE = re.compile(r"(?:https?://[^\s;,'\"]+|/[^\s;,'\"]*)")

CSPValue = Iterable[str] | str | bool


def _directive_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _as_list(name: str, value: CSPValue) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (bool, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        shown = repr(value) if isinstance(value, (bool, int, float)) or value is None else type(value).__name__
        raise ConfigurationError(f"CSP {name}: expected a list of sources, got {shown}.")
    return tuple(value)


def _check_text(name: str, item: object) -> str:
    if not isinstance(item, str):
        raise ConfigurationError(f"CSP {name}: every source must be a string, got {type(item).__name__}.")
    if not item:
        raise ConfigurationError(f"CSP {name}: empty source.")
    if _CTL_RE.search(item) or any(c.isspace() for c in item):
        raise ConfigurationError(
            f"CSP {name}: {item!r} holds a space, ';', ',' or a control character; give one source per item."
        )
    if not item.isascii():
        raise ConfigurationError(f"CSP {name}: {item!r} is not ASCII (punycode host names).")
    return item


def _check_source(name: str, item: str) -> None:
    lowered = item.lower()
    if lowered in _KEYWORDS or lowered.startswith(("nonce-", "sha256-", "sha384-", "sha512-")):
        raise ConfigurationError(f"CSP {name}: the keyword {item!r} must be quoted: write \"'{item}'\".")
    if item.startswith("'") or item.endswith("'"):
        if item == ContentSecurityPolicy.NONCE:
            return
        if item[1:-1].lower() in _KEYWORDS and len(item) > 2 and item[0] == item[-1] == "'":
            return
        if _HASH_RE.fullmatch(item) or _NONCE_SOURCE_RE.fullmatch(item):
            if lowered.startswith("'nonce-"):
                raise ConfigurationError(
                    f"CSP {name}: a fixed nonce defeats its purpose; use the placeholder "
                    f"{ContentSecurityPolicy.NONCE!r} and backend_guard makes one per response."
                )
            return
        raise ConfigurationError(f"CSP {name}: unknown quoted source {item!r}.")
    if _SCHEME_SOURCE_RE.fullmatch(item) or _HOST_SOURCE_RE.fullmatch(item):
        return
    raise ConfigurationError(f"CSP {name}: {item!r} is not a valid source expression.")


def _is_nonce_or_hash(item: str) -> bool:
    return item == ContentSecurityPolicy.NONCE or bool(_HASH_RE.fullmatch(item))


class ContentSecurityPolicy:
    """A Content-Security-Policy, validated when built; renders the header value with or without a nonce.

    Directives are keyword arguments with ``_`` for ``-`` (``default_src=["'self'"]``) or a mapping given
    first (``{"default-src": ["'self'"]}``); boolean directives take ``True``. The placeholder source
    ``'nonce'`` (:attr:`NONCE`) stands for this response's nonce. Refused with
    :class:`~backend_guard.exceptions.ConfigurationError`: unquoted keywords (``self``, ``none``, ...), fixed
    nonces, spaces, ``;``, ``,`` or control characters inside a source, unknown or duplicate directives, a
    missing ``default-src`` (unless ``allow_missing_default_src=True``), ``'none'`` beside other sources, and
    ``'strict-dynamic'`` without a nonce or hash source in the same directive.

    Example::

        csp = ContentSecurityPolicy(
            default_src=["'self'"],
            script_src=[ContentSecurityPolicy.NONCE, "'strict-dynamic'"],
            object_src=["'none'"],
            base_uri=["'none'"],
        )
        csp.header_value()            # "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'"
        csp.header_value("abc...")    # "... script-src 'nonce-abc...' 'strict-dynamic'; ..."
    """

    #: Placeholder source replaced by this response's nonce (``'nonce-...'``), or dropped when none was used.
    NONCE: Final = "'nonce'"

    __slots__ = ("_directives", "_no_nonce", "_parts")

    def __init__(
        self,
        directives: Mapping[str, CSPValue] | None = None,
        /,
        *,
        allow_missing_default_src: bool = False,
        **kwargs: CSPValue,
    ) -> None:
        check_bool("allow_missing_default_src", allow_missing_default_src)
        merged: dict[str, CSPValue] = {}
        for source in (check_mapping("directives", {} if directives is None else directives), kwargs):
            for raw_name, value in source.items():
                name = _directive_name(check_str("CSP directive name", raw_name))
                if name in merged:
                    raise ConfigurationError(f"CSP directive {name!r} is given twice.")
                merged[name] = value
        self._directives: dict[str, tuple[str, ...]] = {}
        for name, value in merged.items():
            self._directives[name] = self._validate(name, value)
        if not self._directives:
            raise ConfigurationError("A ContentSecurityPolicy needs at least one directive.")
        if "default-src" not in self._directives and not allow_missing_default_src:
            raise ConfigurationError(
                "CSP without default-src leaves every other fetch unrestricted; add default_src "
                "(e.g. [\"'self'\"] or [\"'none'\"]) or pass allow_missing_default_src=True."
            )
        self._no_nonce = self._render(None)
        self._parts = tuple(self._render(None, split=True).split("\x00")) if self.uses_nonce else ()

    @staticmethod
    def _validate(name: str, value: CSPValue) -> tuple[str, ...]:
        if name not in _ALL_DIRECTIVES:
            close = difflib.get_close_matches(name, sorted(_ALL_DIRECTIVES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(f"Unknown CSP directive {name!r}{hint}.")
        if name in _BOOLEAN_DIRECTIVES:
            if value is not True:
                raise ConfigurationError(f"CSP {name} takes True (present) and no sources.")
            return ()
        items = tuple(_check_text(name, item) for item in _as_list(name, value))
        if name in _SOURCE_LIST_DIRECTIVES:
            if not items:
                raise ConfigurationError(f"CSP {name}: an empty source list; write [\"'none'\"] to allow nothing.")
            for item in items:
                _check_source(name, item)
            if len(set(items)) != len(items):
                raise ConfigurationError(f"CSP {name}: a source is listed twice.")
            if "'none'" in items and len(items) > 1:
                raise ConfigurationError(f"CSP {name}: 'none' cannot be combined with other sources.")
            if "'strict-dynamic'" in items and not any(_is_nonce_or_hash(i) for i in items):
                raise ConfigurationError(
                    f"CSP {name}: 'strict-dynamic' needs a nonce ({ContentSecurityPolicy.NONCE!r}) or hash source "
                    "beside it; without one no script may run."
                )
        elif name == "sandbox":
            for item in items:
                if item not in _SANDBOX_TOKENS:
                    raise ConfigurationError(f"CSP sandbox: unknown token {item!r}.")
        elif name == "report-uri":
            if not items:
                raise ConfigurationError("CSP report-uri needs at least one URI.")
            for item in items:
                if not _URI_RE.fullmatch(item):
                    raise ConfigurationError(f"CSP report-uri: {item!r} is not an absolute http(s) URL or a path.")
        elif name == "report-to":
            if len(items) != 1 or not _TOKEN_RE.fullmatch(items[0]):
                raise ConfigurationError("CSP report-to takes exactly one endpoint name (letters, digits, - and _).")
        elif name == "require-trusted-types-for":
            if items != ("'script'",):
                raise ConfigurationError("CSP require-trusted-types-for takes exactly \"'script'\".")
        elif name == "trusted-types":
            for item in items:
                if not _TT_NAME_RE.fullmatch(item):
                    raise ConfigurationError(f"CSP trusted-types: {item!r} is not a policy name.")
        elif name == "webrtc" and items not in (("'allow'",), ("'block'",)):
            raise ConfigurationError("CSP webrtc takes \"'allow'\" or \"'block'\".")
        return items

    @classmethod
    def parse(cls, text: str, *, allow_missing_default_src: bool = False) -> ContentSecurityPolicy:
        """A policy from header text (``"default-src 'self'; img-src https:"``), validated the same way.

        Example::

            csp = ContentSecurityPolicy.parse("default-src 'none'; frame-ancestors 'none'")
        """
        if not isinstance(text, str) or re.search(r"[\x00-\x08\x0a-\x1f\x7f,]", text):
            raise ConfigurationError("CSP text must be one line without ',' or control characters.")
        directives: dict[str, CSPValue] = {}
        for chunk in text.split(";"):
            tokens = chunk.split()
            if not tokens:
                continue
            name = tokens[0].lower()
            if name in directives:
                raise ConfigurationError(f"CSP directive {name!r} is given twice.")
            directives[name] = True if name in _BOOLEAN_DIRECTIVES and len(tokens) == 1 else tokens[1:]
        return cls(directives, allow_missing_default_src=allow_missing_default_src)

    @property
    def directives(self) -> dict[str, tuple[str, ...]]:
        """The directives as ``{name: sources}`` (a copy; boolean directives have no sources)."""
        return dict(self._directives)

    @property
    def uses_nonce(self) -> bool:
        """True when some directive holds the :attr:`NONCE` placeholder."""
        return any(self.NONCE in items for items in self._directives.values())

    @property
    def has_reporting(self) -> bool:
        """True when the policy names a ``report-to`` endpoint or a ``report-uri``."""
        return "report-to" in self._directives or "report-uri" in self._directives

    @property
    def report_to(self) -> str | None:
        """The ``report-to`` endpoint name, if any."""
        items = self._directives.get("report-to")
        return items[0] if items else None

    def _render(self, nonce: str | None, *, split: bool = False) -> str:
        out = []
        for name, items in self._directives.items():
            if not items:
                out.append(name)
                continue
            if self.NONCE in items:
                if split:
                    items = tuple("'nonce-\x00'" if i == self.NONCE else i for i in items)
                elif nonce is None:
                    items = tuple(i for i in items if i != self.NONCE)
                    if ("'strict-dynamic'" in items and not any(_HASH_RE.fullmatch(i) for i in items)) or not items:
                        items = ("'none'",)
                else:
                    items = tuple(f"'nonce-{nonce}'" if i == self.NONCE else i for i in items)
            out.append(name + " " + " ".join(items))
        return "; ".join(out)

    def header_value(self, nonce: str | None = None) -> str:
        """The header value, with ``nonce`` in place of the placeholder (or without it when None).

        Example::

            csp.header_value(csp_nonce(request))
        """
        if nonce is None or not self._parts:
            return self._no_nonce
        if not _NONCE_RE.fullmatch(nonce):
            raise ConfigurationError("A CSP nonce must be 16-128 base64 characters.")
        return nonce.join(self._parts)

    def __str__(self) -> str:
        return self._render(None, split=True).replace("'nonce-\x00'", self.NONCE)

    def __repr__(self) -> str:
        return f"ContentSecurityPolicy.parse({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContentSecurityPolicy):
            return NotImplemented
        return self._directives == other._directives

    def __hash__(self) -> int:
        return hash(tuple(self._directives.items()))


# --------------------------------------------------------------------------------------------------------------
# Permissions-Policy
# --------------------------------------------------------------------------------------------------------------

#: Feature names browsers know (W3C Permissions Policy registry and the features Chromium/Firefox ship).
PERMISSIONS_FEATURES: Final = frozenset(
    {
        "accelerometer",
        "ambient-light-sensor",
        "attribution-reporting",
        "autoplay",
        "bluetooth",
        "browsing-topics",
        "camera",
        "captured-surface-control",
        "ch-ua",
        "compute-pressure",
        "cross-origin-isolated",
        "deferred-fetch",
        "digital-credentials-get",
        "direct-sockets",
        "display-capture",
        "encrypted-media",
        "execution-while-not-rendered",
        "execution-while-out-of-viewport",
        "fullscreen",
        "gamepad",
        "geolocation",
        "gyroscope",
        "hid",
        "identity-credentials-get",
        "idle-detection",
        "keyboard-map",
        "local-fonts",
        "magnetometer",
        "microphone",
        "midi",
        "otp-credentials",
        "payment",
        "picture-in-picture",
        "private-state-token-issuance",
        "private-state-token-redemption",
        "publickey-credentials-create",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "speaker-selection",
        "storage-access",
        "sync-xhr",
        "unload",
        "usb",
        "web-share",
        "window-management",
        "xr-spatial-tracking",
        "clipboard-read",
        "clipboard-write",
    }
)
_ORIGIN_RE = re.compile(
    r"https?://(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]{1,5})?"
)


class PermissionsPolicy:
    """A Permissions-Policy header: feature name -> allowlist, with names and origins validated.

    An allowlist is ``[]`` (disabled everywhere), ``"self"``, ``"*"``, or a list of ``"self"``, ``"src"`` and
    origins (``"https://maps.example"``). Keyword arguments use ``_`` for ``-``; a mapping may come first.

    Example::

        PermissionsPolicy(camera=[], geolocation=["self", "https://maps.example"], fullscreen="self")
        # camera=(), geolocation=(self "https://maps.example"), fullscreen=(self)
    """

    __slots__ = ("_features", "_value")

    def __init__(self, features: Mapping[str, Iterable[str] | str] | None = None, /, **kwargs: Iterable[str] | str):
        merged: dict[str, tuple[str, ...]] = {}
        for source in (check_mapping("features", {} if features is None else features), kwargs):
            for raw_name, allow in source.items():
                name = check_str("Permissions-Policy feature name", raw_name).strip().lower().replace("_", "-")
                if name not in PERMISSIONS_FEATURES:
                    close = difflib.get_close_matches(name, sorted(PERMISSIONS_FEATURES), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise ConfigurationError(f"Unknown Permissions-Policy feature {name!r}{hint}.")
                if name in merged:
                    raise ConfigurationError(f"Permissions-Policy feature {name!r} is given twice.")
                merged[name] = self._allowlist(name, allow)
        if not merged:
            raise ConfigurationError("A PermissionsPolicy needs at least one feature.")
        self._features = merged
        self._value = ", ".join(self._render(n, a) for n, a in merged.items())

    @staticmethod
    def _allowlist(name: str, allow: Iterable[str] | str) -> tuple[str, ...]:
        if isinstance(allow, (bytes, bytearray, Mapping)) or not isinstance(allow, Iterable):
            raise ConfigurationError(
                f"Permissions-Policy {name}: the allowlist must be a list of strings (or [] for none)."
            )
        items = (allow,) if isinstance(allow, str) else tuple(allow)
        for item in items:
            if not isinstance(item, str):
                raise ConfigurationError(f"Permissions-Policy {name}: allowlist items must be strings.")
            if item in ("self", "src", "*"):
                continue
            if item in ("'self'", "'src'", "none", "'none'"):
                raise ConfigurationError(
                    f"Permissions-Policy {name}: write self/src unquoted and [] for none (got {item!r})."
                )
            if not _ORIGIN_RE.fullmatch(item):
                raise ConfigurationError(f"Permissions-Policy {name}: {item!r} is not an http(s) origin.")
        if "*" in items and len(items) > 1:
            raise ConfigurationError(f"Permissions-Policy {name}: '*' cannot be combined with other entries.")
        return items

    @staticmethod
    def _render(name: str, items: tuple[str, ...]) -> str:
        if items == ("*",):
            return f"{name}=*"
        inner = " ".join(i if i in ("self", "src") else f'"{i}"' for i in items)
        return f"{name}=({inner})"

    @property
    def features(self) -> dict[str, tuple[str, ...]]:
        """The features as ``{name: allowlist}`` (a copy)."""
        return dict(self._features)

    def header_value(self) -> str:
        """The header value.

        Example::

            PermissionsPolicy(camera=[]).header_value()   # 'camera=()'
        """
        return self._value

    def __str__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"PermissionsPolicy({self._features!r})"


# --------------------------------------------------------------------------------------------------------------
# SecureHeaders
# --------------------------------------------------------------------------------------------------------------


class _Preset:
    """Marks a keyword left to the preset."""

    def __repr__(self) -> str:
        return "PRESET"


PRESET: Final = _Preset()

_DISABLED_FEATURES = (
    "accelerometer",
    "camera",
    "display-capture",
    "geolocation",
    "gyroscope",
    "hid",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "serial",
    "usb",
)


def _preset_values(preset: str) -> dict[str, Any]:
    if preset == "api":
        return {
            "csp": ContentSecurityPolicy(
                default_src=["'none'"], base_uri=["'none'"], form_action=["'none'"], frame_ancestors=["'none'"]
            ),
            "referrer_policy": "no-referrer",
            # Only meaningful for HTML documents (see docs/headers.md): off for API responses, which a
            # browser never runs as a page (and the CSP above forbids every script and feature anyway).
            "permissions_policy": None,
            "origin_agent_cluster": False,
            "x_permitted_cross_domain_policies": None,
            "x_dns_prefetch_control": None,
            "x_xss_protection": None,
        }
    if preset == "web":
        nonce = ContentSecurityPolicy.NONCE
        return {
            "csp": ContentSecurityPolicy(
                default_src=["'self'"],
                script_src=[nonce, "'strict-dynamic'"],
                style_src=["'self'", nonce],
                img_src=["'self'", "data:"],
                object_src=["'none'"],
                base_uri=["'none'"],
                form_action=["'self'"],
                frame_ancestors=["'none'"],
                upgrade_insecure_requests=True,
            ),
            "referrer_policy": "strict-origin-when-cross-origin",
            "permissions_policy": PermissionsPolicy(dict.fromkeys(_DISABLED_FEATURES, ())),
            "origin_agent_cluster": True,
            "x_permitted_cross_domain_policies": "none",
            "x_dns_prefetch_control": "off",
            "x_xss_protection": "0",
        }
    raise ConfigurationError(f"Unknown SecureHeaders preset {preset!r}: use 'api' or 'web'.")


def _document_values(preset: str) -> dict[str, Any]:
    """What an HTML document response gets for each keyword left to ``preset`` (see docs/headers.md).

    ``web`` is a document policy already. Under ``api`` (the default) a page would get ``default-src 'none';
    form-action 'none'``: no stylesheet, no script, a form that cannot be sent. So HTML documents get the
    ``web`` preset's document headers and a CSP that lets a page use its own origin's styles, scripts, images
    and fonts, inline code only with this response's nonce, and post forms only to its own origin.
    ``Referrer-Policy: no-referrer`` would make a browser send ``Origin: null`` with the page's own form posts,
    which CSRF checks (Django's) refuse: documents get ``strict-origin-when-cross-origin``.
    """
    web = _preset_values("web")
    if preset == "web":
        return web
    nonce = ContentSecurityPolicy.NONCE
    return {
        **web,
        "csp": ContentSecurityPolicy(
            default_src=["'self'"],
            # 'self' and no 'strict-dynamic' (which would make a CSP3 browser ignore 'self'): a page's own script
            # files run, as Django's admin needs; an inline script runs only with this response's nonce.
            script_src=["'self'", nonce],
            style_src=["'self'", nonce],
            img_src=["'self'", "data:"],
            object_src=["'none'"],
            base_uri=["'none'"],
            form_action=["'self'"],
            frame_ancestors=["'none'"],
        ),
    }


_REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)
_CHOICES: dict[str, frozenset[str]] = {
    "X-Frame-Options": frozenset({"DENY", "SAMEORIGIN"}),
    "Cross-Origin-Opener-Policy": frozenset(
        {"same-origin", "same-origin-allow-popups", "noopener-allow-popups", "unsafe-none"}
    ),
    "Cross-Origin-Embedder-Policy": frozenset({"require-corp", "credentialless", "unsafe-none"}),
    "Cross-Origin-Resource-Policy": frozenset({"same-origin", "same-site", "cross-origin"}),
    "X-Permitted-Cross-Domain-Policies": frozenset(
        {"none", "master-only", "by-content-type", "by-ftp-filename", "all"}
    ),
    "X-DNS-Prefetch-Control": frozenset({"on", "off"}),
    "X-XSS-Protection": frozenset({"0", "1", "1; mode=block"}),
}

_RawHeaders = list[tuple[bytes, bytes]]
# A compiled variant: (header pairs, their lower-case names, CSP templates to fill with a nonce)
_Variant = tuple[tuple[tuple[bytes, bytes], ...], frozenset[bytes], tuple[tuple[bytes, tuple[bytes, ...]], ...]]


def _referrer_value(referrer: str) -> str:
    tokens = [t.strip() for t in check_str("referrer_policy", referrer).split(",")]
    if not all(t in _REFERRER_POLICIES for t in tokens):
        raise ConfigurationError(
            f"referrer_policy (Referrer-Policy): {referrer[:80]!r} is not a referrer policy; write one of"
            f" {sorted(_REFERRER_POLICIES)}, or several separated by commas (a browser uses the last it knows)."
        )
    # A browser applies the last token it knows: a repeated token is sent once, where it last appears.
    tokens = list(dict.fromkeys(reversed(tokens)))[::-1]
    return ", ".join(tokens)


def _permissions_value(perms: PermissionsPolicy | str | None) -> str | None:
    if isinstance(perms, str):
        if not perms or re.search(r"[\x00-\x1f\x7f;]", perms):
            raise ConfigurationError(
                "permissions_policy: the Permissions-Policy text is empty or holds a control character or ';'."
            )
        return perms
    if isinstance(perms, PermissionsPolicy):
        return perms.header_value()
    if perms is not None:
        raise ConfigurationError("permissions_policy must be a PermissionsPolicy, its text, or None.")
    return None


_DOCUMENT_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_DOCUMENT_TYPES_RAW: Final = frozenset(t.encode() for t in _DOCUMENT_TYPES)


# Content-Type values already classified (an app sends few distinct ones): a hit is one dict lookup.
_SEEN_TYPES: BoundedCache[bytes, bool] = BoundedCache("headers.content_types", max_entries=64, max_bytes=64 << 10)


def _is_document_raw(content_type: bytes) -> bool:
    found = _SEEN_TYPES.get(content_type)
    if found is None:
        found = content_type.split(b";", 1)[0].strip().lower() in _DOCUMENT_TYPES_RAW
        _SEEN_TYPES.put(content_type, found)
    return found


def is_document_type(content_type: str) -> bool:
    """True when a ``Content-Type`` value names an HTML document (``text/html``, ``application/xhtml+xml``).

    Example::

        >>> is_document_type("text/html; charset=utf-8"), is_document_type("application/json")
        (True, False)
    """
    return content_type.split(";", 1)[0].strip().lower() in _DOCUMENT_TYPES


def _choice(header: str, value: str | None) -> str | None:
    if value is None:
        return None
    if value not in _CHOICES[header]:
        raise ConfigurationError(f"{header}: {value!r} is not one of {sorted(_CHOICES[header])}.")
    return value


def _as_csp(value: ContentSecurityPolicy | str | None, label: str) -> ContentSecurityPolicy | None:
    if value is None or isinstance(value, ContentSecurityPolicy):
        return value
    if isinstance(value, str):
        try:
            return ContentSecurityPolicy.parse(value)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{label}: {exc.detail}") from None
    raise ConfigurationError(f"{label} must be a ContentSecurityPolicy, its text, or None.")


def _endpoint_url(name: str, url: str) -> str:
    if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
        raise ConfigurationError(f"Reporting endpoint name {name!r} must be letters, digits, - and _.")
    if not isinstance(url, str) or _CTL_RE.search(url) or '"' in url or " " in url:
        raise ConfigurationError(f"Reporting endpoint {name!r}: the URL holds a forbidden character.")
    if not (url.startswith("https://") or url.startswith("/")):
        raise ConfigurationError(f"Reporting endpoint {name!r}: browsers only report to https:// URLs (or a path).")
    return url


class SecureHeaders:
    """A compiled set of security response headers; ``preset="api"`` (the default) or ``"web"``.

    Every keyword overrides the preset; ``None`` turns a header off. The header bytes are computed here,
    once; per request only the nonce (when the response used one) and the merge with the app's headers
    remain. Headers the app set itself win, except when this policy is a per-route override
    (``replace=True`` in :meth:`merge_raw`, used by :meth:`route`), which replaces them: never two CSPs.

    - ``api``: ``default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'``,
      ``Referrer-Policy: no-referrer``; none of the headers that only act on HTML documents (below). A
      response whose ``Content-Type`` is ``text/html`` or ``application/xhtml+xml`` (Django's admin, a
      template) gets a document policy instead, decided when the response starts: ``default-src 'self';
      script-src 'self' 'nonce-…'; style-src 'self' 'nonce-…'; img-src 'self' data:; object-src 'none';
      base-uri 'none'; form-action 'self'; frame-ancestors 'none'`` (the nonce only when the response used
      one), ``Referrer-Policy: strict-origin-when-cross-origin`` and the ``web`` preset's document headers.
      ``document_csp=`` sets that CSP; an explicit ``csp=`` is kept for documents too.
    - ``web``: a strict nonce CSP (``script-src 'nonce-…' 'strict-dynamic'``, ``object-src 'none'``,
      ``base-uri 'none'``, ``frame-ancestors 'none'``, ``upgrade-insecure-requests``),
      ``Referrer-Policy: strict-origin-when-cross-origin``, and for documents a Permissions-Policy disabling
      powerful features, ``Origin-Agent-Cluster: ?1``, ``X-Permitted-Cross-Domain-Policies: none``,
      ``X-DNS-Prefetch-Control: off``, ``X-XSS-Protection: 0`` (each can be turned on for ``api`` too).
    - both: HSTS (two years, subdomains; sent only on HTTPS as resolved through trusted proxies unless
      ``force_hsts``), ``nosniff``, ``X-Frame-Options: DENY``, COOP and CORP ``same-origin``, and
      :data:`DISCLOSURE_HEADERS` removed.

    Example::

        policy = SecureHeaders(
            preset="web",
            no_store_paths=["/account", "/auth"],
            reporting_endpoints={"csp": "https://example.com/csp-reports"},
            csp_report_only=ContentSecurityPolicy(default_src=["'self'"], report_to="csp"),
        )
        policy.headers_for(secure=True, path="/account/keys")   # [("Content-Security-Policy", ...), ...]

    A ``304 Not Modified`` (``status=304``) gets neither profile: a browser copies a 304's headers onto the
    response it cached, so it carries only the headers every response gets alike (HSTS, ``nosniff``...), never
    a header whose value depends on the kind of response (the CSP, ``Referrer-Policy``, the document headers)
    nor a CSP holding a nonce; the cached page keeps the headers it was served with.
    """

    #: Kinds of response (:meth:`kind_raw`): every response but the two below, an HTML document, a 304.
    OTHER: Final = 0
    DOCUMENT: Final = 1
    NOT_MODIFIED: Final = 2

    def __init__(
        self,
        preset: str = "api",
        *,
        csp: ContentSecurityPolicy | str | _Preset | None = PRESET,
        document_csp: ContentSecurityPolicy | str | _Preset | None = PRESET,
        csp_report_only: ContentSecurityPolicy | str | None = None,
        hsts: bool = True,
        hsts_max_age: int = 63_072_000,
        hsts_include_subdomains: bool = True,
        hsts_preload: bool = False,
        force_hsts: bool = False,
        x_content_type_options: bool = True,
        x_frame_options: str | None = "DENY",
        referrer_policy: str | _Preset | None = PRESET,
        permissions_policy: PermissionsPolicy | str | _Preset | None = PRESET,
        cross_origin_opener_policy: str | None = "same-origin",
        cross_origin_embedder_policy: str | None = None,
        cross_origin_resource_policy: str | None = "same-origin",
        origin_agent_cluster: bool | _Preset = PRESET,
        x_permitted_cross_domain_policies: str | _Preset | None = PRESET,
        x_dns_prefetch_control: str | _Preset | None = PRESET,
        x_xss_protection: str | _Preset | None = PRESET,
        no_store_paths: Iterable[str] = (),
        reporting_endpoints: Mapping[str, str] | None = None,
        remove_headers: Iterable[str] = DISCLOSURE_HEADERS,
    ) -> None:
        defaults = _preset_values(check_choice("preset", preset, ("api", "web")))
        for flag_name, flag in (
            ("hsts", hsts),
            ("hsts_include_subdomains", hsts_include_subdomains),
            ("hsts_preload", hsts_preload),
            ("force_hsts", force_hsts),
            ("x_content_type_options", x_content_type_options),
            ("origin_agent_cluster", origin_agent_cluster),
        ):
            if not isinstance(flag, _Preset):
                check_bool(flag_name, flag)
        check_int("hsts_max_age", hsts_max_age, min=0)
        for arg, header, choice in (
            ("x_frame_options", "X-Frame-Options", x_frame_options),
            ("cross_origin_opener_policy", "Cross-Origin-Opener-Policy", cross_origin_opener_policy),
            ("cross_origin_embedder_policy", "Cross-Origin-Embedder-Policy", cross_origin_embedder_policy),
            ("cross_origin_resource_policy", "Cross-Origin-Resource-Policy", cross_origin_resource_policy),
            (
                "x_permitted_cross_domain_policies",
                "X-Permitted-Cross-Domain-Policies",
                x_permitted_cross_domain_policies,
            ),
            ("x_dns_prefetch_control", "X-DNS-Prefetch-Control", x_dns_prefetch_control),
            ("x_xss_protection", "X-XSS-Protection", x_xss_protection),
        ):
            if choice is not None and not isinstance(choice, _Preset):
                check_choice(f"{arg} ({header})", choice, _CHOICES[header])
        no_store_paths = check_strs("no_store_paths", no_store_paths)
        remove_headers = check_strs("remove_headers", remove_headers)
        self.preset = preset
        documents = _document_values(preset)

        def chosen(value: Any, name: str) -> tuple[Any, Any]:
            # (for API responses, for HTML documents): a keyword left to the preset follows the response kind
            return (defaults[name], documents[name]) if isinstance(value, _Preset) else (value, value)

        agent_cluster = chosen(origin_agent_cluster, "origin_agent_cluster")
        cross_domain = chosen(x_permitted_cross_domain_policies, "x_permitted_cross_domain_policies")
        dns_prefetch = chosen(x_dns_prefetch_control, "x_dns_prefetch_control")
        xss = chosen(x_xss_protection, "x_xss_protection")
        referrer = chosen(referrer_policy, "referrer_policy")
        perms = chosen(permissions_policy, "permissions_policy")
        self.csp = _as_csp(defaults["csp"] if isinstance(csp, _Preset) else csp, "csp")
        #: The CSP of HTML documents (``text/html``, ``application/xhtml+xml``); the ``api`` preset's lets a page
        #: load its own styles, scripts and images and post its forms to its own origin.
        self.document_csp = (
            _as_csp(document_csp, "document_csp")
            if not isinstance(document_csp, _Preset)
            else (documents["csp"] if isinstance(csp, _Preset) else self.csp)
        )
        self.csp_report_only = _as_csp(csp_report_only, "csp_report_only")
        if self.csp_report_only is not None and not self.csp_report_only.has_reporting:
            raise ConfigurationError(
                "csp_report_only without report-to or report-uri reports nowhere; add report_to=... "
                "(with reporting_endpoints) or report_uri=[...]."
            )
        endpoints = {
            name: _endpoint_url(name, url)
            for name, url in check_mapping(
                "reporting_endpoints", {} if reporting_endpoints is None else reporting_endpoints
            ).items()
        }
        for policy in (self.csp, self.document_csp, self.csp_report_only):
            target = policy.report_to if policy is not None else None
            if target is not None and target not in endpoints:
                raise ConfigurationError(
                    f"CSP report-to {target!r} names no endpoint in reporting_endpoints; add it there."
                )

        profiles: list[tuple[ContentSecurityPolicy | None, ContentSecurityPolicy | None, list[tuple[str, str]]]] = []
        for kind in (0, 1):  # 0: every response but HTML documents; 1: HTML documents
            headers: list[tuple[str, str]] = []
            if x_content_type_options:
                headers.append(("X-Content-Type-Options", "nosniff"))
            if (value := _choice("X-Frame-Options", x_frame_options)) is not None:
                headers.append(("X-Frame-Options", value))
            if referrer[kind] is not None:
                headers.append(("Referrer-Policy", _referrer_value(referrer[kind])))
            if (perms_value := _permissions_value(perms[kind])) is not None:
                headers.append(("Permissions-Policy", perms_value))
            for header, value in (
                ("Cross-Origin-Opener-Policy", cross_origin_opener_policy),
                ("Cross-Origin-Embedder-Policy", cross_origin_embedder_policy),
                ("Cross-Origin-Resource-Policy", cross_origin_resource_policy),
                ("X-Permitted-Cross-Domain-Policies", cross_domain[kind]),
                ("X-DNS-Prefetch-Control", dns_prefetch[kind]),
                ("X-XSS-Protection", xss[kind]),
            ):
                if (checked := _choice(header, value)) is not None:
                    headers.append((header, checked))
            if agent_cluster[kind]:
                headers.append(("Origin-Agent-Cluster", "?1"))
            if endpoints:
                headers.append(("Reporting-Endpoints", ", ".join(f'{n}="{u}"' for n, u in endpoints.items())))
            profiles.append((self.document_csp if kind else self.csp, self.csp_report_only, headers))
        #: True when HTML documents get other headers than the rest (the ``api`` preset's keywords left to it).
        self.splits_documents = profiles[0] != profiles[1]

        # A 304 Not Modified: a browser copies its headers, CSP included, onto the response it has cached, and a
        # 304 has no Content-Type to say which profile that response got. So it carries only what every response
        # gets alike: no header whose value differs between the two profiles, no CSP that holds a nonce (the
        # cached page's nonce is not this response's).
        def unchanging(policy: ContentSecurityPolicy | None) -> ContentSecurityPolicy | None:
            return None if policy is None or policy.uses_nonce else policy

        profiles.append(
            (
                unchanging(self.csp) if self.csp == self.document_csp else None,
                unchanging(self.csp_report_only),
                [h for h in profiles[0][2] if h in profiles[1][2]],
            )
        )
        #: The CSP and CSP-Report-Only of each response kind (:attr:`OTHER`, :attr:`DOCUMENT`, :attr:`NOT_MODIFIED`).
        self._kind_csps = tuple((enforced, report_only) for enforced, report_only, _ in profiles)

        hsts_value: str | None = None
        if hsts:
            if hsts_preload and (hsts_max_age < 31_536_000 or not hsts_include_subdomains):
                raise ConfigurationError("hsts_preload needs hsts_max_age >= 31536000 and hsts_include_subdomains.")
            hsts_value = f"max-age={hsts_max_age}"
            if hsts_include_subdomains:
                hsts_value += "; includeSubDomains"
            if hsts_preload:
                hsts_value += "; preload"
        self.force_hsts = force_hsts
        #: True when the per-request "is it HTTPS?" answer changes the headers (HSTS on and not forced).
        self.needs_scheme = hsts_value is not None and not force_hsts

        prefixes = []
        for prefix in no_store_paths:
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                raise ConfigurationError(f"no_store_paths: {prefix!r} must be a path starting with '/'.")
            prefixes.append(prefix.rstrip("/"))
        self._no_store_exact = frozenset(p or "/" for p in prefixes)
        self._no_store_prefixes = tuple(p + "/" for p in prefixes)
        #: True when the request path changes the headers (``no_store_paths`` is set).
        self.depends_on_path = bool(prefixes)

        self.removed = frozenset(h.strip().lower() for h in remove_headers)
        self._removed_raw = frozenset(h.encode("latin-1") for h in self.removed)

        # Every combination of (kind of response, secure, no-store, nonce used) compiled now: per request one
        # index, 8 * kind + 4 * secure + 2 * no-store + nonce used.
        self._variants: list[_Variant] = []
        self._touched: list[frozenset[bytes]] = []  # names whose presence leaves the fast path
        self._str_variants: list[tuple[tuple[str, str], ...]] = []
        for kind, (enforced, report_only, headers) in enumerate(profiles):
            if kind == self.DOCUMENT and not self.splits_documents:  # documents get the same: the same variants
                self._variants += self._variants
                self._touched += self._touched
                self._str_variants += self._str_variants
                continue
            csp_policies = [
                ("Content-Security-Policy", enforced),
                ("Content-Security-Policy-Report-Only", report_only),
            ]
            for index in range(8):
                secure, no_store, with_nonce = bool(index & 4), bool(index & 2), bool(index & 1)
                pairs: list[tuple[str, str]] = []
                templates: list[tuple[bytes, tuple[bytes, ...]]] = []
                for name, policy in csp_policies:
                    if policy is None:
                        continue
                    if with_nonce and policy.uses_nonce:
                        templates.append((name.lower().encode(), tuple(p.encode() for p in policy._parts)))
                    else:
                        pairs.append((name, policy.header_value()))
                if (secure or force_hsts) and hsts_value is not None:
                    pairs.append(("Strict-Transport-Security", hsts_value))
                pairs.extend(headers)
                if no_store:
                    pairs.append(("Cache-Control", "no-store"))
                raw = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs)
                names = frozenset(k for k, _ in raw) | frozenset(t[0] for t in templates)
                self._variants.append((raw, names, tuple(templates)))
                self._touched.append(names | self._removed_raw)
                self._str_variants.append(tuple(pairs))
        #: Lower-case names of every header this policy may add.
        self.header_names = frozenset(n.decode() for i in (4, 5, 12, 13) for n in self._variants[i][1])
        if self._no_store_prefixes:
            self.header_names |= {"cache-control"}

    # -- per request ---------------------------------------------------------------------------------------

    def document_raw(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """True when ASGI response ``headers`` declare an HTML document (``Content-Type: text/html`` or
        ``application/xhtml+xml``) and this policy gives documents other headers (:attr:`splits_documents`).

        Example::

            SecureHeaders().document_raw([(b"content-type", b"text/html; charset=utf-8")])   # True
        """
        if self.splits_documents:
            for name, value in headers:
                if len(name) == 12 and name.lower() == b"content-type":
                    return _is_document_raw(value)
        return False

    def kind_raw(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> int:
        """The kind of an ASGI response for this policy: :attr:`NOT_MODIFIED` for a 304, :attr:`DOCUMENT` when
        :meth:`document_raw` says so, else :attr:`OTHER`.

        Example::

            policy.kind_raw(304, [])                                             # SecureHeaders.NOT_MODIFIED
            policy.kind_raw(200, [(b"content-type", b"text/html")])              # SecureHeaders.DOCUMENT
        """
        if status == 304:
            return self.NOT_MODIFIED
        return self.DOCUMENT if self.document_raw(headers) else self.OTHER

    def added_raw(
        self,
        *,
        secure: bool,
        path: str,
        nonce: str | None = None,
        document: bool = False,
        kind: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """The ASGI header pairs this policy adds to a response that holds none of the names it touches
        (:attr:`header_names` and :attr:`removed`); ``kind`` as :meth:`kind_raw` answers (or ``document`` as
        :meth:`document_raw` does).

        Example::

            headers = message["headers"]
            policy.added_raw(secure=True, path="/", kind=policy.kind_raw(message["status"], headers))
        """
        if nonce is not None and not _NONCE_MATCH(nonce):
            nonce = None
        if kind is None:
            kind = self.DOCUMENT if document and self.splits_documents else self.OTHER
        pairs, _, templates = self._variants[self._index(secure, path, nonce, kind)]
        out = list(pairs)
        if templates:
            encoded = nonce.encode() if nonce is not None else b""
            out.extend((name, encoded.join(parts)) for name, parts in templates)
        return out

    def _index(self, secure: bool, path: str, nonce: str | None, kind: int = 0) -> int:
        index = 8 * kind + (4 if secure else 0)
        if self._no_store_prefixes and (path in self._no_store_exact or path.startswith(self._no_store_prefixes)):
            index |= 2
        if nonce is not None:
            index |= 1
        return index

    def merge_raw(
        self,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        secure: bool,
        path: str,
        nonce: str | None = None,
        replace: bool = False,
        status: int = 200,
    ) -> _RawHeaders:
        """ASGI header pairs with this policy merged in: disclosure headers dropped, ours added.

        The app's own headers win (ours are only added when missing), unless ``replace`` (a per-route override)
        drops the app's headers of the same names first. A malformed ``nonce`` is ignored, never echoed.
        ``status``: the response's; a 304 gets only the headers every response gets alike.

        Example::

            message["headers"] = policy.merge_raw(message.get("headers", []), secure=True, path="/",
                                                  status=message["status"])
        """
        # the hot path of every response: one content-type check, one variant lookup, one set of names, one
        # disjointness test
        index = 8 * self.kind_raw(status, headers) + (4 if secure else 0)
        if self._no_store_prefixes and (path in self._no_store_exact or path.startswith(self._no_store_prefixes)):
            index |= 2
        if nonce is not None:
            if _NONCE_MATCH(nonce):
                index |= 1
            else:
                nonce = None
        variant = self._variants[index]
        pairs, _, templates = variant
        present = {k.lower() for k, _ in headers}
        if present.isdisjoint(self._touched[index]):
            if not templates:
                return [*headers, *pairs]
            encoded = nonce.encode() if nonce is not None else b""
            fast = [*headers, *pairs]
            for name, parts in templates:
                fast.append((name, encoded.join(parts)))
            return fast
        return self._merge_over(headers, present, variant, nonce, replace)

    def _merge_over(
        self,
        headers: Iterable[tuple[bytes, bytes]],
        present: set[bytes],
        variant: _Variant,
        nonce: str | None,
        replace: bool,
    ) -> _RawHeaders:
        """The slow path of :meth:`merge_raw`: the app set (or must lose) some of the headers this policy writes."""
        pairs, names, templates = variant
        out = list(headers)
        if not present.isdisjoint(self._removed_raw):
            out = [h for h in out if h[0].lower() not in self._removed_raw]
        if replace:
            if not present.isdisjoint(names):
                out = [h for h in out if h[0].lower() not in names]
            out.extend(pairs)
            present = set()
        elif present.isdisjoint(names):
            out.extend(pairs)
        else:
            out.extend(p for p in pairs if p[0] not in present)
        if templates:
            encoded = nonce.encode() if nonce is not None else b""
            for name, parts in templates:
                if name not in present:
                    out.append((name, encoded.join(parts)))
        return out

    def merge_str(
        self,
        headers: Iterable[tuple[str, str]],
        *,
        secure: bool,
        path: str,
        nonce: str | None = None,
        replace: bool = False,
        status: int = 200,
    ) -> list[tuple[str, str]]:
        """WSGI header pairs with this policy merged in (same rules as :meth:`merge_raw`).

        Example::

            start_response(status, policy.merge_str(headers, secure=False, path="/", status=int(status[:3])))
        """
        if nonce is not None and not _NONCE_RE.fullmatch(nonce):
            nonce = None
        content_type = None
        if self.splits_documents:
            for name, value in headers:
                if name.lower() == "content-type":
                    content_type = value
                    break
        ours = self.headers_for(secure=secure, path=path, nonce=nonce, content_type=content_type, status=status)
        ours_lower = {k.lower() for k, _ in ours}
        out = [h for h in headers if h[0].lower() not in self.removed]
        if replace:
            out = [h for h in out if h[0].lower() not in ours_lower]
            out.extend(ours)
            return out
        present = {k.lower() for k, _ in out}
        out.extend(h for h in ours if h[0].lower() not in present)
        return out

    def headers_for(
        self,
        *,
        secure: bool,
        path: str = "/",
        nonce: str | None = None,
        existing: Iterable[str] = (),
        content_type: str | None = None,
        status: int = 200,
    ) -> list[tuple[str, str]]:
        """The headers to add to one response (a standalone helper for any framework).

        ``secure``: the request came over HTTPS (as resolved through your trusted proxies); ``path`` decides
        ``Cache-Control: no-store``; ``nonce`` is this response's nonce if it used one; headers named in
        ``existing`` (the app's own, case-insensitive) are left out; ``content_type`` is the response's
        ``Content-Type``: an HTML document gets :attr:`document_csp` and the document headers; ``status``: a 304
        gets only the headers every response gets alike. Names in :attr:`removed` should be taken off the
        response.

        Example::

            for name, value in policy.headers_for(secure=request.is_secure(), path=request.path,
                                                  existing=response.headers.keys(),
                                                  content_type=response.get("Content-Type"),
                                                  status=response.status_code):
                response[name] = value
        """
        if nonce is not None and not _NONCE_RE.fullmatch(nonce):
            raise ConfigurationError("A CSP nonce must be 16-128 base64 characters.")
        if status == 304:
            kind = self.NOT_MODIFIED
        elif self.splits_documents and content_type is not None and is_document_type(content_type):
            kind = self.DOCUMENT
        else:
            kind = self.OTHER
        index = self._index(secure, path, nonce, kind)
        skip = {e.lower() for e in existing}
        out = [(k, v) for k, v in self._str_variants[index] if k.lower() not in skip]
        if nonce is not None:
            enforced, report_only = self._kind_csps[kind]
            for name, policy in (
                ("Content-Security-Policy", enforced),
                ("Content-Security-Policy-Report-Only", report_only),
            ):
                if policy is not None and policy.uses_nonce and name.lower() not in skip:
                    out.insert(0 if name == "Content-Security-Policy" else 1, (name, policy.header_value(nonce)))
        return out

    def route(self) -> Callable[[F], F]:
        """A decorator that gives one route this policy instead of the middleware's (replacing, never adding).

        Works on FastAPI, Starlette, Flask and Django routes, sync or async. With the middleware installed,
        it replaces the middleware's policy for that response; without it, the route's response gets this
        policy's headers directly.

        Example::

            docs_policy = SecureHeaders(preset="web", csp=ContentSecurityPolicy(default_src=["'self'"],
                                                                                 script_src=["'self'", "https://cdn.example"]))

            @app.get("/docs")
            @docs_policy.route()
            async def docs(): ...
        """
        return guard_route(_OverrideHooks(self))

    def __repr__(self) -> str:
        return f"SecureHeaders(preset={self.preset!r}, headers={sorted(self.header_names)!r})"


# --------------------------------------------------------------------------------------------------------------
# Nonces
# --------------------------------------------------------------------------------------------------------------


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _new_nonce() -> str:
    # What secrets.token_urlsafe(18) returns (144 bits from os.urandom, 24 URL-safe base64 characters, no
    # padding since 18 bytes encode exactly; a valid CSP base64-value), made with fewer intermediate steps.
    return _b2a_base64(_urandom(18), newline=False).translate(_URLSAFE).decode("ascii")


def _scope_state(scope: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    return state


def _nonce_in(store: MutableMapping[str, Any]) -> str:
    nonce = store.get(NONCE_KEY)
    if not isinstance(nonce, str):
        nonce = store[NONCE_KEY] = _new_nonce()
    return nonce


def peek_nonce(carrier: Any) -> str | None:
    """This request's nonce if one was made already (never makes one): ASGI scope, WSGI environ or request.

    Example::

        peek_nonce(scope)   # None until something called csp_nonce(...)
    """
    if isinstance(carrier, Mapping):
        if "type" in carrier and "REQUEST_METHOD" not in carrier:
            state = carrier.get("state")
            value = state.get(NONCE_KEY) if state else None
        else:
            value = carrier.get(NONCE_KEY)
        return value if isinstance(value, str) else None
    scope = getattr(carrier, "scope", None)
    if isinstance(scope, Mapping):
        return peek_nonce(scope)
    environ = getattr(carrier, "environ", None)
    if environ is None:
        environ = getattr(carrier, "META", None)
    if isinstance(environ, Mapping):
        return peek_nonce(environ)
    return None


def csp_nonce(request: Any = None) -> str:
    """This response's CSP nonce, made on first use (144 bits from ``os.urandom``) and then reused.

    Accepts a Starlette/FastAPI request, a Django request, an ASGI scope or a WSGI environ; in Flask call it
    with no argument inside a request (it is also set as ``g.csp_nonce``). Django's request also gets it as
    ``request.csp_nonce``. The security-headers middleware adds it to the CSP of this response only.

    Example::

        @app.get("/")
        async def home(request: Request):
            return templates.TemplateResponse(request, "home.html", {"nonce": bg.csp_nonce(request)})
    """
    if request is None:
        flask = sys.modules.get("flask")
        if flask is None or not flask.has_request_context():
            raise RuntimeError("csp_nonce() without a request works only inside a Flask request.")
        nonce = _nonce_in(flask.request.environ)
        flask.g.csp_nonce = nonce
        return nonce
    if type(request) is dict and "type" in request and "REQUEST_METHOD" not in request:  # an ASGI scope (hot)
        state = request.get("state")
        if state is None:
            state = request["state"] = {}
        found = state.get(NONCE_KEY)
        if isinstance(found, str):
            return found
        made = state[NONCE_KEY] = _new_nonce()
        return made
    if isinstance(request, MutableMapping):
        if "type" in request and "REQUEST_METHOD" not in request:
            return _nonce_in(_scope_state(request))
        return _nonce_in(request)

    kind = framework_of(request)
    if kind == "starlette":
        return _nonce_in(_scope_state(request.scope))
    if kind == "flask":
        nonce = _nonce_in(request.environ)
        flask = sys.modules.get("flask")
        if flask is not None and flask.has_request_context():
            flask.g.csp_nonce = nonce
        return nonce
    if kind == "django":
        scope = getattr(request, "scope", None)
        nonce = _nonce_in(_scope_state(scope) if isinstance(scope, MutableMapping) else request.META)
        request.csp_nonce = nonce
        return nonce
    raise TypeError(f"csp_nonce() needs a request, an ASGI scope or a WSGI environ, not {type(request).__name__}.")


# --------------------------------------------------------------------------------------------------------------
# Per-route override
# --------------------------------------------------------------------------------------------------------------


class _OverrideHooks(RouteHooks):
    """Marks the request for the middleware and puts the override's headers on the route's response."""

    def __init__(self, policy: SecureHeaders) -> None:
        self.policy = policy

    def before(self, call: RouteCall) -> None:
        call.set_state(OVERRIDE_KEY, self.policy)

    def after(self, call: RouteCall, status: int) -> list[tuple[str, str]]:
        return self.policy.headers_for(
            secure=call.view.secure or self.policy.force_hsts,
            path=call.view.path,
            nonce=peek_nonce(call.request),
            status=status,
        )
