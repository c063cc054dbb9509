"""Checks of :class:`~backend_guard.headers.SecureHeaders`' keywords, one small named check each.

This module owns the translation of one keyword into one header value, and the refusal of a keyword that
would send a broken or unsafe header: the flags and enumerated values (``X-Frame-Options``, the
``Cross-Origin-*`` policies...), ``Referrer-Policy`` lists, ``Permissions-Policy`` text, a CSP given as text,
the reporting endpoints and the CSPs that name them, HSTS (including the preload-list rules) and the
``no_store_paths`` prefixes. Each check raises :class:`~backend_guard.exceptions.ConfigurationError` naming the
keyword; none of them runs per request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from .._check import check_bool, check_choice, check_mapping, check_str
from ..exceptions import ConfigurationError
from ._csp import ContentSecurityPolicy
from ._permissions import PermissionsPolicy
from ._presets import PresetMarker
from ._sources import TOKEN_RE

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
#: The values each enumerated header takes.
CHOICES: Final[Mapping[str, frozenset[str]]] = {
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
_PERMISSIONS_TEXT_BAD = re.compile(r"[\x00-\x1f\x7f;]")
_PRELOAD_MIN_AGE = 31_536_000
# What an endpoint URL may not hold: a control character, the list separators, a quote or a space.
_URL_BAD = re.compile(r'[\x00-\x1f\x7f;," ]')


def when(on: bool, value: str | None) -> str | None:
    """``value`` when a flag is on, None (no header, no directive) when it is off.

    Example::

        when(True, "?1")   # '?1'
    """
    return value if on else None


def check_flags(flags: Iterable[tuple[str, object]]) -> None:
    """Each ``(keyword, value)`` is a bool (a value left to the preset is the preset's to get right)."""
    for name, flag in flags:
        if not isinstance(flag, PresetMarker):
            check_bool(name, flag)


def check_choices(choices: Iterable[tuple[str, str, object]]) -> None:
    """Each ``(keyword, header, value)`` is None, left to the preset, or one of the values ``header`` takes
    (:data:`CHOICES`)."""
    for arg, header, value in choices:
        if value is not None and not isinstance(value, PresetMarker):
            check_choice(f"{arg} ({header})", value, CHOICES[header])


def referrer_value(referrer: str | None) -> str | None:
    """The ``Referrer-Policy`` value of one policy or a comma-separated fallback list, each token once (None:
    no header)."""
    if referrer is None:
        return None
    # A browser applies the last token it knows: a repeated token is sent once, where it last appears.
    return ", ".join(list(dict.fromkeys(reversed(_referrer_tokens(referrer))))[::-1])


def _referrer_tokens(referrer: str) -> list[str]:
    """The policies of a ``Referrer-Policy`` list, each one a policy browsers know."""
    tokens = [t.strip() for t in check_str("referrer_policy", referrer).split(",")]
    if not _REFERRER_POLICIES.issuperset(tokens):
        raise ConfigurationError(
            f"referrer_policy (Referrer-Policy): {referrer[:80]!r} is not a referrer policy; write one of"
            f" {sorted(_REFERRER_POLICIES)}, or several separated by commas (a browser uses the last it knows)."
        )
    return tokens


def _permissions_text(text: str) -> str:
    if not text or _PERMISSIONS_TEXT_BAD.search(text):
        raise ConfigurationError(
            "permissions_policy: the Permissions-Policy text is empty or holds a control character or ';'."
        )
    return text


def permissions_value(perms: PermissionsPolicy | str | None) -> str | None:
    """The ``Permissions-Policy`` value of a :class:`PermissionsPolicy` or its text (None: no header)."""
    if isinstance(perms, str):
        return _permissions_text(perms)
    if isinstance(perms, PermissionsPolicy):
        return perms.header_value()
    if perms is not None:
        raise ConfigurationError("permissions_policy must be a PermissionsPolicy, its text, or None.")
    return None


def as_csp(value: ContentSecurityPolicy | str | None, label: str) -> ContentSecurityPolicy | None:
    """A CSP keyword's policy: kept, parsed from its text (errors named after ``label``), or None."""
    if value is None or isinstance(value, ContentSecurityPolicy):
        return value
    if isinstance(value, str):
        return _parsed_csp(value, label)
    raise ConfigurationError(f"{label} must be a ContentSecurityPolicy, its text, or None.")


def _parsed_csp(text: str, label: str) -> ContentSecurityPolicy:
    try:
        return ContentSecurityPolicy.parse(text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{label}: {exc.detail}") from None


def preset_or_csp(
    value: ContentSecurityPolicy | str | PresetMarker | None, label: str
) -> ContentSecurityPolicy | PresetMarker | None:
    """:func:`as_csp` for a keyword that may be left to the preset (:data:`~._presets.PRESET`, kept)."""
    return value if isinstance(value, PresetMarker) else as_csp(value, label)


def check_report_only(policy: ContentSecurityPolicy | None) -> ContentSecurityPolicy | None:
    """``csp_report_only`` must report somewhere: a report-only policy without a target does nothing."""
    if policy is not None and not policy.has_reporting:
        raise ConfigurationError(
            "csp_report_only without report-to or report-uri reports nowhere; add report_to=... "
            "(with reporting_endpoints) or report_uri=[...]."
        )
    return policy


def _check_endpoint_name(name: object) -> None:
    if not isinstance(name, str) or not TOKEN_RE.fullmatch(name):
        raise ConfigurationError(f"Reporting endpoint name {name!r} must be letters, digits, - and _.")


def _is_plain_url(url: object) -> bool:
    """True for a string a quoted structured-field value holds as is: no control, quote, space, ``;`` or ``,``."""
    return isinstance(url, str) and not _URL_BAD.search(url)


def _endpoint_url(name: str, url: str) -> str:
    _check_endpoint_name(name)
    if not _is_plain_url(url):
        raise ConfigurationError(f"Reporting endpoint {name!r}: the URL holds a forbidden character.")
    if not url.startswith(("https://", "/")):
        raise ConfigurationError(f"Reporting endpoint {name!r}: browsers only report to https:// URLs (or a path).")
    return url


def _check_targets(endpoints: Mapping[str, str], policies: Iterable[ContentSecurityPolicy | None]) -> None:
    """Every ``report-to`` of ``policies`` names one of ``endpoints``."""
    for policy in filter(None, policies):
        target = policy.report_to
        if target is not None and target not in endpoints:
            raise ConfigurationError(
                f"CSP report-to {target!r} names no endpoint in reporting_endpoints; add it there."
            )


def checked_endpoints(
    endpoints: Mapping[str, str] | None, policies: Iterable[ContentSecurityPolicy | None]
) -> dict[str, str]:
    """The checked ``{name: url}`` of ``reporting_endpoints``; every ``report-to`` of ``policies`` must be one."""
    given = check_mapping("reporting_endpoints", {} if endpoints is None else endpoints)
    checked = {name: _endpoint_url(name, url) for name, url in given.items()}
    _check_targets(checked, policies)
    return checked


def endpoints_value(endpoints: Mapping[str, str]) -> str | None:
    """The ``Reporting-Endpoints`` value (None when there is no endpoint)."""
    return ", ".join(f'{n}="{u}"' for n, u in endpoints.items()) or None


def _check_preload(max_age: int, include_subdomains: bool) -> None:
    """The HSTS preload list takes a site only with a max-age of a year or more, subdomains included."""
    if max_age < _PRELOAD_MIN_AGE or not include_subdomains:
        raise ConfigurationError("hsts_preload needs hsts_max_age >= 31536000 and hsts_include_subdomains.")


def hsts_value(on: bool, max_age: int, include_subdomains: bool, preload: bool) -> str | None:
    """The ``Strict-Transport-Security`` value, or None when HSTS is off; preload only as the list accepts it."""
    if not on:
        return None
    if preload:
        _check_preload(max_age, include_subdomains)
    directives = (f"max-age={max_age}", when(include_subdomains, "includeSubDomains"), when(preload, "preload"))
    return "; ".join(filter(None, directives))


def _no_store_prefix(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigurationError(f"no_store_paths: {path!r} must be a path starting with '/'.")
    return path.rstrip("/")


def removed_names(headers: Iterable[str]) -> tuple[frozenset[str], frozenset[bytes]]:
    """``remove_headers`` as lower-case names, as text (WSGI) and as ASGI bytes."""
    names = frozenset(h.strip().lower() for h in headers)
    return names, frozenset(h.encode("latin-1") for h in names)


def no_store_rules(paths: Iterable[object]) -> tuple[frozenset[str], tuple[str, ...]]:
    """``no_store_paths`` as (the exact paths, the prefixes ending in ``/``) a request path is matched with."""
    prefixes = [_no_store_prefix(path) for path in paths]
    return frozenset(p or "/" for p in prefixes), tuple(p + "/" for p in prefixes)
