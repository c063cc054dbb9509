"""A real browser (headless Chromium) honours what the middlewares answer: CORS here, CSP nonces too.

Pages are served from one loopback origin and call an API on another port. The test starts and stops every
server itself; only 127.0.0.1 is ever visited.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from backend_guard.asgi import CORSMiddleware
from backend_guard.cors import CORSPolicy

from .browser import chromium_path, dump_dom
from .servers import run_asgi

pytestmark = [pytest.mark.server, pytest.mark.slow]

PAGE = """<!doctype html><html><body><div id="out">pending</div><script>
const p = new URLSearchParams(location.search);
fetch(p.get("api"), {credentials: p.get("cred") || "omit", headers: p.get("hdr") ? {"X-Custom": "1"} : {}})
  .then(r => r.json()).then(j => { document.getElementById("out").textContent = "ok:" + j.value; })
  .catch(e => { document.getElementById("out").textContent = "blocked"; });
</script></body></html>"""


def _page_app() -> Starlette:
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    return Starlette(routes=[Route("/", page)])


def _api_app(allowed_origin: str) -> CORSMiddleware:
    async def data(request: Request) -> JSONResponse:
        return JSONResponse({"value": 42}, headers={"Set-Cookie": "s=1; Path=/; SameSite=None"})

    app = Starlette(routes=[Route("/nocred/data", data), Route("/cred/data", data)])
    return CORSMiddleware(
        app,
        policy=[
            CORSPolicy(allow_origins=[allowed_origin], allow_credentials=True, paths=["/cred"]),
            CORSPolicy(allow_origins=[allowed_origin], allow_credentials=False, paths=["/nocred"]),
        ],
    )


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str, str]]:
    chromium_path()
    with ExitStack() as stack:
        good_page = stack.enter_context(run_asgi(_page_app()))
        bad_page = stack.enter_context(run_asgi(_page_app()))
        api = stack.enter_context(run_asgi(_api_app(good_page)))
        yield good_page, bad_page, api


def _result(page: str, api: str, path: str, cred: str = "omit", hdr: bool = False) -> str:
    url = f"{page}/?api={api}{path}&cred={cred}" + ("&hdr=1" if hdr else "")
    dom = dump_dom(url)
    match = re.search(r'<div id="out">([^<]*)</div>', dom)
    assert match, f"page did not render: {dom[:300]!r}"
    return match.group(1)


def test_allowed_origin_reads_the_response(servers: tuple[str, str, str]) -> None:
    good, _, api = servers
    assert _result(good, api, "/nocred/data") == "ok:42"


def test_disallowed_origin_is_blocked_by_the_browser(servers: tuple[str, str, str]) -> None:
    _, bad, api = servers
    assert _result(bad, api, "/nocred/data") == "blocked"


def test_credentials_flow_only_when_configured(servers: tuple[str, str, str]) -> None:
    good, _, api = servers
    assert _result(good, api, "/cred/data", cred="include") == "ok:42"
    assert _result(good, api, "/nocred/data", cred="include") == "blocked"


def test_preflighted_request_with_unlisted_header_is_blocked(servers: tuple[str, str, str]) -> None:
    good, _, api = servers
    assert _result(good, api, "/nocred/data", hdr=True) == "blocked"
