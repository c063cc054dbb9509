"""Every header name an ASGI shell sends (on a refusal above all) is lower-case bytes (the ASGI spec; HTTP/2
servers refuse an upper-case name): the 429 and 503 of the rate limit, the 403 of a cross-origin request, the 403
of a refused CORS preflight, the 400 of an unknown ``Host``, the 401/403/503 the ErrorEnvelope renders, over HTTP
and as WebSocket denial responses; each shell alone and the fused ``asgi.Guard``."""

from __future__ import annotations

from typing import Any

import pytest

import backend_guard as bg
from backend_guard import asgi
from backend_guard.exceptions import StorageError

APP = "https://app.example"
EVIL = "https://evil.example"
ERRORS = {
    "/401": bg.AuthenticationError("sign in"),
    "/403": bg.Forbidden("no"),
    "/429": bg.RateLimited(retry_after=7),
    "/503": StorageError(),
}


async def _raising(scope: dict[str, Any], receive: Any, send: Any) -> None:
    error = ERRORS.get(scope["path"])
    if error is not None:
        raise error
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _scope(kind: str, method: str, path: str, headers: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": kind,
        "method": method,
        "scheme": "https" if kind == "http" else "wss",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "client": ("192.0.2.7", 5000),
        "server": ("app.example", 443),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "extensions": {"websocket.http.response": {}},
        "subprotocols": [],
    }


async def _starts(app: Any, kind: str, method: str, path: str, headers: list[tuple[str, str]]) -> list[Any]:
    """The (status, header names) of each response start ``app`` sends for one request."""
    sent: list[Any] = []
    first = {"type": "websocket.connect"} if kind == "websocket" else {"type": "http.request", "body": b""}

    async def receive() -> dict[str, Any]:
        return first

    async def send(message: dict[str, Any]) -> None:
        if message["type"] in ("http.response.start", "websocket.http.response.start"):
            sent.append((message["status"], [name for name, _ in message.get("headers", ())]))

    await app(_scope(kind, method, path, headers), receive, send)
    return sent


HOST = [("host", "app.example")]
PREFLIGHT = [*HOST, ("origin", EVIL), ("access-control-request-method", "PUT")]
#: (scope type, method, path, headers) of requests each refused by one part.
REQUESTS = [
    ("http", "GET", "/limited", HOST),
    ("http", "GET", "/limited", HOST),  # over the limit: 429
    ("http", "POST", "/x", [*HOST, ("origin", EVIL)]),  # cross-origin: 403
    ("http", "OPTIONS", "/x", PREFLIGHT),  # refused preflight: 403
    ("http", "GET", "/x", [("host", "evil.example")]),  # unknown Host: 400
    *[("http", "GET", path, HOST) for path in ERRORS],
    ("websocket", "GET", "/limited", HOST),  # over the limit: 429 denial
    ("websocket", "GET", "/ws", [*HOST, ("origin", EVIL)]),
    ("websocket", "GET", "/ws", [("host", "evil.example")]),
    *[("websocket", "GET", path, HOST) for path in ERRORS],
]


def _apps() -> list[Any]:
    rules = [bg.RateLimitRule("/limited", "1/minute")]
    settings = bg.GuardSettings(
        rate_limit={"rules": [{"path": "/limited", "limits": "1/minute"}], "check_routes": False},
        csrf=True,
        trusted_hosts=["app.example"],
        cors={"allow_origins": [APP]},
        errors={},
    )
    envelope = asgi.ErrorEnvelopeMiddleware(_raising)
    return [
        asgi.Guard(_raising, settings),
        asgi.RateLimitMiddleware(envelope, rules=rules, check_routes=False),
        asgi.RateLimitMiddleware(envelope, rules=rules, check_routes=False, legacy_headers=True),
        asgi.CrossOriginProtectionMiddleware(envelope),
        asgi.CORSMiddleware(envelope, allow_origins=[APP]),
        asgi.TrustedHostMiddleware(envelope, policy=["app.example"]),
    ]


@pytest.mark.parametrize("index", range(6), ids=["guard", "ratelimit", "legacy", "csrf", "cors", "hosts"])
async def test_every_refusal_header_name_is_lower_case_bytes(index: int) -> None:
    app = _apps()[index]
    found: list[Any] = []
    for request in REQUESTS:
        found.extend(await _starts(app, *request))
    assert {status for status, _ in found if status >= 400} >= {401, 403, 503}
    wrong = {(status, name) for status, names in found for name in names if name != name.lower()}
    assert wrong == set()
    assert all(isinstance(name, bytes) for _, names in found for name in names)


async def test_every_header_name_of_a_whole_stack_is_lower_case_bytes() -> None:
    """The answers that pass too: an allowed preflight and actual CORS request, legacy rate limit fields, a renamed
    request id header, an HTTPS redirect, a storage outage refused with 503."""
    settings = bg.GuardSettings(
        request_id={"header": "X-Correlation-ID"},
        rate_limit={"default_limits": "100/minute", "legacy_headers": True},
        cors={"allow_origins": [APP], "allow_methods": ["GET", "PUT"], "expose_headers": ["X-Total"]},
        https_redirect={"enabled": True},
    )
    guard = asgi.Guard(_raising, settings)
    allowed = [*HOST, ("origin", APP), ("access-control-request-method", "PUT")]
    found = [
        *await _starts(guard, "http", "OPTIONS", "/x", allowed),
        *await _starts(guard, "http", "GET", "/x", [*HOST, ("origin", APP)]),
        *await _starts(guard, "http", "GET", "/x", [*HOST, ("origin", EVIL)]),
        *await _starts(guard, "http", "GET", "/503", HOST),
    ]
    http = _scope("http", "GET", "/x", HOST)
    http["scheme"] = "http"
    sent: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append((message["status"], [name for name, _ in message["headers"]]) if "status" in message else None)

    await guard(http, lambda: None, send)
    found.extend(s for s in sent if s is not None)
    assert {status for status, _ in found} == {200, 204, 301, 503}
    wrong = {(status, name) for status, names in found for name in names if name != name.lower()}
    assert wrong == set()
