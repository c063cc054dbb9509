"""Run by tests/test_bytes_warnings.py under ``python -bb``: the ASGI and WSGI stacks on common requests (CORS,
cross-origin protection, secure headers on an HTML page, a repeated request id), where a bytes value compared with
a str one is an error. Exits 0 and prints "ok" when every answer is the expected one."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import backend_guard as bg
from backend_guard import asgi, wsgi

SETTINGS = bg.GuardSettings(
    cors={"allow_origins": ["https://app.example.com"], "allow_methods": ["GET", "POST"]},
    csrf={"trusted_origins": ["https://partner.example.com"]},
    rate_limit={"default_limits": "100/minute"},
    secure_headers={"preset": "web"},
)

#: (method, request headers as ASGI sends them, the status both stacks answer with)
REQUESTS: list[tuple[str, list[tuple[bytes, bytes]], int]] = [
    ("GET", [(b"origin", b"https://app.example.com"), (b"x-request-id", b"a"), (b"x-request-id", b"b")], 200),
    ("GET", [(b"origin", b"null")], 200),
    ("OPTIONS", [(b"origin", b"https://app.example.com"), (b"access-control-request-method", b"POST")], 204),
    ("POST", [(b"origin", b"https://evil.example"), (b"sec-fetch-site", b"cross-site")], 403),
    ("POST", [(b"origin", b"https://partner.example.com"), (b"sec-fetch-site", b"same-site")], 200),
    ("POST", [(b"sec-fetch-site", b"same-origin"), (b"content-type", b"application/json")], 200),
]


async def page(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"Vary", b"Accept")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"<p>ok</p>"})


def wsgi_page(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Vary", "Accept")])
    return [b"<p>ok</p>"]


async def asgi_statuses() -> list[int]:
    app = asgi.Guard(page, SETTINGS)
    statuses = []
    for method, headers, _ in REQUESTS:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "https",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "headers": [(b"host", b"api.example.com"), *headers],
            "client": ("203.0.113.9", 5000),
            "server": ("api.example.com", 443),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        await app(scope, receive, send)
        statuses.append(sent[0]["status"])
    return statuses


def wsgi_statuses() -> list[int]:
    app = wsgi.Guard(wsgi_page, SETTINGS)
    statuses: list[int] = []
    for method, headers, _ in REQUESTS:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "SERVER_NAME": "api.example.com",
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "203.0.113.9",
            "HTTP_HOST": "api.example.com",
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(),
        }
        for name, value in headers:  # as a WSGI server puts them: repeated fields joined
            key = name.decode().upper().replace("-", "_")
            key = key if key == "CONTENT_TYPE" else f"HTTP_{key}"
            environ[key] = f"{environ[key]}, {value.decode()}" if key in environ else value.decode()
        body = app(environ, lambda status, _headers, exc_info=None: statuses.append(int(status[:3])))
        b"".join(body)
        getattr(body, "close", lambda: None)()
    return statuses


def main() -> None:
    expected = [status for _, _, status in REQUESTS]
    got = asyncio.run(asgi_statuses())
    assert got == expected, got
    got = wsgi_statuses()
    assert got == expected, got
    print("ok")


if __name__ == "__main__":
    main()
