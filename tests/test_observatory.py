"""Both presets score A+ (>= 120) under MDN HTTP Observatory's own analyzer and grader.

The headers come from responses of a real uvicorn server on loopback running a small app behind
SecureHeadersMiddleware; ``tests/.observatory/grade.mjs`` feeds them to the npm package
``@mdn/mdn-http-observatory``. Install it (no install scripts: they download lists) with::

    npm install --ignore-scripts --prefix tests/.observatory @mdn/mdn-http-observatory
    echo '{}' > tests/.observatory/node_modules/@mdn/mdn-http-observatory/conf/hsts-preload.json

The test skips when node or the package is missing, unless BACKEND_GUARD_REQUIRE_OBSERVATORY=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend_guard.asgi._headers import SecureHeadersMiddleware
from backend_guard.clientip import ClientIP
from backend_guard.headers import SecureHeaders, csp_nonce

from .conftest import free_port

HERE = Path(__file__).parent / ".observatory"
PACKAGE = HERE / "node_modules" / "@mdn" / "mdn-http-observatory"
REQUIRE = os.environ.get("BACKEND_GUARD_REQUIRE_OBSERVATORY") == "1"

pytestmark = pytest.mark.server


def _observatory_problem() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PACKAGE / "src" / "analyzer").is_dir():
        return f"@mdn/mdn-http-observatory is not installed under {HERE} (see this module's docstring)"
    if not (PACKAGE / "conf" / "hsts-preload.json").is_file():
        return f"{PACKAGE}/conf/hsts-preload.json is missing (put {{}} in it)"
    return None


@pytest.fixture(scope="module", autouse=True)
def observatory() -> None:
    problem = _observatory_problem()
    if problem:
        if REQUIRE:
            pytest.fail(f"BACKEND_GUARD_REQUIRE_OBSERVATORY=1 but {problem}")
        pytest.skip(problem)


def grade(url: str, response: httpx.Response) -> dict[str, Any]:
    payload = {
        "url": url,
        "status": response.status_code,
        "headers": list(response.headers.multi_items()),
        "body": response.text,
    }
    done = subprocess.run(
        ["node", str(HERE / "grade.mjs")],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=60,
        check=False,
        cwd=HERE,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Mount, Route

    async def api(request: Request) -> Response:
        return JSONResponse({"items": [1, 2, 3]})

    async def page(request: Request) -> Response:
        nonce = csp_nonce(request)
        return HTMLResponse(
            f'<!doctype html><html><head><title>t</title><script nonce="{nonce}">console.log(1)</script>'
            "</head><body><p>hello</p></body></html>"
        )

    proxy = ClientIP(["127.0.0.1"])  # the test client plays our TLS-terminating proxy
    api_app = SecureHeadersMiddleware(Starlette(routes=[Route("/", api)]), client_ip=proxy)
    web_app = SecureHeadersMiddleware(
        Starlette(routes=[Route("/", page)]), policy=SecureHeaders(preset="web"), client_ip=proxy
    )
    # an HTML page under the default ("api") preset: it gets the document policy
    html_app = SecureHeadersMiddleware(Starlette(routes=[Route("/", page)]), client_ip=proxy)
    bare = Starlette(routes=[Route("/", api)])
    return Starlette(
        routes=[Mount("/api", api_app), Mount("/web", web_app), Mount("/html", html_app), Mount("/bare", bare)]
    )


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app(), host="127.0.0.1", port=port, log_level="critical", lifespan="off", loop="asyncio")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}


@pytest.mark.parametrize("preset", ["api", "web", "html"])  # html: a page under the default preset
def test_preset_scores_a_plus(server: str, preset: str) -> None:
    response = httpx.get(f"{server}/{preset}/", headers=HTTPS)
    assert response.status_code == 200
    result = grade(f"https://127.0.0.1/{preset}/", response)
    failed = {name: t["result"] for name, t in result["tests"].items() if not t["pass"]}
    assert failed == {}
    assert result["grade"] == "A+", result
    assert result["score"] >= 120, result


def test_control_without_the_middleware_scores_badly(server: str) -> None:
    result = grade("https://127.0.0.1/bare/", httpx.get(f"{server}/bare/", headers=HTTPS))
    assert result["score"] < 100
    assert not result["tests"]["content-security-policy"]["pass"]
