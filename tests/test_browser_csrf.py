"""Headless Chromium against cross-origin request protection and cookie tokens (issue #25's browser proof).

The app runs behind ``asgi.Guard`` with ``GuardSettings(token_cookies=...)`` (which switches ``csrf`` on) and keeps
its tokens in the ``TokenCookies`` of ``parts.token_cookies(tm)``.
Attacker pages are served by another server on another port, under two names for loopback:

- ``http://localhost:B`` is another *site* than the app at ``http://127.0.0.1:A`` (an IP address is its own
  site): Chromium sends ``Sec-Fetch-Site: cross-site`` and no ``SameSite=Lax`` cookie;
- ``http://127.0.0.1:B`` is another *origin* of the same site (ports do not make sites): Chromium sends
  ``Sec-Fetch-Site: same-site`` and does send the ``SameSite=Lax`` access cookie, which is why SameSite alone
  is no CSRF defence for a sibling origin, and why ``same-site`` is refused by default.

The app's own page sends ``Sec-Fetch-Site: same-origin`` for its fetch and its form post; both pass. A WebSocket
handshake carries no ``Sec-Fetch-Site`` in Chromium (checked with Chromium 156), so its ``Origin`` decides.

What reached the server is read server-side: a recorder outside the Guard notes each request's headers and the
status answered, and the state-changing handler appends to a list, which must stay empty for a refused request.

Secure cookies on plain http: Chromium treats loopback (``127.0.0.1`` and ``localhost``) as potentially
trustworthy, and stores ``Secure`` cookies, ``__Host-`` and ``__Secure-`` prefixed ones included, from
``http://127.0.0.1``; the login test below proves it by the cookies the browser sends back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import HTMLResponse
from starlette.applications import Starlette
from starlette.routing import Route

import backend_guard as bg
from backend_guard.asgi import Guard

from .browser import Page, chromium_path
from .servers import run_asgi

pytestmark = [pytest.mark.server, pytest.mark.slow]

ACCESS = "__Host-access"
REFRESH = "__Secure-refresh"
WAIT = 15.0  # seconds any one browser action may take

OWN_PAGE = "<!doctype html><html><body><p id='own'>app</p></body></html>"

# The attacker's auto-submitting form: a top-level cross-origin navigation with a POST, the classic CSRF.
ATTACK_FORM = """<!doctype html><html><body>
<form id="f" method="POST" enctype="application/x-www-form-urlencoded"><input name="amount" value="1000"></form>
<script>
const f = document.getElementById("f");
f.action = new URLSearchParams(location.search).get("target");
f.submit();
</script></body></html>"""

BLANK = "<!doctype html><html><body><p id='evil'>attacker</p></body></html>"


@dataclass
class Seen:
    """One request as it reached the server (before the Guard) and the status it was answered with."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int = 0
    set_cookies: list[str] = field(default_factory=list)
    content_type: str = ""

    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        jar.load(self.headers.get("cookie", ""))
        return {name: morsel.value for name, morsel in jar.items()}

    def set_cookie(self, name: str) -> str | None:
        for header in self.set_cookies:
            first = header.split(";", 1)[0]
            key, _, value = first.partition("=")
            if key.strip() == name:
                return value
        return None


class Recorder:
    """ASGI wrapper noting every HTTP request and the status answered (outside the Guard, so refusals show)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[Seen] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope.get("method", "WEBSOCKET")
        entry = Seen(method, scope["path"], scope["query_string"].decode("latin-1"), headers)
        self.seen.append(entry)

        async def noting(message: Any) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                entry.status = message["status"]
                fields = message.get("headers", [])
                entry.set_cookies = [v.decode("latin-1") for k, v in fields if k.lower() == b"set-cookie"]
                entry.content_type = next((v.decode() for k, v in fields if k.lower() == b"content-type"), "")
            elif kind == "websocket.accept":
                entry.status = 101
            elif kind == "websocket.close" and not entry.status:
                entry.status = 403  # closed before accept: the server answers the handshake with 403
            await send(message)

        await self.app(scope, receive, noting)

    def last(self, method: str, path: str) -> Seen:
        """The latest answered ``method path`` (the browser's own requests, such as the favicon, interleave)."""
        for entry in reversed(self.seen):
            if (entry.method, entry.path) == (method, path) and entry.status:
                return entry
        raise AssertionError(f"no answered {method} {path}")

    def find(self, path: str, query: str) -> Seen:
        """The answered request for ``path?query``, waited for (a form submission navigates asynchronously)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for entry in self.seen:
                if (entry.path, entry.query) == (path, query) and entry.status:
                    return entry
            time.sleep(0.05)
        raise AssertionError(f"no answered request for {path}?{query}; seen: {[(s.path, s.query) for s in self.seen]}")


@dataclass
class Env:
    app: str  # http://127.0.0.1:A
    cross_site: str  # http://localhost:B
    same_site: str  # http://127.0.0.1:B
    recorder: Recorder
    transfers: list[str]
    tm: bg.TokenManager


def _app(transfers: list[str]) -> tuple[Recorder, bg.TokenManager]:
    tm = bg.TokenManager(
        "browser-csrf-tests-secret-" + "k" * 20, "HS256", issuer="https://auth.test", audience="app", store="memory://"
    )
    # Cookie tokens in the settings switch the Guard's CrossOriginProtection on (csrf is never mentioned); the
    # companion checks cookie-authenticated requests with that same policy, after the Guard has refused hostile ones.
    app = FastAPI()
    guard = Guard(app, bg.GuardSettings(token_cookies={"refresh_path": "/auth/refresh"}))
    assert guard.parts.csrf is not None
    cookies = guard.parts.token_cookies(tm)

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse(OWN_PAGE)

    @app.post("/transfer")
    async def transfer(request: Request) -> HTMLResponse:
        transfers.append(request.url.query)  # the state change a forged request must never reach
        return HTMLResponse("<p id='done'>done</p>")

    @app.websocket("/ws")
    async def socket(websocket: WebSocket) -> None:
        transfers.append("ws:" + websocket.url.query)  # a socket a forged handshake must never open
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    @app.post("/login")
    async def login(response: Response) -> dict[str, str]:
        cookies.set(response, await tm.aissue("user-42", {"scope": "read"}))
        return {"user": "user-42"}

    @app.get("/me")
    @cookies.require_auth(scopes="read")
    async def me(request: Request) -> dict[str, str]:
        return {"user": request.state.auth["sub"]}

    @app.post("/auth/refresh")
    async def refresh(request: Request) -> Any:
        return await cookies.arefresh(request)

    @app.post("/auth/refresh/logout")
    async def logout(request: Request) -> Any:
        return await cookies.alogout(request)

    recorder = Recorder(guard)
    return recorder, tm


def _attacker_app() -> Starlette:
    async def form(request: Any) -> HTMLResponse:
        return HTMLResponse(ATTACK_FORM)

    async def blank(request: Any) -> HTMLResponse:
        return HTMLResponse(BLANK)

    return Starlette(routes=[Route("/form", form), Route("/", blank)])


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    chromium_path()
    transfers: list[str] = []
    recorder, tm = _app(transfers)
    with ExitStack() as stack:
        app = stack.enter_context(run_asgi(recorder))
        attacker = stack.enter_context(run_asgi(_attacker_app()))
        yield Env(app, attacker.replace("127.0.0.1", "localhost"), attacker, recorder, transfers, tm)


@pytest.fixture
def page() -> Iterator[Page]:
    with Page(timeout=WAIT) as browser:
        yield browser


def _fetch(page: Page, url: str, method: str = "POST") -> str:
    """``fetch(url, {credentials: "include"})`` in the page: ``"<status>"``, or ``"error"`` when unreadable."""
    script = (
        f"fetch({json.dumps(url)}, {{method: {json.dumps(method)}, credentials: 'include', body: "
        f"{'null' if method == 'GET' else json.dumps('amount=1000')}}})"
        ".then(r => String(r.status), e => 'error')"
    )
    result = page.evaluate(script)
    assert isinstance(result, str)
    return result


def _login(env: Env, page: Page) -> Seen:
    page.goto(env.app + "/")
    assert _fetch(page, "/login") == "200"
    return env.recorder.last("POST", "/login")


def _refused(seen: Seen, site: str) -> None:
    """The Guard answered 403 problem+json, and the browser said where the request came from."""
    assert seen.headers.get("sec-fetch-site") == site
    assert (seen.status, seen.content_type) == (403, "application/problem+json")


def _no_transfer(env: Env, marker: str) -> None:
    assert not [q for q in env.transfers if marker in q], "the handler ran for a forged request"


def test_a_cross_site_form_post_is_refused_before_the_handler(env: Env, page: Page) -> None:
    _login(env, page)
    target = f"{env.app}/transfer?case=xs-form"
    page.goto(f"{env.cross_site}/form?target={target}")
    seen = env.recorder.find("/transfer", "case=xs-form")
    _refused(seen, "cross-site")
    assert seen.headers.get("origin") == env.cross_site
    assert ACCESS not in seen.cookies()  # SameSite=Lax: not sent on a cross-site POST
    _no_transfer(env, "xs-form")


def test_a_cross_site_fetch_with_credentials_is_refused_before_the_handler(env: Env, page: Page) -> None:
    _login(env, page)
    page.goto(env.cross_site + "/")
    # A "simple" POST: no preflight, the browser sends it; CORS would only hide the answer from the script.
    assert _fetch(page, f"{env.app}/transfer?case=xs-fetch") == "error"
    _refused(env.recorder.find("/transfer", "case=xs-fetch"), "cross-site")
    _no_transfer(env, "xs-fetch")


def test_another_port_of_the_same_host_is_same_site_and_refused(env: Env, page: Page) -> None:
    _login(env, page)
    page.goto(f"{env.same_site}/form?target={env.app}/transfer?case=ss-form")
    form = env.recorder.find("/transfer", "case=ss-form")
    page.goto(env.same_site + "/")
    assert _fetch(page, f"{env.app}/transfer?case=ss-fetch") == "error"
    fetched = env.recorder.find("/transfer", "case=ss-fetch")
    for seen in (form, fetched):
        _refused(seen, "same-site")
        assert seen.headers.get("origin") == env.same_site
        # Same site: the SameSite=Lax access cookie IS sent; only the cross-origin protection stops the request.
        assert ACCESS in seen.cookies()
    _no_transfer(env, "ss-")


def test_the_apps_own_form_post_and_fetch_pass(env: Env, page: Page) -> None:
    page.goto(env.app + "/")
    assert _fetch(page, "/transfer?case=own-fetch") == "200"
    fetched = env.recorder.find("/transfer", "case=own-fetch")
    page.goto(f"{env.app}/")
    page.evaluate(
        "(() => { const f = document.createElement('form'); f.method = 'POST'; f.action = '/transfer?case=own-form';"
        " document.body.appendChild(f); f.submit(); return 1; })()"
    )
    form = env.recorder.find("/transfer", "case=own-form")
    for seen in (fetched, form):
        assert seen.headers.get("sec-fetch-site") == "same-origin"
        assert seen.status == 200
    assert "case=own-fetch" in env.transfers
    assert "case=own-form" in env.transfers


def test_login_cookies_are_hidden_from_scripts_sent_back_rotated_and_cleared(env: Env, page: Page) -> None:
    login = _login(env, page)
    first_access, first_refresh = login.set_cookie(ACCESS), login.set_cookie(REFRESH)
    assert first_access
    assert first_refresh
    assert page.evaluate("document.cookie") == ""  # HttpOnly: the page's script sees nothing

    assert page.evaluate("fetch('/me').then(r => r.json()).then(j => j.user)") == "user-42"
    assert env.recorder.last("GET", "/me").cookies() == {
        ACCESS: first_access
    }  # sent back; the refresh cookie stays on its path

    assert _fetch(page, "/auth/refresh") == "200"
    rotated = env.recorder.last("POST", "/auth/refresh")
    assert rotated.cookies().get(REFRESH) == first_refresh  # sent to its path only
    new_access, new_refresh = rotated.set_cookie(ACCESS), rotated.set_cookie(REFRESH)
    assert new_access not in (None, first_access)  # rotation re-sets both cookies with new tokens
    assert new_refresh not in (None, first_refresh)
    assert page.evaluate("document.cookie") == ""
    assert _fetch(page, "/me", "GET") == "200"
    assert env.recorder.last("GET", "/me").cookies() == {ACCESS: new_access}  # the browser took the rotated cookie

    assert _fetch(page, "/auth/refresh/logout") == "204"
    assert env.recorder.last("POST", "/auth/refresh/logout").cookies().get(REFRESH) == new_refresh
    assert _fetch(page, "/me", "GET") == "401"
    assert ACCESS not in env.recorder.last("GET", "/me").cookies()  # cleared in the browser
    # Server-side: the rotated-away refresh token and the logged-out one are both dead.
    for token in (first_refresh, new_refresh):
        with pytest.raises(bg.InvalidToken):
            env.tm.rotate(token)


_OPEN_SOCKET = """new Promise(done => {
  const ws = new WebSocket(%s);
  const timer = setTimeout(() => done("timeout"), 5000);
  ws.onmessage = e => { clearTimeout(timer); done("message:" + e.data); };
  ws.onerror = () => { clearTimeout(timer); done("error"); };
})"""


def test_a_cross_site_websocket_is_refused_and_the_own_one_opens(env: Env, page: Page) -> None:
    _login(env, page)
    socket = env.app.replace("http://", "ws://") + "/ws?case="
    for origin, case in ((env.cross_site, "xs"), (env.same_site, "ss")):
        page.goto(origin + "/")
        assert page.evaluate(_OPEN_SOCKET % json.dumps(socket + case)) == "error"
        seen = env.recorder.find("/ws", "case=" + case)
        # Chromium sends no Sec-Fetch-Site on a WebSocket handshake: the Origin decides (origin-mismatch).
        assert seen.headers.get("origin") == origin
        assert (seen.status, seen.content_type) == (403, "application/problem+json")
    assert not {"ws:case=xs", "ws:case=ss"} & set(env.transfers), "a forged handshake reached the handler"
    page.goto(env.app + "/")
    assert page.evaluate(_OPEN_SOCKET % json.dumps(socket + "own")) == "message:hello"
    assert env.recorder.find("/ws", "case=own").status == 101
    assert "ws:case=own" in env.transfers
