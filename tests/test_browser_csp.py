"""A real browser (headless Chromium) enforces the CSP that SecureHeadersMiddleware sends with the web preset.

The page has two inline scripts: one carries this response's nonce (``bg.csp_nonce(request)``), one does not.
Chromium must run the first and block the second. A control page served without the middleware runs both,
so the blocking is the policy's doing. Only 127.0.0.1 is ever visited.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

import backend_guard as bg
from backend_guard.asgi import SecureHeadersMiddleware

from .browser import chromium_path, dump_dom
from .servers import run_asgi

pytestmark = [pytest.mark.server, pytest.mark.slow]

PAGE = """<!doctype html><html><body>
<div id="with-nonce">blocked</div><div id="without-nonce">blocked</div>
<script nonce="{nonce}">document.getElementById("with-nonce").textContent = "ran";</script>
<script>document.getElementById("without-nonce").textContent = "ran";</script>
</body></html>"""


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE.format(nonce=bg.csp_nonce(request)))


async def page_with_stale_nonce(request: Request) -> HTMLResponse:
    bg.csp_nonce(request)  # this response's nonce exists, but the page uses another (e.g. a cached one)
    return HTMLResponse(PAGE.format(nonce="c3RhbGUtbm9uY2UtZnJvbS1jYWNoZQ"))


def _app() -> Starlette:
    return Starlette(routes=[Route("/", page), Route("/stale", page_with_stale_nonce)])


@pytest.fixture(scope="module")
def urls() -> Iterator[tuple[str, str]]:
    chromium_path()
    protected = SecureHeadersMiddleware(_app(), policy=bg.SecureHeaders(preset="web"))
    with run_asgi(protected) as guarded, run_asgi(_app()) as bare:
        yield guarded, bare


def _outcome(url: str) -> dict[str, str]:
    dom = dump_dom(url, budget_ms=1500)
    found = dict(re.findall(r'<div id="([a-z-]+)">([^<]*)</div>', dom))
    assert set(found) == {"with-nonce", "without-nonce"}, dom[:400]
    return found


def test_csp_runs_the_nonced_script_and_blocks_the_other(urls: tuple[str, str]) -> None:
    guarded, _ = urls
    assert _outcome(guarded + "/") == {"with-nonce": "ran", "without-nonce": "blocked"}


def test_without_the_policy_both_scripts_run(urls: tuple[str, str]) -> None:
    _, bare = urls
    assert _outcome(bare + "/") == {"with-nonce": "ran", "without-nonce": "ran"}


def test_a_nonce_other_than_this_responses_is_blocked(urls: tuple[str, str]) -> None:
    guarded, _ = urls
    assert _outcome(guarded + "/stale") == {"with-nonce": "blocked", "without-nonce": "blocked"}
