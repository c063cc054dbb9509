"""The ASGI ErrorEnvelope on a WebSocket scope: an exception before ``websocket.accept`` refuses the handshake
with the problem document (a denial response where the server offers one, else a close the server turns into a
403); after it, the error is logged and the socket closed with 1011; nothing of the exception reaches the client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

import backend_guard as bg
from backend_guard.asgi import ErrorEnvelopeMiddleware, Guard

from .servers import run_asgi

DENIAL = {"websocket.http.response": {}}
SECRET = "tok-7f3a-secret"


def _scope(extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "websocket", "scheme": "ws", "path": "/ws", "raw_path": b"/ws", "query_string": b"",
            "root_path": "", "client": ("192.0.2.7", 5000), "headers": [(b"host", b"app.example")],
            "subprotocols": [], "extensions": extensions or {}}  # fmt: skip


async def _call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def failing(stage: str, error: Exception | None = None) -> Any:
    """A WebSocket app raising ``error`` (a RuntimeError naming a secret) before accept, after it, or after its
    own close."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        if stage != "before":
            await send({"type": "websocket.accept"})
        if stage == "closed":
            await send({"type": "websocket.close", "code": 1000})
        raise error or RuntimeError(f"database password {SECRET}")

    return app


@pytest.mark.parametrize("denial", [True, False], ids=["denial-response", "close"])
async def test_an_exception_before_accept_refuses_the_handshake_and_is_logged_once(
    caplog: pytest.LogCaptureFixture, denial: bool
) -> None:
    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"):
        sent = await _call(ErrorEnvelopeMiddleware(failing("before")), _scope(DENIAL if denial else None))
    if denial:
        start, body = sent
        assert start["type"] == "websocket.http.response.start"
        assert start["status"] == 500
        assert dict(start["headers"])[b"content-type"] == b"application/problem+json"
        assert body["type"] == "websocket.http.response.body"
        assert json.loads(body["body"])["status"] == 500
        assert SECRET not in body["body"].decode()
        assert "Traceback" not in body["body"].decode()
    else:
        assert sent == [{"type": "websocket.close", "code": 1008}]  # the server answers the handshake 403
    (record,) = caplog.records
    assert record.exc_info is not None
    assert "500" in record.getMessage()


async def test_a_guard_error_before_accept_keeps_its_status_and_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"):
        sent = await _call(ErrorEnvelopeMiddleware(failing("before", bg.RateLimited(retry_after=7))), _scope(DENIAL))
    assert sent[0]["status"] == 429
    assert dict(sent[0]["headers"])[b"retry-after"] == b"7"
    assert caplog.records == []


async def test_an_exception_after_accept_is_logged_and_closes_the_socket_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"):
        sent = await _call(ErrorEnvelopeMiddleware(failing("after")), _scope(DENIAL))
    assert sent == [{"type": "websocket.accept"}, {"type": "websocket.close", "code": 1011}]
    (record,) = caplog.records
    assert record.exc_info is not None
    assert SECRET not in record.getMessage()


async def test_an_exception_after_the_app_closed_the_socket_is_logged_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"):
        sent = await _call(ErrorEnvelopeMiddleware(failing("closed")), _scope(DENIAL))
    assert sent == [{"type": "websocket.accept"}, {"type": "websocket.close", "code": 1000}]
    assert len(caplog.records) == 1


async def test_a_socket_that_works_passes_through_untouched() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "websocket.accept", "headers": [(b"x-a", b"1")]})
        await send({"type": "websocket.send", "text": "hi"})
        await send({"type": "websocket.close", "code": 1000})

    sent = await _call(ErrorEnvelopeMiddleware(app), _scope(DENIAL))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]


async def test_a_client_disconnect_is_no_server_error(caplog: pytest.LogCaptureFixture) -> None:
    """Starlette's ``WebSocketDisconnect`` (the client left while the endpoint waited), before or after accept, and
    a send failing because the client is gone: not logged, nothing sent after (the socket is gone)."""
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        while True:  # no handler for the disconnect, as most endpoints
            await ws.send_text(await ws.receive_text())

    async def leaves(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hi"})

    sent: list[dict[str, Any]] = []

    def receiver() -> Any:
        messages = iter([{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1001}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        return receive

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            raise OSError("client disconnected")  # what uvicorn's ClientDisconnected is
        sent.append(message)

    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"):
        await ErrorEnvelopeMiddleware(WebSocketRoute("/ws", echo))(_scope(DENIAL), receiver(), send)
        assert sent == [{"type": "websocket.accept", "subprotocol": None, "headers": []}]
        await ErrorEnvelopeMiddleware(leaves)(_scope(DENIAL), receiver(), send)
        assert sent[1:] == [{"type": "websocket.accept"}]
        await ErrorEnvelopeMiddleware(failing("before", _disconnect()))(_scope(DENIAL), receiver(), send)
        assert sent[2:] == []
    assert caplog.records == []


def _disconnect() -> Exception:
    from starlette.websockets import WebSocketDisconnect

    return WebSocketDisconnect(1001)


# -- a real server and a real client ---------------------------------------------------------------------------------


def _starlette(stage: str) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def socket(ws: WebSocket) -> None:
        if stage == "after":
            await ws.accept()
            await ws.send_text("hello")
        raise RuntimeError(f"database password {SECRET}")

    return Starlette(routes=[WebSocketRoute("/ws", socket)])


@pytest.mark.server
def test_uvicorn_refuses_a_failing_handshake_with_the_document_and_closes_a_failing_socket_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from websockets.exceptions import ConnectionClosedError, InvalidStatus
    from websockets.sync.client import connect

    with (
        caplog.at_level(logging.ERROR),
        run_asgi(ErrorEnvelopeMiddleware(_starlette("before"))) as url,
        pytest.raises(InvalidStatus) as refused,
    ):
        connect(url.replace("http://", "ws://") + "/ws", open_timeout=5)
    response = refused.value.response
    assert response.status_code == 500
    assert json.loads(response.body or b"")["status"] == 500
    assert SECRET not in (response.body or b"").decode()
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]  # the server saw no exception

    caplog.clear()
    with (
        caplog.at_level(logging.ERROR),
        run_asgi(ErrorEnvelopeMiddleware(_starlette("after"))) as url,
        connect(url.replace("http://", "ws://") + "/ws", open_timeout=5) as ws,
    ):
        assert ws.recv(timeout=5) == "hello"
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]
    assert [r.name for r in caplog.records] == ["backend_guard.errors"]


@pytest.mark.server
def test_uvicorn_refuses_a_handshake_with_503_while_the_store_is_down() -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from .conftest import free_port

    settings = bg.GuardSettings(
        rate_limit={
            "default_limits": "5/minute",
            "store": f"redis://127.0.0.1:{free_port()}/0",
            "on_storage_error": "raise",
        }
    )
    guard = Guard(_starlette("after"), settings)
    try:
        with run_asgi(guard) as url, pytest.raises(InvalidStatus) as refused:
            connect(url.replace("http://", "ws://") + "/ws", open_timeout=5)
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["content-type"] == "application/problem+json"
    finally:
        guard.parts.store.close()
