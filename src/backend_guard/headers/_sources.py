"""The grammar of a Content-Security-Policy: which directives exist and what each one may hold.

This module owns the rules a CSP is validated against, and nothing else: the directive names (fetch,
source-list, boolean and the others), the keywords, the shapes of a source expression (quoted keyword, hash,
scheme, host), the sandbox tokens, and one named check per kind of directive. :func:`validate_directive` is
the only entry point :class:`~backend_guard.headers.ContentSecurityPolicy` needs: it answers a directive's
sources as a tuple, or raises :class:`~backend_guard.exceptions.ConfigurationError` saying what is wrong.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from ..exceptions import ConfigurationError

#: The placeholder source a policy writes for this response's nonce (``ContentSecurityPolicy.NONCE``).
NONCE_SOURCE: Final = "'nonce'"

#: A well-formed nonce (the base64 characters of a CSP ``base64-value``, 16 to 128 of them).
NONCE_RE: Final = re.compile(r"[A-Za-z0-9+/_-]{16,128}={0,2}")
#: Characters no header value may hold unescaped: controls and the CSP and list separators.
CTL_RE: Final = re.compile(r"[\x00-\x1f\x7f;,]")
#: A reporting endpoint name (``report-to``, ``Reporting-Endpoints``).
TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
#: A hash source (``'sha256-...'``): with a nonce, the only sources ``'strict-dynamic'`` trusts.
HASH_RE: Final = re.compile(r"'(?:sha256|sha384|sha512)-[A-Za-z0-9+/_-]+={0,2}'")

FETCH_DIRECTIVES: Final = frozenset(
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
SOURCE_LIST_DIRECTIVES: Final = FETCH_DIRECTIVES | {"base-uri", "form-action", "frame-ancestors"}
BOOLEAN_DIRECTIVES: Final = frozenset({"upgrade-insecure-requests", "block-all-mixed-content"})
OTHER_DIRECTIVES: Final = frozenset(
    {"sandbox", "report-uri", "report-to", "require-trusted-types-for", "trusted-types", "webrtc"}
)
ALL_DIRECTIVES: Final = SOURCE_LIST_DIRECTIVES | BOOLEAN_DIRECTIVES | OTHER_DIRECTIVES

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
_NONCE_SOURCE_RE = re.compile(r"'nonce-[A-Za-z0-9+/_-]+={0,2}'")
_SCHEME_SOURCE_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_HOST_SOURCE_RE = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*://)?"
    r"(?:\*|(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?:[0-9]{1,5}|\*))?"
    r"(?:/[A-Za-z0-9._~!$&()*+=:@%/-]*)?"
)
_TT_NAME_RE = re.compile(r"[A-Za-z0-9\-#=_/@.%]+|\*|'none'|'allow-duplicates'")
_URI_RE = re.compile(r"(?:https?://[^\s;,'\"]+|/[^\s;,'\"]*)")

#: What a directive may be given: a list of sources, one source, or True for a boolean directive.
CSPValue = Iterable[str] | str | bool
Sources = tuple[str, ...]


def directive_name(name: str) -> str:
    """A directive's name as the header spells it (``script_src`` -> ``script-src``)."""
    return name.strip().lower().replace("_", "-")


def is_nonce_or_hash(item: str) -> bool:
    """True for the nonce placeholder or a hash source: what ``'strict-dynamic'`` needs beside it."""
    return item == NONCE_SOURCE or bool(HASH_RE.fullmatch(item))


def _shown(value: object) -> str:
    """A refused value as an error message shows it: a scalar as written, anything else by its type."""
    return repr(value) if isinstance(value, (bool, int, float)) or value is None else type(value).__name__


def _as_list(name: str, value: CSPValue) -> Sources:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (bool, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"CSP {name}: expected a list of sources, got {_shown(value)}.")
    return tuple(value)


def _splits(item: str) -> bool:
    """True when ``item`` holds a space, a separator or a control character: more than one source."""
    return bool(CTL_RE.search(item)) or any(c.isspace() for c in item)


def _check_text(name: str, item: object) -> str:
    if not isinstance(item, str):
        raise ConfigurationError(f"CSP {name}: every source must be a string, got {type(item).__name__}.")
    if not item:
        raise ConfigurationError(f"CSP {name}: empty source.")
    if _splits(item):
        raise ConfigurationError(
            f"CSP {name}: {item!r} holds a space, ';', ',' or a control character; give one source per item."
        )
    if not item.isascii():
        raise ConfigurationError(f"CSP {name}: {item!r} is not ASCII (punycode host names).")
    return item


# -- source expressions ------------------------------------------------------------------------------------------


def _is_hash_or_nonce(item: str) -> bool:
    return bool(HASH_RE.fullmatch(item) or _NONCE_SOURCE_RE.fullmatch(item))


def _is_quoted_keyword(item: str) -> bool:
    return item[1:-1].lower() in _KEYWORDS and len(item) > 2 and item[0] == item[-1] == "'"


def _is_bare_keyword(item: str) -> bool:
    """True for a keyword, nonce or hash written without its quotes (``self``, ``sha256-...``)."""
    lowered = item.lower()
    return lowered in _KEYWORDS or lowered.startswith(("nonce-", "sha256-", "sha384-", "sha512-"))


def _is_scheme_or_host(item: str) -> bool:
    return bool(_SCHEME_SOURCE_RE.fullmatch(item) or _HOST_SOURCE_RE.fullmatch(item))


def _check_quoted(name: str, item: str) -> None:
    """A source written in quotes: the nonce placeholder, a keyword, or a hash (never a fixed nonce)."""
    if item == NONCE_SOURCE or _is_quoted_keyword(item):
        return
    if _is_hash_or_nonce(item):
        if item.lower().startswith("'nonce-"):
            raise ConfigurationError(
                f"CSP {name}: a fixed nonce defeats its purpose; use the placeholder "
                f"{NONCE_SOURCE!r} and backend_guard makes one per response."
            )
        return
    raise ConfigurationError(f"CSP {name}: unknown quoted source {item!r}.")


def _check_source(name: str, item: str) -> None:
    if _is_bare_keyword(item):
        raise ConfigurationError(f"CSP {name}: the keyword {item!r} must be quoted: write \"'{item}'\".")
    if item.startswith("'") or item.endswith("'"):  # a quote at either end: meant as a quoted source
        _check_quoted(name, item)
    elif not _is_scheme_or_host(item):
        raise ConfigurationError(f"CSP {name}: {item!r} is not a valid source expression.")


# -- one check per kind of directive -----------------------------------------------------------------------------


def _check_once_each(name: str, items: Sources) -> None:
    if len(set(items)) != len(items):
        raise ConfigurationError(f"CSP {name}: a source is listed twice.")


def _check_none_alone(name: str, items: Sources) -> None:
    if "'none'" in items and len(items) > 1:
        raise ConfigurationError(f"CSP {name}: 'none' cannot be combined with other sources.")


def _check_strict_dynamic(name: str, items: Sources) -> None:
    """``'strict-dynamic'`` trusts only what a nonce or hash admits: alone, it lets no script run."""
    if "'strict-dynamic'" in items and not any(is_nonce_or_hash(i) for i in items):
        raise ConfigurationError(
            f"CSP {name}: 'strict-dynamic' needs a nonce ({NONCE_SOURCE!r}) or hash source "
            "beside it; without one no script may run."
        )


def _check_source_list(name: str, items: Sources) -> None:
    """``default-src``, ``script-src``, ``frame-ancestors``...: valid sources, each once, sensibly combined."""
    if not items:
        raise ConfigurationError(f"CSP {name}: an empty source list; write [\"'none'\"] to allow nothing.")
    for item in items:
        _check_source(name, item)
    _check_once_each(name, items)
    _check_none_alone(name, items)
    _check_strict_dynamic(name, items)


def _check_sandbox(name: str, items: Sources) -> None:
    for item in items:
        if item not in _SANDBOX_TOKENS:
            raise ConfigurationError(f"CSP sandbox: unknown token {item!r}.")


def _check_report_uri(name: str, items: Sources) -> None:
    if not items:
        raise ConfigurationError("CSP report-uri needs at least one URI.")
    for item in items:
        if not _URI_RE.fullmatch(item):
            raise ConfigurationError(f"CSP report-uri: {item!r} is not an absolute http(s) URL or a path.")


def _check_report_to(name: str, items: Sources) -> None:
    if len(items) != 1 or not TOKEN_RE.fullmatch(items[0]):
        raise ConfigurationError("CSP report-to takes exactly one endpoint name (letters, digits, - and _).")


def _check_trusted_types_for(name: str, items: Sources) -> None:
    if items != ("'script'",):
        raise ConfigurationError("CSP require-trusted-types-for takes exactly \"'script'\".")


def _check_trusted_types(name: str, items: Sources) -> None:
    for item in items:
        if not _TT_NAME_RE.fullmatch(item):
            raise ConfigurationError(f"CSP trusted-types: {item!r} is not a policy name.")


def _check_webrtc(name: str, items: Sources) -> None:
    if items not in (("'allow'",), ("'block'",)):
        raise ConfigurationError("CSP webrtc takes \"'allow'\" or \"'block'\".")


_CHECKS: Final[dict[str, Callable[[str, Sources], None]]] = {
    **dict.fromkeys(SOURCE_LIST_DIRECTIVES, _check_source_list),
    "sandbox": _check_sandbox,
    "report-uri": _check_report_uri,
    "report-to": _check_report_to,
    "require-trusted-types-for": _check_trusted_types_for,
    "trusted-types": _check_trusted_types,
    "webrtc": _check_webrtc,
}


def _unknown_directive(name: str) -> ConfigurationError:
    close = difflib.get_close_matches(name, sorted(ALL_DIRECTIVES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigurationError(f"Unknown CSP directive {name!r}{hint}.")


def _boolean(name: str, value: CSPValue) -> Sources:
    """A boolean directive (``upgrade-insecure-requests``) is given as True and has no sources."""
    if value is not True:
        raise ConfigurationError(f"CSP {name} takes True (present) and no sources.")
    return ()


def validate_directive(name: str, value: CSPValue) -> Sources:
    """The sources of directive ``name`` (already spelled as the header does), checked against its grammar.

    Example::

        validate_directive("img-src", ["'self'", "data:"])   # ("'self'", 'data:')
        validate_directive("upgrade-insecure-requests", True)  # ()
    """
    if name not in ALL_DIRECTIVES:
        raise _unknown_directive(name)
    if name in BOOLEAN_DIRECTIVES:
        return _boolean(name, value)
    items = tuple(_check_text(name, item) for item in _as_list(name, value))
    _CHECKS[name](name, items)
    return items
