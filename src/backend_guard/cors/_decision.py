"""What CORS adds to a response: :class:`CORSDecision` for any shell, and the raw header pairs the ASGI and
WSGI shells write as they are.

What lives here: the decision type, the ``Vary`` names of an actual response and of a preflight, and the
``Access-Control-*`` header names in both spellings (lower-case bytes on the shells' hot path, titled text in a
:class:`CORSDecision`). Which headers a request gets is the policy's decision (``_policy``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACTUAL_VARY",
    "NOTHING",
    "PNA_VARY",
    "PREFLIGHT_VARY",
    "CORSDecision",
    "RawHeaders",
    "title",
]

PREFLIGHT_VARY = ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
PNA_VARY = "Access-Control-Request-Private-Network"
ACTUAL_VARY = ("Origin",)

RawHeaders = tuple[tuple[bytes, bytes], ...]
NOTHING: RawHeaders = ()

_TITLES = {
    b"access-control-allow-origin": "Access-Control-Allow-Origin",
    b"access-control-allow-credentials": "Access-Control-Allow-Credentials",
    b"access-control-expose-headers": "Access-Control-Expose-Headers",
    b"access-control-allow-methods": "Access-Control-Allow-Methods",
    b"access-control-allow-headers": "Access-Control-Allow-Headers",
    b"access-control-max-age": "Access-Control-Max-Age",
    b"access-control-allow-private-network": "Access-Control-Allow-Private-Network",
}


@dataclass(frozen=True, slots=True)
class CORSDecision:
    """What CORS adds to one response: a plain result any shell can write out.

    ``headers`` are the ``Access-Control-*`` headers to set (none when refused); ``vary`` are names to merge
    into the response's ``Vary`` (always, allowed or not). For a preflight, ``status`` is the status of the
    whole response the shell answers with (204 allowed, 403 refused); for an actual request it is None (the
    app's response goes on). ``reason`` says what was refused (``"origin"``, ``"method"``, ``"headers"``).

    Example::

        d = policy.preflight("https://app.example.com", "PUT", "content-type")
        if d.preflight:
            respond(d.status, d.headers + [("Vary", ", ".join(d.vary))])
    """

    allowed: bool
    preflight: bool
    headers: tuple[tuple[str, str], ...] = ()
    vary: tuple[str, ...] = ACTUAL_VARY
    status: int | None = None
    reason: str | None = None


def title(raw: RawHeaders) -> tuple[tuple[str, str], ...]:
    """Raw ``Access-Control-*`` pairs as titled text pairs (what a :class:`CORSDecision` holds).

    Example::

        >>> title(((b"access-control-allow-origin", b"*"),))
        (('Access-Control-Allow-Origin', '*'),)
    """
    return tuple((_TITLES[k], v.decode("latin-1")) for k, v in raw)
