"""Cross-origin request protection (CSRF without tokens): a plain decision over a request's method and headers.

What lives here: :class:`CrossOriginProtection` (the policy: trusted origins checked at construction, then one
decision per request), :class:`CrossOriginDecision` (what it answers: allowed or refused, the rule that decided,
a stable refusal code and a reason) and :func:`csrf_exempt` (the per-route marker the shells read). No framework
and no I/O: the ASGI and WSGI shells read the headers, ask the policy and answer 403 problem+json on a refusal.

Why no token: browsers tell the server where a request comes from. ``Sec-Fetch-Site`` (Fetch Metadata, sent
by every current browser) says ``same-origin``, ``same-site``, ``cross-site`` or ``none``, and ``Origin`` is sent
on every state-changing request; neither can be set by a page's script. A forged cross-site form POST or
``fetch`` therefore announces itself, and refusing it removes the attack tokens were invented for. Requests
without either header come from non-browser clients, which hold no victim's cookies: they pass.

The package's modules, one concept each (this file only re-exports them): ``_decision`` (the result and the
rule names), ``_trusted`` (trusted origins: validated like CORS origins, matched structurally), ``_policy``
(:class:`CrossOriginProtection`) and ``_exempt`` (:func:`csrf_exempt`, :func:`is_csrf_exempt`).
"""

from __future__ import annotations

from ._decision import REFUSAL_CODE as REFUSAL_CODE
from ._decision import CrossOriginDecision
from ._exempt import EXEMPT_ATTRIBUTE as EXEMPT_ATTRIBUTE
from ._exempt import csrf_exempt, is_csrf_exempt
from ._policy import SAFE_METHODS as SAFE_METHODS
from ._policy import CrossOriginProtection

__all__ = ["CrossOriginDecision", "CrossOriginProtection", "csrf_exempt", "is_csrf_exempt"]
