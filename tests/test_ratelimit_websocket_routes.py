"""``@limiter.limit`` on a FastAPI or Starlette WebSocket endpoint: the handshake is counted, and one over the
limit is refused before ``websocket.accept`` through the shared WebSocket refusal (a 429 denial response where
the server offers one, else a close with 1008), so the endpoint never runs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import WebSocket  # at module level: FastAPI resolves the endpoint's (postponed) annotations here

from backend_guard.ratelimit import RateLimiter

from .servers import run_asgi


def _apps(limiter: RateLimiter) -> dict[str, tuple[Any, list[int]]]:
    """A FastAPI and a Starlette app whose ``/ws`` endpoint is decorated with ``2/minute``, each with the list
    its endpoint appends to when it runs."""
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    fast_runs: list[int] = []
    plain_runs: list[int] = []
    fast = FastAPI()

    @fast.websocket("/ws")
    @limiter.limit("2/minute")
    async def fast_socket(websocket: WebSocket) -> None:
        fast_runs.append(1)
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    @limiter.limit("2/minute")
    async def plain_socket(websocket: Any) -> None:
        plain_runs.append(1)
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    plain = Starlette(routes=[WebSocketRoute("/ws", plain_socket)])
    return {"fastapi": (fast, fast_runs), "starlette": (plain, plain_runs)}


@pytest.mark.server
@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
def test_a_decorated_websocket_endpoint_gets_n_handshakes_then_a_429_before_accept(framework: str) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    app, runs = _apps(RateLimiter())[framework]
    with run_asgi(app) as base:
        url = base.replace("http://", "ws://") + "/ws"
        for _ in range(2):
            with connect(url, open_timeout=5) as ws:
                assert ws.recv(timeout=5) == "hello"
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=5)
    response = refused.value.response
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.body or b"")["code"] == "rate-limited"
    assert len(runs) == 2  # the refused handshake never ran the endpoint


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
async def test_without_the_denial_extension_the_refusal_is_a_close_with_1008(framework: str) -> None:
    app, runs = _apps(RateLimiter())[framework]

    async def handshake() -> list[dict[str, Any]]:
        scope = {"type": "websocket", "scheme": "ws", "path": "/ws", "raw_path": b"/ws", "query_string": b"",
                 "root_path": "", "client": ("192.0.2.7", 5000), "headers": [(b"host", b"app.example")],
                 "subprotocols": [], "extensions": {}}  # fmt: skip
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"} if not sent else {"type": "websocket.disconnect", "code": 1000}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    for _ in range(2):
        assert (await handshake())[0]["type"] == "websocket.accept"
    assert await handshake() == [{"type": "websocket.close", "code": 1008}]
    assert len(runs) == 2
