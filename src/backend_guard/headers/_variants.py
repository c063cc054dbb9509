"""Compiled header variants: every combination of response kind, scheme, no-store and nonce, built once.

This module owns the step from checked values to header bytes. A :class:`Profile` is what one kind of response
gets (its CSP, its report-only CSP, its other headers in order); :func:`profiles` builds the three (every
response, HTML documents, 304s). A :class:`Variant` is the header list of one :class:`VariantKey` (kind, HTTPS,
no-store path, nonce used), as ASGI bytes, WSGI text and CSP templates waiting for a nonce;
:func:`compile_variants` builds all 24 in :attr:`VariantKey.position` order, so a request costs one list index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from ._csp import ContentSecurityPolicy, holds_nonce
from ._kinds import DOCUMENT, OTHER
from ._presets import KindValues, Preset
from ._values import permissions_value, referrer_value, when

__all__ = [
    "CSP_NAMES",
    "Common",
    "FastVariant",
    "Profile",
    "Variant",
    "VariantKey",
    "compile_variants",
    "fast_table",
    "names_added",
    "profiles",
]

TextPairs = tuple[tuple[str, str], ...]
RawPairs = tuple[tuple[bytes, bytes], ...]
# A CSP whose value waits for this response's nonce: (lower-case name, the value's parts around the nonce)
Templates = tuple[tuple[bytes, tuple[bytes, ...]], ...]

#: The two CSP headers, in the order a response carries them.
CSP_NAMES: Final = ("Content-Security-Policy", "Content-Security-Policy-Report-Only")


class Common(NamedTuple):
    """The header values every kind of response takes from the same keywords (None: no such header)."""

    nosniff: bool
    frame_options: str | None
    opener_policy: str | None
    embedder_policy: str | None
    resource_policy: str | None
    reporting_endpoints: str | None


class Profile(NamedTuple):
    """What one kind of response gets besides HSTS and ``Cache-Control``: its two CSPs and its other headers."""

    csp: ContentSecurityPolicy | None
    report_only: ContentSecurityPolicy | None
    headers: TextPairs


class VariantKey(NamedTuple):
    """Which variant a response gets: its kind (:mod:`._kinds`), HTTPS, a no-store path, a nonce used."""

    kind: int
    secure: bool
    no_store: bool
    nonce: bool

    @classmethod
    def at(cls, index: int) -> VariantKey:
        """The key at ``index`` (the inverse of :attr:`position`)."""
        return cls(index // 8, bool(index & 4), bool(index & 2), bool(index & 1))

    @property
    def position(self) -> int:
        """The variant's place in the compiled list: ``8 * kind + 4 * secure + 2 * no_store + nonce``."""
        return 8 * self.kind + 4 * self.secure + 2 * self.no_store + self.nonce


class Variant(NamedTuple):
    """One variant's headers: ASGI pairs, their names, CSP templates, the names that leave the fast path
    (``touched``: ours and the removed ones), and the WSGI pairs (CSP templates not included)."""

    raw: RawPairs
    names: frozenset[bytes]
    templates: Templates
    touched: frozenset[bytes]
    text: TextPairs


def _kind_headers(values: KindValues, common: Common) -> TextPairs:
    """One kind of response's headers but the CSPs, HSTS and ``Cache-Control``, in the order they are sent."""
    pairs = (
        ("X-Content-Type-Options", when(common.nosniff, "nosniff")),
        ("X-Frame-Options", common.frame_options),
        ("Referrer-Policy", referrer_value(values.referrer_policy)),
        ("Permissions-Policy", permissions_value(values.permissions_policy)),
        ("Cross-Origin-Opener-Policy", common.opener_policy),
        ("Cross-Origin-Embedder-Policy", common.embedder_policy),
        ("Cross-Origin-Resource-Policy", common.resource_policy),
        ("X-Permitted-Cross-Domain-Policies", values.x_permitted_cross_domain_policies),
        ("X-DNS-Prefetch-Control", values.x_dns_prefetch_control),
        ("X-XSS-Protection", values.x_xss_protection),
        ("Origin-Agent-Cluster", when(values.origin_agent_cluster, "?1")),
        ("Reporting-Endpoints", common.reporting_endpoints),
    )
    return tuple((name, value) for name, value in pairs if value is not None)


def _unchanging(policy: ContentSecurityPolicy | None) -> ContentSecurityPolicy | None:
    return None if holds_nonce(policy) else policy


def profiles(preset: Preset, report_only: ContentSecurityPolicy | None, common: Common) -> tuple[Profile, ...]:
    """The profiles of every response but documents, of HTML documents, and of a 304 (in kind order).

    A browser copies a 304's headers, CSP included, onto the response it has cached, and a 304 has no
    Content-Type to say which profile that response got. So it carries only what every response gets alike: no
    header whose value differs between the two profiles, no CSP that holds a nonce (the cached page's nonce is
    not this response's).
    """
    other = Profile(preset.other.csp, report_only, _kind_headers(preset.other, common))
    document = Profile(preset.document.csp, report_only, _kind_headers(preset.document, common))
    not_modified = Profile(
        _unchanging(other.csp) if other.csp == document.csp else None,
        _unchanging(report_only),
        tuple(h for h in other.headers if h in document.headers),
    )
    return other, document, not_modified


def _template(name: str, policy: ContentSecurityPolicy) -> tuple[bytes, tuple[bytes, ...]]:
    """A CSP as its lower-case ASGI name and the parts of its value around the nonce."""
    return name.lower().encode(), tuple(part.encode() for part in policy.nonce_template())


def _csps(profile: Profile) -> list[tuple[str, ContentSecurityPolicy]]:
    """A profile's CSPs (those it has), each with its header name."""
    named = zip(CSP_NAMES, (profile.csp, profile.report_only), strict=True)
    return [(name, policy) for name, policy in named if policy is not None]


def _csp_headers(profile: Profile, with_nonce: bool) -> tuple[list[tuple[str, str]], Templates]:
    """A profile's CSPs: as finished pairs, or as templates when the response used a nonce they hold."""
    pairs: list[tuple[str, str]] = []
    templates: list[tuple[bytes, tuple[bytes, ...]]] = []
    for name, policy in _csps(profile):
        if with_nonce and policy.uses_nonce:
            templates.append(_template(name, policy))
        else:
            pairs.append((name, policy.header_value()))
    return pairs, tuple(templates)


def _encoded(pairs: Iterable[tuple[str, str]]) -> RawPairs:
    """Header pairs as ASGI sends them: lower-case latin-1 names, latin-1 values."""
    return tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs)


def _compiled(key: VariantKey, profile: Profile, hsts: str | None, removed_raw: frozenset[bytes]) -> Variant:
    """The variant of ``key``; ``hsts`` is the HSTS value when this variant sends it (None: not sent)."""
    pairs, templates = _csp_headers(profile, key.nonce)
    if hsts is not None:
        pairs.append(("Strict-Transport-Security", hsts))
    pairs.extend(profile.headers)
    if key.no_store:
        pairs.append(("Cache-Control", "no-store"))
    raw = _encoded(pairs)
    names = frozenset(k for k, _ in (*raw, *templates))
    return Variant(raw, names, templates, names | removed_raw, tuple(pairs))


def compile_variants(
    kinds: Sequence[Profile],
    hsts: str | None,
    *,
    force_hsts: bool,
    removed_raw: frozenset[bytes],
    splits_documents: bool,
) -> tuple[Variant, ...]:
    """Every variant of ``kinds`` (a profile per kind), in :attr:`VariantKey.position` order. HSTS goes on HTTPS
    responses, or on all with ``force_hsts``; when documents get the same profile, they share the variants."""
    out: list[Variant] = []
    for key in map(VariantKey.at, range(8 * len(kinds))):
        if key.kind == DOCUMENT and not splits_documents:
            out.append(out[key.position - 8])
        else:
            out.append(_compiled(key, kinds[key.kind], when(key.secure or force_hsts, hsts), removed_raw))
    return tuple(out)


#: What a response's merge reads of its variant: (ASGI pairs, CSP templates, touched names).
FastVariant = tuple[RawPairs, Templates, frozenset[bytes]]


def fast_table(variants: Iterable[Variant]) -> tuple[FastVariant, ...]:
    """What the per-response merge reads of each variant, as plain tuples: CPython unpacks an exact tuple in one
    specialised step, a NamedTuple (a subclass) through its iterator, which costs a response about 60 ns."""
    return tuple((v.raw, v.templates, v.touched) for v in variants)


# The variants whose names make up every header a policy may add but Cache-Control: HTTPS (HSTS) with and without
# a nonce, for both profiles.
_ADDING_KEYS: Final = tuple(
    VariantKey(kind, secure=True, no_store=False, nonce=nonce) for kind in (OTHER, DOCUMENT) for nonce in (False, True)
)


def names_added(variants: Sequence[Variant], no_store: bool) -> frozenset[str]:
    """The lower-case names of every header ``variants`` may add (``Cache-Control`` when ``no_store`` paths
    are set)."""
    names = {name.decode() for key in _ADDING_KEYS for name in variants[key.position].names}
    return frozenset(names | {"cache-control"} if no_store else names)
