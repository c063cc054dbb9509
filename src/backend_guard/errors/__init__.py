"""Problem documents (RFC 9457) for every error: pure functions, no framework, no I/O.

Everything a shell needs to answer an error is computed here: the status, the headers and the body bytes.
The body never holds ``str(exc)`` of a foreign exception, a traceback, a secret, or the input that failed
validation: only titles and details that this library wrote, or that an app raised on purpose through a
:class:`~backend_guard.exceptions.GuardError` or a framework ``HTTPException``.

The package's modules, one concept each (this file only re-exports them):

- ``_model``: :class:`ErrorInfo`, :class:`FieldError`, :class:`ResponseAborted`, :func:`status_title`;
- ``_fields``: validation errors as field errors with fixed messages (:func:`validation_field_errors`);
- ``_classify``: an exception or a status to an :class:`ErrorInfo` (:func:`error_info`), framework exceptions
  recognised through ``sys.modules`` (no framework is ever imported here);
- ``_render``: problem documents, the envelope format and the response bytes (:func:`problem_response`);
- ``_policy``: :class:`ErrorPolicy` and which framework error pages are replaced;
- ``_shell``: what both ``ErrorEnvelopeMiddleware`` shells share, and :func:`page_info`;
- ``_redact``: secrets kept out of bodies and logs.
"""

from __future__ import annotations

# ``__all__`` keeps the package's public names as they were before the split into modules; the ``X as X``
# imports are re-exports (not in ``__all__``) of what the shells, the framework adapters, the logging helpers
# and the tests import from here.
from ._classify import GENERIC_500_DETAIL as GENERIC_500_DETAIL
from ._classify import error_info
from ._classify import validation_failures as validation_failures
from ._fields import state_field_errors, validation_field_errors
from ._model import ErrorInfo, FieldError, ResponseAborted, status_title
from ._policy import ErrorPolicy
from ._policy import prefers_html as prefers_html
from ._render import JSON as JSON
from ._render import MINIMAL_500_BODY as MINIMAL_500_BODY
from ._render import MINIMAL_500_HEADERS as MINIMAL_500_HEADERS
from ._render import PROBLEM_JSON, Renderer, problem_document, problem_response
from ._render import ErrorFormat as ErrorFormat
from ._render import envelope_body as envelope_body
from ._shell import ERROR_DETAIL_KEY as ERROR_DETAIL_KEY
from ._shell import App as App
from ._shell import ErrorEnvelopeShell as ErrorEnvelopeShell
from ._shell import page_info as page_info

#: The name ``backend_guard._logging`` imports (from before the split).
_validation_failures = validation_failures

__all__ = [
    "PROBLEM_JSON",
    "ErrorInfo",
    "ErrorPolicy",
    "FieldError",
    "Renderer",
    "ResponseAborted",
    "error_info",
    "problem_document",
    "problem_response",
    "state_field_errors",
    "status_title",
    "validation_field_errors",
]
