"""HTML keeps working with the default install: a real browser (headless Chromium) loads pages of Django's admin,
a Flask/Jinja template and a Starlette ``Jinja2Templates`` page behind the whole stack with no settings, as the
quickstarts install it.

Each page must be styled by its own stylesheet, run its own scripts (its own files, and inline code carrying
this response's nonce), report zero Content Security Policy violations (``securitypolicyviolation`` events and
console messages), and the admin's login form must sign the superuser in. Before HTML responses got a document
policy, they got the API CSP (``default-src 'none'; form-action 'none'``): no stylesheet, no script, a form
that could not be sent. Every server is started and stopped by the test; only 127.0.0.1 is visited.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import Page, chromium_path
from .servers import run_asgi, run_wsgi

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
UNSTYLED = "rgba(0, 0, 0, 0)"
PASSWORD = "tests-only-admin-password"  # noqa: S105 - a throwaway superuser of a loopback test server

STYLESHEET = "#styled { background-color: rgb(10, 20, 30); }"
SCRIPT = 'document.getElementById("file").textContent = "ran";'
# One template for Flask and Starlette: a same-origin stylesheet and script file, a nonced inline style and script.
TEMPLATE = """<!doctype html><html><head><title>t</title>
<link rel="stylesheet" href="/style.css"><script src="/app.js" defer></script>
<style nonce="{{ NONCE }}">#inline { color: rgb(1, 2, 3); font-family: Dot, serif; }
@font-face { font-family: Dot; src: url(data:font/woff2;base64,d09GMgABAAAAAA==); }</style></head>
<body><p id="styled">styled</p><p id="inline">inline style</p><p id="file">blocked</p><p id="out">blocked</p>
<script nonce="{{ NONCE }}">document.getElementById("out").textContent = "ran";</script></body></html>"""


def _assert_clean(page: Page) -> None:
    assert page.page_violations() == []
    assert page.console_violations() == []


def _assert_template_works(page: Page, url: str) -> None:
    page.goto(url)
    assert page.evaluate('document.getElementById("out").textContent') == "ran"
    assert page.evaluate('document.getElementById("file").textContent') == "ran"
    assert page.evaluate('getComputedStyle(document.getElementById("styled")).backgroundColor') == "rgb(10, 20, 30)"
    assert page.evaluate('getComputedStyle(document.getElementById("inline")).color') == "rgb(1, 2, 3)"
    # a font the stylesheet inlines as a data: URI is loaded, not refused (the bytes are no real font: only the
    # policy is tested)
    page.evaluate('document.fonts.load("16px Dot").catch(() => null)')
    _assert_clean(page)


@pytest.fixture
def page() -> Iterator[Page]:
    with Page() as browser:
        yield browser


# -- Django's admin -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chromium_path()
    db = tmp_path_factory.mktemp("dj") / "db.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BG_DJ_DB": str(db), "BG_DJ_ADMIN_PASSWORD": PASSWORD}
    proc = subprocess.Popen(  # noqa: S603 - our own test app, loopback only
        [sys.executable, "-m", "tests.django_admin_app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        line = proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            proc.kill()
            raise RuntimeError("the Django admin app did not start: " + proc.stderr.read().decode()[-2000:])
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


def test_django_admin_login_page_is_styled_and_breaks_no_csp_rule(django_admin: str, page: Page) -> None:
    page.goto(django_admin + "/admin/login/")
    assert page.evaluate("document.querySelector('#header') !== null")
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor") != UNSTYLED
    loaded = "[...document.styleSheets].filter(s => s.href && s.href.includes('/static/admin/css/')).length"
    assert page.evaluate(loaded) >= 2  # base.css, login.css... all applied
    _assert_clean(page)


def test_django_admin_login_form_signs_the_superuser_in(django_admin: str, page: Page) -> None:
    page.goto(django_admin + "/admin/login/?next=/admin/")
    page.evaluate(
        f"document.getElementById('id_username').value = 'admin'; "
        f"document.getElementById('id_password').value = {PASSWORD!r}"
    )
    page.click_and_wait("#login-form [type=submit]")
    assert page.evaluate("location.pathname") == "/admin/"
    assert page.evaluate("document.getElementById('user-tools') !== null")  # only shown to a signed-in user
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor") != UNSTYLED
    _assert_clean(page)  # the console log spans both pages: the login page and the index


def test_django_template_nonce_is_the_one_the_csp_carries(django_admin: str, page: Page) -> None:
    page.goto(django_admin + "/nonce/")
    assert page.evaluate('document.getElementById("out").textContent') == "ran"
    assert page.evaluate('getComputedStyle(document.getElementById("out")).color') == "rgb(1, 2, 3)"
    _assert_clean(page)


# -- Flask and Jinja ----------------------------------------------------------------------------------------------


def _flask_app() -> object:
    from flask import Flask, Response, render_template_string

    import backend_guard.flask

    app = Flask(__name__)
    backend_guard.flask.Guard(app)  # every default, as docs/quickstart/flask.md installs it

    @app.get("/")
    def home() -> str:
        return render_template_string(TEMPLATE.replace("NONCE", "csp_nonce()"))

    @app.get("/style.css")
    def style() -> Response:
        return Response(STYLESHEET, mimetype="text/css")

    @app.get("/app.js")
    def script() -> Response:
        return Response(SCRIPT, mimetype="text/javascript")

    return app


def test_flask_jinja_template_with_a_nonce_runs_and_breaks_no_csp_rule(page: Page) -> None:
    chromium_path()
    with run_wsgi(_flask_app()) as url:
        _assert_template_works(page, url + "/")


# -- Starlette and Jinja2Templates --------------------------------------------------------------------------------


def _starlette_app() -> object:
    import jinja2
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from starlette.templating import Jinja2Templates

    from backend_guard.asgi import Guard
    from backend_guard.integrations._headers_jinja import register_jinja

    source = TEMPLATE.replace("NONCE", "csp_nonce(request)")
    templates = Jinja2Templates(
        env=jinja2.Environment(loader=jinja2.DictLoader({"page.html": source}), autoescape=True)
    )
    register_jinja(templates.env)

    async def home(request: Request) -> Response:
        return templates.TemplateResponse(request, "page.html")

    async def style(request: Request) -> Response:
        return Response(STYLESHEET, media_type="text/css")

    async def script(request: Request) -> Response:
        return Response(SCRIPT, media_type="text/javascript")

    app = Starlette(routes=[Route("/", home), Route("/style.css", style), Route("/app.js", script)])
    return Guard(app)  # every default


def test_starlette_jinja2templates_page_with_a_nonce_runs_and_breaks_no_csp_rule(page: Page) -> None:
    chromium_path()
    with run_asgi(_starlette_app()) as url:
        _assert_template_works(page, url + "/")


def test_a_pages_own_form_post_carries_its_origin_for_csrf_checks(page: Page) -> None:
    # Under "Referrer-Policy: no-referrer" a browser sends "Origin: null" with a form post, which CSRF checks
    # (Django's) refuse; HTML documents get strict-origin-when-cross-origin.
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from backend_guard.asgi import Guard

    async def form(request: Request) -> HTMLResponse:
        return HTMLResponse('<!doctype html><form method="post" action="/echo"><button id="send">send</button></form>')

    async def echo(request: Request) -> HTMLResponse:
        return HTMLResponse(f'<!doctype html><p id="origin">{request.headers.get("origin")}</p>')

    chromium_path()
    app = Guard(Starlette(routes=[Route("/", form), Route("/echo", echo, methods=["POST"])]))
    with run_asgi(app) as url:
        page.goto(url + "/")
        page.click_and_wait("#send")
        assert page.evaluate('document.getElementById("origin").textContent') == url
        _assert_clean(page)


# -- A revalidated page (304 Not Modified) ------------------------------------------------------------------------


def test_a_page_revalidated_with_a_304_stays_styled_and_breaks_no_csp_rule(page: Page) -> None:
    # A browser copies a 304's headers, CSP included, onto the page it cached. A 304 has no Content-Type: it
    # must not bring the API CSP (default-src 'none'), which would leave the cached page unstyled, its nonced
    # script blocked.
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    from backend_guard import csp_nonce
    from backend_guard.asgi import Guard

    etag = '"page-v1"'
    answered: list[int] = []

    async def home(request: Request) -> Response:
        cache = {"ETag": etag, "Cache-Control": "no-cache"}  # cached, revalidated on every use
        if request.headers.get("if-none-match") == etag:
            answered.append(304)
            return Response(status_code=304, headers=cache)
        answered.append(200)
        return HTMLResponse(TEMPLATE.replace("{{ NONCE }}", csp_nonce(request)), headers=cache)

    async def style(request: Request) -> Response:
        return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "no-store"})

    async def script(request: Request) -> Response:
        return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-store"})

    chromium_path()
    app = Guard(Starlette(routes=[Route("/", home), Route("/style.css", style), Route("/app.js", script)]))
    with run_asgi(app) as url:
        _assert_template_works(page, url + "/")
        _assert_template_works(page, url + "/")  # the cached page, revalidated
    assert answered == [200, 304]
