"""What a cross-origin check answers: allowed or refused, which rule decided, and the refusal's code and reason.

What lives here: :class:`CrossOriginDecision` and the names of the rules. Allowed decisions are shared
constants (the request path allocates nothing when a request passes); a refusal carries the stable code
``cross-origin-request`` (the ``code`` member of the 403 problem document) and a reason safe to show a client.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REFUSAL_CODE", "CrossOriginDecision", "Rule"]

#: The ``code`` of every refusal (the problem document's ``code`` member): stable, part of the public contract.
REFUSAL_CODE = "cross-origin-request"


class Rule:
    """The rules a decision names (``CrossOriginDecision.rule``): one per line of the docs' decision table."""

    # passes
    SAFE_METHOD = "safe-method"  # GET, HEAD, OPTIONS: never refused
    SAME_ORIGIN_FETCH = "fetch-same-origin"  # Sec-Fetch-Site: same-origin or none (typed URL, bookmark)
    SAME_SITE_ALLOWED = "fetch-same-site-allowed"  # Sec-Fetch-Site: same-site with allow_same_site=True
    TRUSTED_ORIGIN = "trusted-origin"  # Origin is one of trusted_origins
    SAME_ORIGIN = "origin-same"  # no Sec-Fetch-Site; Origin equals the request's own origin
    NULL_ALLOWED = "origin-null-allowed"  # no Sec-Fetch-Site; Origin: null with allow_null_origin=True
    NO_BROWSER_HEADERS = "no-browser-headers"  # neither header: not a browser, so no victim's cookies
    # refusals
    CROSS_SITE = "fetch-cross-site"
    SAME_SITE = "fetch-same-site"
    FETCH_UNKNOWN = "fetch-unknown"  # a Sec-Fetch-Site value no browser sends (or an overlong one)
    FETCH_CONFLICT = "fetch-conflict"  # two different Sec-Fetch-Site values
    ORIGIN_MISMATCH = "origin-mismatch"
    ORIGIN_NULL = "origin-null"
    ORIGIN_MALFORMED = "origin-malformed"
    ORIGIN_DUPLICATE = "origin-duplicate"  # several Origin fields: no browser sends two
    HOST_MALFORMED = "host-malformed"  # Origin present but the request's own origin cannot be formed


@dataclass(frozen=True, slots=True)
class CrossOriginDecision:
    """The answer of :meth:`CrossOriginProtection.check`: ``allowed``, the ``rule`` that decided, and for a
    refusal its ``status`` (403), ``code`` (``"cross-origin-request"``) and ``reason`` (safe to show a client).

    Example::

        >>> import backend_guard as bg
        >>> decision = bg.CrossOriginProtection().check(
        ...     "POST", scheme="https", host="app.example.com", sec_fetch_site=["cross-site"]
        ... )
        >>> decision.allowed, decision.status, decision.code, decision.rule
        (False, 403, 'cross-origin-request', 'fetch-cross-site')
    """

    allowed: bool
    rule: str
    reason: str

    @property
    def status(self) -> int:
        """200 for a pass (the request goes on), 403 for a refusal."""
        return 200 if self.allowed else 403

    @property
    def code(self) -> str | None:
        """``"cross-origin-request"`` for a refusal, None for a pass."""
        return None if self.allowed else REFUSAL_CODE


def _allow(rule: str, reason: str) -> CrossOriginDecision:
    return CrossOriginDecision(True, rule, reason)


def _refuse(rule: str, reason: str) -> CrossOriginDecision:
    return CrossOriginDecision(False, rule, reason)


# Every decision is one of these constants: nothing is built per request.
SAFE = _allow(Rule.SAFE_METHOD, "Safe methods are never refused.")
FETCH_SAME_ORIGIN = _allow(Rule.SAME_ORIGIN_FETCH, "The browser says the request comes from this origin.")
FETCH_SAME_SITE_ALLOWED = _allow(Rule.SAME_SITE_ALLOWED, "Same-site requests are allowed by configuration.")
TRUSTED = _allow(Rule.TRUSTED_ORIGIN, "The request comes from a trusted origin.")
SAME_ORIGIN = _allow(Rule.SAME_ORIGIN, "The Origin header equals the request's own origin.")
NULL_ALLOWED = _allow(Rule.NULL_ALLOWED, "Origin: null is allowed by configuration.")
NO_BROWSER = _allow(Rule.NO_BROWSER_HEADERS, "No Sec-Fetch-Site and no Origin: not a browser's request.")
CROSS_SITE = _refuse(Rule.CROSS_SITE, "Cross-site requests with this method are refused.")
SAME_SITE = _refuse(Rule.SAME_SITE, "Requests from another origin of this site are refused.")
FETCH_UNKNOWN = _refuse(Rule.FETCH_UNKNOWN, "The Sec-Fetch-Site header has a value browsers do not send.")
FETCH_CONFLICT = _refuse(Rule.FETCH_CONFLICT, "The request has conflicting Sec-Fetch-Site values.")
ORIGIN_MISMATCH = _refuse(Rule.ORIGIN_MISMATCH, "The request's Origin is not this server's origin.")
ORIGIN_NULL = _refuse(Rule.ORIGIN_NULL, "Requests with 'Origin: null' and this method are refused.")
ORIGIN_MALFORMED = _refuse(Rule.ORIGIN_MALFORMED, "The Origin header is not a valid origin.")
ORIGIN_DUPLICATE = _refuse(Rule.ORIGIN_DUPLICATE, "The request has more than one Origin header.")
HOST_MALFORMED = _refuse(Rule.HOST_MALFORMED, "The request's host is not valid, so its origin cannot be checked.")
