"""The named presets of :class:`~backend_guard.headers.SecureHeaders`: what ``"api"`` and ``"web"`` give.

This module owns the defaults, as data. A preset is a :class:`Preset`: the :class:`KindValues` of every
response but HTML documents and those of HTML documents, for the keywords a preset decides (the CSP,
``Referrer-Policy``, ``Permissions-Policy`` and the document-only headers). :func:`filled` applies the
keywords a caller gave with :func:`dataclasses.replace`, so a keyword left to the preset (:data:`PRESET`) follows
the kind of response while one given explicitly applies to both. Also here: :data:`DISCLOSURE_HEADERS`, the
headers removed by default. See docs/headers.md for why each value is what it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, NamedTuple

from ..exceptions import ConfigurationError
from ._csp import ContentSecurityPolicy
from ._permissions import PermissionsPolicy

__all__ = ["DISCLOSURE_HEADERS", "PRESET", "KindValues", "Preset", "PresetMarker", "filled"]

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


class PresetMarker:
    """Marks a keyword left to the preset."""

    def __repr__(self) -> str:
        return "PRESET"


#: The default of every keyword a preset decides: "whatever the preset gives this kind of response".
PRESET: Final = PresetMarker()


@dataclass(frozen=True)
class KindValues:
    """What one kind of response gets for the keywords a preset decides (``None``: no such header).

    Example::

        replace(API, referrer_policy="same-origin")
    """

    csp: ContentSecurityPolicy | None
    referrer_policy: str | None
    permissions_policy: PermissionsPolicy | str | None
    origin_agent_cluster: bool
    x_permitted_cross_domain_policies: str | None
    x_dns_prefetch_control: str | None
    x_xss_protection: str | None


class Preset(NamedTuple):
    """A preset: the values of every response but HTML documents, and those of HTML documents."""

    other: KindValues
    document: KindValues


_NONCE = ContentSecurityPolicy.NONCE
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

API: Final = KindValues(
    csp=ContentSecurityPolicy(
        default_src=["'none'"], base_uri=["'none'"], form_action=["'none'"], frame_ancestors=["'none'"]
    ),
    referrer_policy="no-referrer",
    # Only meaningful for HTML documents (see docs/headers.md): off for API responses, which a browser never
    # runs as a page (and the CSP above forbids every script and feature anyway).
    permissions_policy=None,
    origin_agent_cluster=False,
    x_permitted_cross_domain_policies=None,
    x_dns_prefetch_control=None,
    x_xss_protection=None,
)

WEB: Final = KindValues(
    csp=ContentSecurityPolicy(
        default_src=["'self'"],
        script_src=[_NONCE, "'strict-dynamic'"],
        style_src=["'self'", _NONCE],
        img_src=["'self'", "data:"],
        font_src=["'self'", "data:"],  # a stylesheet's @font-face may inline its font as a data: URI
        object_src=["'none'"],
        base_uri=["'none'"],
        form_action=["'self'"],
        frame_ancestors=["'none'"],
        upgrade_insecure_requests=True,
    ),
    referrer_policy="strict-origin-when-cross-origin",
    permissions_policy=PermissionsPolicy(dict.fromkeys(_DISABLED_FEATURES, ())),
    origin_agent_cluster=True,
    x_permitted_cross_domain_policies="none",
    x_dns_prefetch_control="off",
    x_xss_protection="0",
)

# What an HTML document gets under ``api``. A page would otherwise get ``default-src 'none'; form-action 'none'``:
# no stylesheet, no script, a form that cannot be sent. So documents get the ``web`` preset's document headers
# and a CSP that lets a page use its own origin's styles, scripts, images and fonts, inline code only with this
# response's nonce, and post forms only to its own origin. ``Referrer-Policy: no-referrer`` would make a browser
# send ``Origin: null`` with the page's own form posts, which CSRF checks (Django's) refuse: documents get
# ``strict-origin-when-cross-origin``.
API_DOCUMENT: Final = replace(
    WEB,
    csp=ContentSecurityPolicy(
        default_src=["'self'"],
        # 'self' and no 'strict-dynamic' (which would make a CSP3 browser ignore 'self'): a page's own script
        # files run, as Django's admin needs; an inline script runs only with this response's nonce.
        script_src=["'self'", _NONCE],
        style_src=["'self'", _NONCE],
        img_src=["'self'", "data:"],
        font_src=["'self'", "data:"],  # a stylesheet's @font-face may inline its font as a data: URI
        object_src=["'none'"],
        base_uri=["'none'"],
        form_action=["'self'"],
        frame_ancestors=["'none'"],
    ),
)

#: The named presets (``web`` is a document policy already, so documents get the same values).
PRESETS: Final[Mapping[str, Preset]] = {"api": Preset(API, API_DOCUMENT), "web": Preset(WEB, WEB)}


def filled(
    preset: str, given: Mapping[str, Any], document_csp: ContentSecurityPolicy | PresetMarker | None = PRESET
) -> Preset:
    """Preset ``preset`` with the keywords of ``given`` that are not :data:`PRESET` applied to both kinds of
    response, then ``document_csp`` (unless :data:`PRESET`) to HTML documents.

    Example::

        filled("api", {"referrer_policy": "same-origin", "csp": PRESET}).other.referrer_policy   # 'same-origin'
    """
    base = PRESETS.get(preset)
    if base is None:
        raise ConfigurationError(f"Unknown SecureHeaders preset {preset!r}: use 'api' or 'web'.")
    changes = _given(given)
    chosen = Preset(replace(base.other, **changes), replace(base.document, **changes))
    if isinstance(document_csp, PresetMarker):
        return chosen
    return chosen._replace(document=replace(chosen.document, csp=document_csp))


def _given(keywords: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords a caller gave a value (those not left to the preset)."""
    return {name: value for name, value in keywords.items() if not isinstance(value, PresetMarker)}
