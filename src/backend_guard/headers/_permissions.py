"""The Permissions-Policy builder: :class:`PermissionsPolicy` and the feature names browsers know.

This module owns the ``Permissions-Policy`` header alone: the registry of feature names
(:data:`PERMISSIONS_FEATURES`), the allowlist grammar (``[]``, ``self``, ``src``, ``*`` or https origins, with the
keywords unquoted as the header's structured-field syntax wants them), and the rendering of the header value,
done once at construction. A misspelt feature or a quoted keyword is a
:class:`~backend_guard.exceptions.ConfigurationError` that says what to write instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Final

from .._check import check_mapping, check_str
from ..exceptions import ConfigurationError

__all__ = ["PERMISSIONS_FEATURES", "PermissionsPolicy"]

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
_UNQUOTED = ("self", "src", "*")
_MISWRITTEN = ("'self'", "'src'", "none", "'none'")

Allowlist = Iterable[str] | str


def _feature_name(raw_name: object) -> str:
    """A feature's header name (``sync_xhr`` -> ``sync-xhr``), refused with a hint when browsers do not know it."""
    name = check_str("Permissions-Policy feature name", raw_name).strip().lower().replace("_", "-")
    if name not in PERMISSIONS_FEATURES:
        close = difflib.get_close_matches(name, sorted(PERMISSIONS_FEATURES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigurationError(f"Unknown Permissions-Policy feature {name!r}{hint}.")
    return name


def _check_entry(name: str, item: object) -> None:
    """One allowlist entry: ``self``, ``src``, ``*`` or an http(s) origin."""
    if not isinstance(item, str):
        raise ConfigurationError(f"Permissions-Policy {name}: allowlist items must be strings.")
    if item in _UNQUOTED:
        return
    if item in _MISWRITTEN:
        raise ConfigurationError(f"Permissions-Policy {name}: write self/src unquoted and [] for none (got {item!r}).")
    if not _ORIGIN_RE.fullmatch(item):
        raise ConfigurationError(f"Permissions-Policy {name}: {item!r} is not an http(s) origin.")


def _entries(name: str, allow: Allowlist) -> tuple[str, ...]:
    """An allowlist as a tuple: one string is one entry; bytes, a mapping or a scalar are refused."""
    if isinstance(allow, (bytes, bytearray, Mapping)) or not isinstance(allow, Iterable):
        raise ConfigurationError(
            f"Permissions-Policy {name}: the allowlist must be a list of strings (or [] for none)."
        )
    return (allow,) if isinstance(allow, str) else tuple(allow)


def _allowlist(name: str, allow: Allowlist) -> tuple[str, ...]:
    items = _entries(name, allow)
    for item in items:
        _check_entry(name, item)
    if "*" in items and len(items) > 1:
        raise ConfigurationError(f"Permissions-Policy {name}: '*' cannot be combined with other entries.")
    return items


def _merged(features: Mapping[str, Allowlist] | None, kwargs: Mapping[str, Allowlist]) -> dict[str, tuple[str, ...]]:
    """The allowlists of the mapping and the keywords, by header name; a feature given twice is refused."""
    merged: dict[str, tuple[str, ...]] = {}
    for source in (check_mapping("features", {} if features is None else features), kwargs):
        for raw_name, allow in source.items():
            name = _feature_name(raw_name)
            if name in merged:
                raise ConfigurationError(f"Permissions-Policy feature {name!r} is given twice.")
            merged[name] = _allowlist(name, allow)
    return merged


def _rendered(name: str, items: tuple[str, ...]) -> str:
    if items == ("*",):
        return f"{name}=*"
    inner = " ".join(i if i in ("self", "src") else f'"{i}"' for i in items)
    return f"{name}=({inner})"


class PermissionsPolicy:
    """A Permissions-Policy header: feature name -> allowlist, with names and origins validated.

    An allowlist is ``[]`` (disabled everywhere), ``"self"``, ``"*"``, or a list of ``"self"``, ``"src"`` and
    origins (``"https://maps.example"``). Keyword arguments use ``_`` for ``-``; a mapping may come first.

    Example::

        PermissionsPolicy(camera=[], geolocation=["self", "https://maps.example"], fullscreen="self")
        # camera=(), geolocation=(self "https://maps.example"), fullscreen=(self)
    """

    __slots__ = ("_features", "_value")

    def __init__(self, features: Mapping[str, Allowlist] | None = None, /, **kwargs: Allowlist):
        merged = _merged(features, kwargs)
        if not merged:
            raise ConfigurationError("A PermissionsPolicy needs at least one feature.")
        self._features = merged
        self._value = ", ".join(_rendered(n, a) for n, a in merged.items())

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
