"""The compiled header policy: :class:`SecureHeaders`, built once, answering per response in a list index.

This module owns the policy object the shells hold. Its constructor only checks the keywords and assigns what
the other modules compile: the preset filled with the caller's keywords (:mod:`._presets`), each header value
(:mod:`._values`), the profiles and their 24 variants (:mod:`._variants`). Per response, the methods the ASGI
and WSGI shells and the route decorator call pick the variant of (kind of response, HTTPS, no-store path, nonce
used) and merge it with the app's headers (:mod:`._merge`); that path stays inline here because it runs on
every response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

from .._check import check_choice, check_int, check_strs
from .._http import get_header
from .._routes import guard_route
from ..exceptions import ConfigurationError
from ._csp import ContentSecurityPolicy
from ._kinds import DOCUMENT, NOT_MODIFIED, OTHER, content_type_of, is_document_raw, is_document_type
from ._merge import filled_templates, merge_over, merge_text, text_without, with_nonce_csps
from ._permissions import PermissionsPolicy
from ._presets import DISCLOSURE_HEADERS, PRESET, PresetMarker, filled
from ._route import OverrideHooks
from ._sources import NONCE_RE
from ._values import (
    as_csp,
    check_choices,
    check_flags,
    check_report_only,
    checked_endpoints,
    endpoints_value,
    hsts_value,
    no_store_rules,
    preset_or_csp,
    removed_names,
)
from ._variants import Common, compile_variants, fast_table, names_added, profiles

__all__ = ["SecureHeaders"]

F = TypeVar("F", bound=Callable[..., Any])

_NONCE_MATCH = NONCE_RE.fullmatch
_RawHeaders = list[tuple[bytes, bytes]]


def _checked_nonce(nonce: str | None) -> str | None:
    """``nonce`` when None or well-formed; a malformed one given to :meth:`SecureHeaders.headers_for` is refused."""
    if nonce is not None and not _NONCE_MATCH(nonce):
        raise ConfigurationError("A CSP nonce must be 16-128 base64 characters.")
    return nonce


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
      script-src 'self' 'nonce-…'; style-src 'self' 'nonce-…'; img-src 'self' data:; font-src 'self' data:;
      object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`` (the nonce only when the
      response used one), ``Referrer-Policy: strict-origin-when-cross-origin`` and the ``web`` preset's document
      headers. ``document_csp=`` sets that CSP; an explicit ``csp=`` is kept for documents too.
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
    OTHER: Final = OTHER
    DOCUMENT: Final = DOCUMENT
    NOT_MODIFIED: Final = NOT_MODIFIED

    def __init__(
        self,
        preset: str = "api",
        *,
        csp: ContentSecurityPolicy | str | PresetMarker | None = PRESET,
        document_csp: ContentSecurityPolicy | str | PresetMarker | None = PRESET,
        csp_report_only: ContentSecurityPolicy | str | None = None,
        hsts: bool = True,
        hsts_max_age: int = 63_072_000,
        hsts_include_subdomains: bool = True,
        hsts_preload: bool = False,
        force_hsts: bool = False,
        x_content_type_options: bool = True,
        x_frame_options: str | None = "DENY",
        referrer_policy: str | PresetMarker | None = PRESET,
        permissions_policy: PermissionsPolicy | str | PresetMarker | None = PRESET,
        cross_origin_opener_policy: str | None = "same-origin",
        cross_origin_embedder_policy: str | None = None,
        cross_origin_resource_policy: str | None = "same-origin",
        origin_agent_cluster: bool | PresetMarker = PRESET,
        x_permitted_cross_domain_policies: str | PresetMarker | None = PRESET,
        x_dns_prefetch_control: str | PresetMarker | None = PRESET,
        x_xss_protection: str | PresetMarker | None = PRESET,
        no_store_paths: Iterable[str] = (),
        reporting_endpoints: Mapping[str, str] | None = None,
        remove_headers: Iterable[str] = DISCLOSURE_HEADERS,
    ) -> None:
        self.preset = check_choice("preset", preset, ("api", "web"))
        check_flags(
            (
                ("hsts", hsts),
                ("hsts_include_subdomains", hsts_include_subdomains),
                ("hsts_preload", hsts_preload),
                ("force_hsts", force_hsts),
                ("x_content_type_options", x_content_type_options),
                ("origin_agent_cluster", origin_agent_cluster),
            )
        )
        check_int("hsts_max_age", hsts_max_age, min=0)
        check_choices(
            (
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
            )
        )
        no_store_paths = check_strs("no_store_paths", no_store_paths)
        remove_headers = check_strs("remove_headers", remove_headers)
        given = {
            "csp": preset_or_csp(csp, "csp"),
            "referrer_policy": referrer_policy,
            "permissions_policy": permissions_policy,
            "origin_agent_cluster": origin_agent_cluster,
            "x_permitted_cross_domain_policies": x_permitted_cross_domain_policies,
            "x_dns_prefetch_control": x_dns_prefetch_control,
            "x_xss_protection": x_xss_protection,
        }
        kinds = filled(preset, given, preset_or_csp(document_csp, "document_csp"))
        self.csp = kinds.other.csp
        #: The CSP of HTML documents (``text/html``, ``application/xhtml+xml``); the ``api`` preset's lets a page
        #: load its own styles, scripts and images and post its forms to its own origin.
        self.document_csp = kinds.document.csp
        self.csp_report_only = check_report_only(as_csp(csp_report_only, "csp_report_only"))
        endpoints = checked_endpoints(reporting_endpoints, (self.csp, self.document_csp, self.csp_report_only))
        common = Common(
            x_content_type_options,
            x_frame_options,
            cross_origin_opener_policy,
            cross_origin_embedder_policy,
            cross_origin_resource_policy,
            endpoints_value(endpoints),
        )
        #: The profile of each response kind (:attr:`OTHER`, :attr:`DOCUMENT`, :attr:`NOT_MODIFIED`).
        self._profiles = profiles(kinds, self.csp_report_only, common)
        #: True when HTML documents get other headers than the rest (the ``api`` preset's keywords left to it).
        self.splits_documents = self._profiles[OTHER] != self._profiles[DOCUMENT]

        hsts_header = hsts_value(hsts, hsts_max_age, hsts_include_subdomains, hsts_preload)
        self.force_hsts = force_hsts
        #: True when the per-request "is it HTTPS?" answer changes the headers (HSTS on and not forced).
        self.needs_scheme = hsts_header is not None and not force_hsts
        self._no_store_exact, self._no_store_prefixes = no_store_rules(no_store_paths)
        #: True when the request path changes the headers (``no_store_paths`` is set).
        self.depends_on_path = bool(self._no_store_prefixes)
        self.removed, self._removed_raw = removed_names(remove_headers)
        # Every combination of (kind of response, secure, no-store, nonce used) compiled now: per request one
        # index, 8 * kind + 4 * secure + 2 * no-store + nonce used (VariantKey.position).
        self._variants = compile_variants(
            self._profiles,
            hsts_header,
            force_hsts=force_hsts,
            removed_raw=self._removed_raw,
            splits_documents=self.splits_documents,
        )
        self._fast = fast_table(self._variants)
        #: Lower-case names of every header this policy may add.
        self.header_names = names_added(self._variants, no_store=self.depends_on_path)

    # -- per request ---------------------------------------------------------------------------------------

    def document_raw(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """True when ASGI response ``headers`` declare an HTML document (``Content-Type: text/html`` or
        ``application/xhtml+xml``) and this policy gives documents other headers (:attr:`splits_documents`).

        Example::

            SecureHeaders().document_raw([(b"content-type", b"text/html; charset=utf-8")])   # True
        """
        return self.kind_raw(200, headers) == DOCUMENT

    def kind_raw(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> int:
        """The kind of an ASGI response for this policy: :attr:`NOT_MODIFIED` for a 304, :attr:`DOCUMENT` when
        :meth:`document_raw` says so, else :attr:`OTHER`.

        Example::

            policy.kind_raw(304, [])                                             # SecureHeaders.NOT_MODIFIED
            policy.kind_raw(200, [(b"content-type", b"text/html")])              # SecureHeaders.DOCUMENT
        """
        # the Content-Type looked up only where it can change the answer
        content_type = get_header(headers, b"content-type") if self.splits_documents and status != 304 else None
        return self.response_kind_raw(status, content_type)

    def response_kind_raw(self, status: int, content_type: bytes | None) -> int:
        """:meth:`kind_raw` for a response whose first ``Content-Type`` value is ``content_type`` (None: it has
        none): what the ASGI shell asks once per response (a Content-Type value is classified once, then
        remembered in a bounded memory of the values seen).

        Example::

            policy.response_kind_raw(200, b"text/html; charset=utf-8")   # SecureHeaders.DOCUMENT
        """
        if status == 304:
            return NOT_MODIFIED
        if self.splits_documents and content_type is not None and is_document_raw(content_type):
            return DOCUMENT
        return OTHER

    def response_kind_str(self, status: int, content_type: str | None) -> int:
        """The kind of a WSGI response (:attr:`OTHER`, :attr:`DOCUMENT`, :attr:`NOT_MODIFIED`) from its status and
        first ``Content-Type`` value (None: it has none): what the WSGI shell asks once per response.

        Example::

            policy.response_kind_str(304, None)   # SecureHeaders.NOT_MODIFIED
        """
        if status == 304:
            return NOT_MODIFIED
        if self.splits_documents and content_type is not None and is_document_type(content_type):
            return DOCUMENT
        return OTHER

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
            kind = self._document_kind(document)
        pairs, templates, _ = self._fast[self._index(secure, path, nonce, kind)]
        if not templates:
            return list(pairs)
        return [*pairs, *filled_templates(templates, nonce)]

    def _document_kind(self, document: bool) -> int:
        """The kind of a response :meth:`document_raw` said ``document`` of."""
        return DOCUMENT if document and self.splits_documents else OTHER

    def _index(self, secure: bool, path: str, nonce: str | None, kind: int = 0) -> int:
        """The index of this response's variant (:attr:`VariantKey.position`, computed without building the key)."""
        # bool(secure), not secure: any true or false value ("on", None) is read as a flag, not as a number
        index = 8 * kind + 4 * bool(secure) + (nonce is not None)
        # a no-store path: one of no_store_paths or below one (written out here and in merge_raw: both run per
        # response, and a method call would cost them more than the test)
        if self._no_store_prefixes and (path in self._no_store_exact or path.startswith(self._no_store_prefixes)):
            index |= 2
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
        if headers.__class__ is not list:  # read several times below: a one-shot iterable (ASGI allows one) once here
            headers = list(headers)
        # the hot path of every response: one content-type check, one variant lookup, one set of names, one
        # disjointness test (the index computed inline, as _index does, to spare a call)
        index = 8 * self.kind_raw(status, headers) + (4 if secure else 0)  # a flag, as in _index
        if self._no_store_prefixes and (path in self._no_store_exact or path.startswith(self._no_store_prefixes)):
            index |= 2
        if nonce is not None:
            if _NONCE_MATCH(nonce):
                index |= 1
            else:
                nonce = None
        pairs, templates, touched = self._fast[index]
        present = {k.lower() for k, _ in headers}
        if present.isdisjoint(touched):
            if not templates:
                return [*headers, *pairs]
            # filled_templates, written out: a call costs a nonce-using response a fifth of its merge
            encoded = nonce.encode() if nonce is not None else b""
            fast = [*headers, *pairs]
            for name, parts in templates:
                fast.append((name, encoded.join(parts)))
            return fast
        return merge_over(headers, present, self._variants[index], nonce, replace, self._removed_raw)

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
        if nonce is not None and not _NONCE_MATCH(nonce):
            nonce = None
        if headers.__class__ is not list:  # read twice below: a one-shot iterable once here
            headers = list(headers)
        content_type = content_type_of(headers) if self.splits_documents else None
        ours = self.headers_for(secure=secure, path=path, nonce=nonce, content_type=content_type, status=status)
        return merge_text(headers, ours, self.removed, replace=replace)

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
        # the arguments read in the order they were before the split: a malformed nonce is the error reported
        nonce = _checked_nonce(nonce)
        kind = self.response_kind_str(status, content_type)
        text = self._variants[self._index(secure, path, nonce, kind)].text
        skip = {e.lower() for e in existing}
        out = text_without(text, skip)
        if nonce is not None:
            with_nonce_csps(out, self._profiles[kind], nonce, skip)
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
        return guard_route(OverrideHooks(self))

    def __repr__(self) -> str:
        return f"SecureHeaders(preset={self.preset!r}, headers={sorted(self.header_names)!r})"
