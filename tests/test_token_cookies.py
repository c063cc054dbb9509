"""Tokens in hardened cookies (bg.TokenCookies): set, read, rotate and clear, in FastAPI/Starlette, Flask and Django."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response, WebSocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard._stack import StackParts
from backend_guard.exceptions import CrossOriginRequest
from backend_guard.request import RequestView
from backend_guard.tokens._cookie_jar import CookieSpec, cookie_value

from .conftest import FrozenClock
from .servers import run_asgi

SECRET = "cookie-tests-secret-" + "k" * 20
ACCESS = "__Host-access"
REFRESH = "__Secure-refresh"


def _manager(clock: FrozenClock | None = None) -> bg.TokenManager:
    return bg.TokenManager(
        SECRET,
        "HS256",
        issuer="https://auth.test",
        audience="app",
        store="memory://",
        clock=clock or FrozenClock(),
        grace_window=0,
    )


def _cookies(tm: bg.TokenManager | None = None, **kw: Any) -> bg.TokenCookies:
    kw.setdefault("csrf", bg.CrossOriginProtection())
    kw.setdefault("refresh_path", "/auth/refresh")
    return bg.TokenCookies(tm or _manager(), **kw)


def _set_cookies(headers: list[str]) -> dict[str, dict[str, Any]]:
    """name -> {value, attributes (lower-case)} of each Set-Cookie field."""
    out: dict[str, dict[str, Any]] = {}
    for field in headers:
        first, *attrs = [part.strip() for part in field.split(";")]
        name, _, value = first.partition("=")
        parsed: dict[str, Any] = {"value": value}
        for attr in attrs:
            key, _, val = attr.partition("=")
            parsed[key.lower()] = val or True
        out[name] = parsed
    return out


def _assert_set(found: dict[str, dict[str, Any]], tm: bg.TokenManager) -> None:
    access, refresh = found[ACCESS], found[REFRESH]
    assert access["path"] == "/"
    assert access["samesite"].lower() == "lax"
    assert access["secure"] is True
    assert access["httponly"] is True
    assert "domain" not in access
    assert int(access["max-age"]) == tm.access_ttl
    assert refresh["path"] == "/auth/refresh"
    assert refresh["samesite"].lower() == "strict"
    assert refresh["secure"] is True
    assert refresh["httponly"] is True
    assert int(refresh["max-age"]) == tm.refresh_ttl
    tm.verify_access(access["value"])


def _assert_cleared(found: dict[str, dict[str, Any]]) -> None:
    assert found[ACCESS]["value"] in ("", '""')
    assert int(found[ACCESS]["max-age"]) == 0
    assert found[REFRESH]["value"] in ("", '""')
    assert int(found[REFRESH]["max-age"]) == 0
    assert found[REFRESH]["path"] == "/auth/refresh"


# --------------------------------------------------------------------------------------------------------------
# Start-up
# --------------------------------------------------------------------------------------------------------------


def test_cookie_mode_without_cross_origin_protection_is_refused_at_start_up() -> None:
    with pytest.raises(bg.ConfigurationError, match="CrossOriginProtection"):
        bg.TokenCookies(_manager())
    # No bare "a middleware covers it" boolean: a declaration is not a protection.
    with pytest.raises(TypeError):
        bg.TokenCookies(_manager(), csrf_protected=True)  # type: ignore[call-arg]
    for bad in (True, False, "on"):
        with pytest.raises(bg.ConfigurationError, match="csrf"):
            bg.TokenCookies(_manager(), csrf=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"access_cookie": "access"}, "access_cookie"),
        ({"access_cookie": "__Secure-access"}, "access_cookie"),
        ({"refresh_cookie": "refresh"}, "refresh_cookie"),
        ({"refresh_cookie": "__Secure-a b"}, "refresh_cookie"),
        ({"refresh_path": "auth"}, "refresh_path"),
        ({"refresh_path": "/a;Domain=evil"}, "refresh_path"),
        ({"accept": "query"}, "accept"),
        ({"csrf": "yes"}, "csrf"),
    ],
)
def test_unsafe_cookie_settings_are_refused(kw: dict[str, Any], named: str) -> None:
    with pytest.raises(bg.ConfigurationError, match=named):
        _cookies(**kw)


# --------------------------------------------------------------------------------------------------------------
# Reading: the decision, and Cookie header garbage
# --------------------------------------------------------------------------------------------------------------


def _view(*headers: tuple[str, str], method: str = "GET") -> RequestView:
    return RequestView(method, "/me", headers=tuple(headers), scheme="https", host="app.test")


def test_cookie_value_reads_one_name_and_refuses_conflicting_duplicates() -> None:
    assert cookie_value(["a=1; __Host-access=x.y.z; b"], ACCESS) == "x.y.z"
    assert cookie_value(["a=1", "__Host-access=x.y.z"], ACCESS) == "x.y.z"  # HTTP/2 split fields
    assert cookie_value(["__Host-access=t; __Host-access=t"], ACCESS) == "t"
    assert cookie_value(["__host-access=t"], ACCESS) is None
    with pytest.raises(bg.InvalidToken):
        cookie_value(["__Host-access=t; __Host-access=u"], ACCESS)


@pytest.mark.parametrize("space", ["\xa0", "\x85", "\x0b", "\x0c", "\x1c", "\x1f"])
def test_only_the_whitespace_browsers_trim_is_trimmed_from_a_cookie_name(space: str) -> None:
    # A browser trims only spaces and tabs around a cookie's name, so "\xa0__Host-access" is another cookie to it,
    # one without the prefix's rules: a sibling subdomain may set it (Domain=parent). Python's str.strip() also
    # trims NBSP, NEL and the other Unicode spaces: reading that cookie as __Host-access would let a sibling plant
    # the access cookie the prefix exists to protect (a prefix bypass).
    assert cookie_value([f"{space}{ACCESS}=planted"], ACCESS) is None
    assert cookie_value([f"{ACCESS}{space}=planted"], ACCESS) is None
    assert cookie_value([f"{space}{ACCESS}=planted; {ACCESS}=real"], ACCESS) == "real"
    assert cookie_value([f" \t{ACCESS} \t= real \t"], ACCESS) == "real"  # spaces and tabs: trimmed, as browsers do


def test_a_token_too_large_for_a_browser_cookie_is_refused_not_set_to_be_dropped() -> None:
    # Chromium and Firefox drop a cookie whose name and value pass 4,096 bytes: the login would not stick.
    tm = _manager()
    cookies = _cookies(tm)
    small = tm.issue("u", {"note": "x" * 2000})
    assert all(len(s.name) + len(s.value) <= 4096 for s in cookies.specs(small))
    large = tm.issue("u", {"note": "x" * 3500})  # under max_token_length (8,192): a valid token, too big a cookie
    with pytest.raises(bg.ConfigurationError, match="browsers drop a cookie over 4096") as info:
        cookies.specs(large)
    assert large.access_token not in str(info.value)


def test_a_login_too_large_for_its_cookies_is_ended_not_left_behind() -> None:
    tm = _manager()
    cookies = _cookies(tm)
    with pytest.raises(bg.ConfigurationError):
        cookies.set(Response(), tm.issue("big", {"note": "x" * 3500}))
    assert tm.revoke_subject("big") == 0  # the login set() refused was ended with it


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_refresh_whose_new_cookies_would_not_fit_ends_the_login_logs_and_no_retry_reads_as_reuse(
    caplog: pytest.LogCaptureFixture, asynchronous: bool
) -> None:
    # A key migration with larger signatures (EdDSA -> RS256: +256 characters) pushes a login's tokens past what a
    # cookie holds: the rotation the store made cannot reach the browser, whose retry must not look like a theft.
    from fastapi.testclient import TestClient

    from backend_guard._keys import KeyRing, SigningKey

    clock, store = FrozenClock(), bg.MemoryStore()
    old_pem, _ = bg.generate_key("EdDSA")
    new_pem, _ = bg.generate_key("RS256")
    options: dict[str, Any] = {"issuer": "https://auth.test", "audience": "api", "store": store, "clock": clock}
    before = bg.TokenManager(old_pem, "EdDSA", **options)
    ring = KeyRing([SigningKey.load(old_pem, "EdDSA", verify_until=clock.now + 600), SigningKey.load(new_pem, "RS256")])
    after = bg.TokenManager(ring, **options)
    pair = before.issue("u", {"note": "x" * 2700})
    assert len(REFRESH) + len(pair.refresh_token) <= 4096 < len(REFRESH) + len(pair.refresh_token) + 256
    cookies = _cookies(after)
    app = FastAPI()

    if asynchronous:  # arefresh ends the login through the store's async path, off the event loop's thread

        @app.post("/auth/refresh")
        async def arefresh(request: Request) -> Any:
            return await cookies.arefresh(request)

    else:

        @app.post("/auth/refresh")
        def refresh(request: Request) -> Any:
            return cookies.refresh(request)

    http = TestClient(app, base_url="https://testserver")
    http.cookies.set(REFRESH, pair.refresh_token, domain="testserver.local", path="/auth/refresh")
    with caplog.at_level("ERROR"):
        first = http.post("/auth/refresh", headers={"Origin": "https://testserver"})
    assert first.status_code == 500
    assert first.json()["code"] == "configuration-error"
    assert pair.refresh_token not in first.text
    assert any("ConfigurationError" in r.getMessage() or r.exc_info for r in caplog.records)
    retry = http.post("/auth/refresh", headers={"Origin": "https://testserver"})
    assert retry.status_code == 401
    assert retry.json()["code"] != "token-reused"


def test_a_cookie_spec_keeps_its_token_out_of_repr() -> None:
    spec = CookieSpec(ACCESS, "eyJsecret.x.y", 900, "/", "Lax")
    assert "eyJsecret" not in repr(spec)
    pair = _manager().issue("u1")
    assert pair.access_token not in repr(_cookies().specs(pair))


def test_header_cookie_or_both_per_accept() -> None:
    tm = _manager()
    token = tm.issue("u1").access_token
    other = tm.issue("u2").access_token
    bearer = ("authorization", f"Bearer {token}")
    cookie = ("cookie", f"{ACCESS}={token}")
    assert _cookies(tm, accept="header").presented(_view(bearer)) == token
    assert _cookies(tm, accept="cookie").presented(_view(cookie)) == token
    both = _cookies(tm)
    assert both.presented(_view(bearer)) == token
    assert both.presented(_view(cookie)) == token
    assert both.presented(_view(bearer, cookie)) == token
    with pytest.raises(bg.InvalidToken, match="two different"):
        both.presented(_view(("authorization", f"Bearer {other}"), cookie))
    with pytest.raises(bg.AuthenticationError):
        _cookies(tm, accept="header").presented(_view(cookie))
    with pytest.raises(bg.AuthenticationError):
        _cookies(tm, accept="cookie").presented(_view(bearer))


def test_basic_credentials_a_browser_keeps_do_not_hide_the_cookie_when_both_are_accepted() -> None:
    # A browser that stored Basic credentials (a staging site behind a proxy) sends them on every request: with
    # cookies accepted too, another scheme is no token, so the cookie still authenticates.
    tm = _manager()
    token = tm.issue("u1").access_token
    basic = ("authorization", "Basic dXNlcjpwYXNz")
    cookie = ("cookie", f"{ACCESS}={token}")
    assert _cookies(tm).presented(_view(basic, cookie)) == token
    with pytest.raises(bg.AuthenticationError):
        _cookies(tm).presented(_view(basic))
    with pytest.raises(bg.AuthenticationError):
        _cookies(tm, accept="header").presented(_view(basic, cookie))
    with pytest.raises(bg.AuthenticationError):
        _cookies(tm).presented(_view(("authorization", "Bearer"), cookie))


def test_a_cookie_sent_from_another_origin_is_refused_but_the_header_is_not() -> None:
    tm = _manager()
    token = tm.issue("u1").access_token
    cookies = _cookies(tm)
    evil = ("origin", "https://evil.example")
    with pytest.raises(bg.Forbidden) as caught:
        cookies.presented(_view(("cookie", f"{ACCESS}={token}"), evil, method="POST"))
    assert caught.value.code == "cross-origin-request"
    assert cookies.presented(_view(("authorization", f"Bearer {token}"), evil, method="POST")) == token
    same = ("sec-fetch-site", "same-origin")
    assert cookies.presented(_view(("cookie", f"{ACCESS}={token}"), same, method="POST")) == token


_COOKIE_TEXT = st.text(alphabet=st.sampled_from(list('=; ,"\\\t_-.aZ09é\x00\x7f')), max_size=40).map(
    lambda text: text.replace("Z", "__Host-access")
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.lists(_COOKIE_TEXT, max_size=3), method=st.sampled_from(["GET", "POST"]))
def test_cookie_header_garbage_is_a_clean_401_never_another_error(fields: list[str], method: str) -> None:
    tm = _manager()
    cookies = _cookies(tm)
    view = _view(*[("cookie", f) for f in fields], method=method)
    with pytest.raises(bg.AuthenticationError) as caught:
        tm.verify_access(cookies.presented(view))
    assert caught.value.status == 401
    assert "__Host" not in caught.value.detail


# --------------------------------------------------------------------------------------------------------------
# FastAPI / Starlette
# --------------------------------------------------------------------------------------------------------------


def _fastapi_app(cookies: bg.TokenCookies) -> Any:
    app = FastAPI()
    tm = cookies.tm

    @app.post("/login")
    async def login(response: Response) -> dict[str, str]:
        cookies.set(response, await tm.aissue("user-42", {"scope": "read"}))
        return {"user": "user-42"}

    @app.get("/me")
    @cookies.require_auth(scopes="read")
    async def me(request: Request) -> dict[str, str]:
        return {"user": request.state.auth["sub"]}

    @app.get("/dep")
    async def dep(claims: dict[str, Any] = Depends(cookies.dependency())) -> dict[str, str]:  # noqa: B008
        return {"user": claims["sub"]}

    @app.post("/auth/refresh")
    async def refresh(request: Request) -> Any:
        return await cookies.arefresh(request)

    @app.post("/auth/refresh/logout")
    async def logout(request: Request) -> Any:
        return await cookies.alogout(request)

    return app


def test_fastapi_login_read_rotate_reuse_and_logout_through_the_cookie_jar() -> None:
    from fastapi.testclient import TestClient

    cookies = _cookies()
    tm = cookies.tm
    with TestClient(_fastapi_app(cookies), base_url="https://testserver") as client:
        login = client.post("/login")
        assert login.status_code == 200
        _assert_set(_set_cookies(login.headers.get_list("set-cookie")), tm)
        assert "eyJ" not in login.text
        first_refresh = client.cookies.get(REFRESH)
        assert client.get("/me").json() == {"user": "user-42"}
        assert client.get("/dep").json() == {"user": "user-42"}

        rotated = client.post("/auth/refresh")
        assert rotated.status_code == 200
        assert "eyJ" not in rotated.text
        assert rotated.json() == {"expires_in": tm.access_ttl}
        _assert_set(_set_cookies(rotated.headers.get_list("set-cookie")), tm)  # both re-set
        assert client.cookies.get(REFRESH) != first_refresh
        assert client.get("/me").status_code == 200

        # The old refresh token again (a thief's copy) after the grace window: reuse, both cookies cleared.
        client.cookies.clear()
        tm.clock.advance(60)  # type: ignore[attr-defined]
        reused = client.post("/auth/refresh", headers={"cookie": f"{REFRESH}={first_refresh}"})
        assert reused.status_code == 401
        assert reused.json()["code"] == "token-reused"
        assert first_refresh not in reused.text
        _assert_cleared(_set_cookies(reused.headers.get_list("set-cookie")))


def test_fastapi_logout_revokes_and_clears() -> None:
    from fastapi.testclient import TestClient

    cookies = _cookies()
    with TestClient(_fastapi_app(cookies), base_url="https://testserver") as client:
        client.post("/login")
        refresh_token = client.cookies.get(REFRESH)
        # The refresh cookie is scoped to /auth/refresh: send it to the logout endpoint below that path.
        out = client.post("/auth/refresh/logout", headers={"cookie": f"{REFRESH}={refresh_token}"})
        assert out.status_code == 204
        assert "content-type" not in out.headers  # a 204 has no content
        assert out.headers["cache-control"] == "no-store"
        _assert_cleared(_set_cookies(out.headers.get_list("set-cookie")))
        with pytest.raises(bg.InvalidToken):
            cookies.tm.rotate(refresh_token)
        # Without any cookie: still cleared.
        client.cookies.clear()
        assert client.post("/auth/refresh/logout").status_code == 204


@pytest.mark.parametrize("sync", [True, False])
def test_logout_with_a_tossed_second_refresh_cookie_still_ends_the_users_login(sync: bool) -> None:
    # A sibling subdomain plants a second __Secure-refresh (Domain=parent, Path=/auth/refresh): the browser sends
    # both at logout. The answer is still a 204 that clears the cookies, so the login it names must end too.
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    cookies = _cookies()
    tm = cookies.tm
    app = FastAPI()

    @app.post("/auth/refresh/logout")
    async def logout(request: Request) -> Any:
        return cookies.logout(request) if sync else await cookies.alogout(request)

    victim, planted = tm.issue("victim"), tm.issue("attacker")
    with TestClient(app, base_url="https://testserver") as client:
        for tossed in ("junk", planted.refresh_token):
            users = tm.issue("victim")
            header = f"{REFRESH}={tossed}; {REFRESH}={users.refresh_token}"
            out = client.post("/auth/refresh/logout", headers={"cookie": header})
            assert out.status_code == 204
            _assert_cleared(_set_cookies(out.headers.get_list("set-cookie")))
            with pytest.raises(bg.InvalidToken):
                tm.rotate(users.refresh_token)
    tm.rotate(victim.refresh_token)  # another login of the same user is untouched


@pytest.mark.parametrize("sync", [True, False])
def test_logout_behind_a_flood_of_tossed_refresh_cookies_never_answers_204_with_the_login_alive(sync: bool) -> None:
    # A hostile sibling subdomain plants many __Secure-refresh values ahead of the user's own: the logout either
    # ends every value's login (the user's included) or refuses (403, nothing ended, cookies kept), never a 204
    # that leaves the user's login alive.
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    cookies = _cookies()
    tm = cookies.tm
    app = FastAPI()

    @app.post("/auth/refresh/logout")
    async def logout(request: Request) -> Any:
        return cookies.logout(request) if sync else await cookies.alogout(request)

    with TestClient(app, base_url="https://testserver") as client:
        for planted, ends in ((31, True), (50, False)):
            users = tm.issue("victim")
            header = "; ".join([f"{REFRESH}=junk{i}" for i in range(planted)] + [f"{REFRESH}={users.refresh_token}"])
            out = client.post("/auth/refresh/logout", headers={"cookie": header})
            if ends:
                assert out.status_code == 204
                with pytest.raises(bg.InvalidToken):
                    tm.rotate(users.refresh_token)
            else:
                assert out.status_code == 403
                assert not out.headers.get_list("set-cookie")
                assert "refresh cookies" in out.json()["detail"]
                tm.rotate(users.refresh_token)  # nothing was ended, and the user was told so


def test_fastapi_cross_origin_refresh_and_cookie_route_are_refused() -> None:
    from fastapi.testclient import TestClient

    cookies = _cookies()
    with TestClient(_fastapi_app(cookies), base_url="https://testserver") as client:
        client.post("/login")
        evil = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
        refused = client.post("/auth/refresh", headers=evil)
        assert refused.status_code == 403
        assert refused.json()["code"] == "cross-origin-request"
        assert not refused.headers.get_list("set-cookie")


@pytest.mark.parametrize(
    "cookie",
    [
        f"{ACCESS}=" + "A" * 100_000,
        f"{ACCESS}=a; {ACCESS}=b",
        f"{ACCESS}=\u00e9\u00e9.x.y",
        ";;;=;==;" + ACCESS,
        f'{ACCESS}="quoted.x.y"',
    ],
)
def test_fastapi_odd_cookies_are_a_clean_401(cookie: str) -> None:
    from fastapi.testclient import TestClient

    with TestClient(_fastapi_app(_cookies()), base_url="https://testserver") as client:
        raw = cookie.encode("latin-1", "replace") if not cookie.isascii() else cookie
        answer = client.get("/me", headers={"cookie": raw})
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert "AAAA" not in answer.text


def test_a_real_uvicorn_server_sets_reads_and_clears() -> None:
    cookies = _cookies()
    with run_asgi(_fastapi_app(cookies)) as base, httpx.Client(base_url=base) as client:
        login = client.post("/login")
        found = _set_cookies(login.headers.get_list("set-cookie"))
        _assert_set(found, cookies.tm)
        access, refresh = found[ACCESS]["value"], found[REFRESH]["value"]
        # Secure cookies are not sent back over http by a client: the Cookie header is written by hand here.
        assert client.get("/me", headers={"cookie": f"{ACCESS}={access}"}).json() == {"user": "user-42"}
        rotated = client.post("/auth/refresh", headers={"cookie": f"{REFRESH}={refresh}"})
        assert rotated.status_code == 200
        _assert_set(_set_cookies(rotated.headers.get_list("set-cookie")), cookies.tm)
        new_refresh = _set_cookies(rotated.headers.get_list("set-cookie"))[REFRESH]["value"]
        out = client.post("/auth/refresh/logout", headers={"cookie": f"{REFRESH}={new_refresh}"})
        assert out.status_code == 204
        _assert_cleared(_set_cookies(out.headers.get_list("set-cookie")))


# --------------------------------------------------------------------------------------------------------------
# Flask
# --------------------------------------------------------------------------------------------------------------


def _flask_app(cookies: bg.TokenCookies) -> Any:
    import flask

    app = flask.Flask("cookies")
    tm = cookies.tm

    @app.post("/login")
    def login() -> Any:
        response = flask.jsonify(user="user-42")
        cookies.set(response, tm.issue("user-42"))
        return response

    @app.get("/me")
    @cookies.require_auth()
    def me() -> Any:
        return {"user": flask.g.auth["sub"]}

    @app.post("/auth/refresh")
    def refresh() -> Any:
        return cookies.refresh(flask.request)

    @app.post("/auth/refresh/logout")
    def logout() -> Any:
        return cookies.logout(flask.request)

    return app


def test_flask_login_read_rotate_reuse_and_logout() -> None:
    cookies = _cookies()
    tm = cookies.tm
    client = _flask_app(cookies).test_client(use_cookies=False)
    login = client.post("/login")
    found = _set_cookies(login.headers.getlist("Set-Cookie"))
    _assert_set(found, tm)
    access, refresh = found[ACCESS]["value"], found[REFRESH]["value"]
    assert client.get("/me", headers={"Cookie": f"{ACCESS}={access}"}).json == {"user": "user-42"}
    assert client.get("/me", headers={"Cookie": f"{ACCESS}=junk"}).status_code == 401
    rotated = client.post("/auth/refresh", headers={"Cookie": f"{REFRESH}={refresh}"})
    assert rotated.status_code == 200
    renewed = _set_cookies(rotated.headers.getlist("Set-Cookie"))
    _assert_set(renewed, tm)
    tm.clock.advance(60)  # type: ignore[attr-defined]
    reused = client.post("/auth/refresh", headers={"Cookie": f"{REFRESH}={refresh}"})
    assert reused.status_code == 401
    assert reused.json["code"] == "token-reused"
    _assert_cleared(_set_cookies(reused.headers.getlist("Set-Cookie")))
    out = client.post("/auth/refresh/logout", headers={"Cookie": f"{REFRESH}={renewed[REFRESH]['value']}"})
    assert out.status_code == 204
    assert "Content-Type" not in out.headers  # a 204 has no content
    assert out.headers["Cache-Control"] == "no-store"
    _assert_cleared(_set_cookies(out.headers.getlist("Set-Cookie")))


# --------------------------------------------------------------------------------------------------------------
# Django
# --------------------------------------------------------------------------------------------------------------


def _django_client(cookies: bg.TokenCookies) -> Any:
    from django.http import JsonResponse
    from django.test import Client
    from django.urls import path

    from . import django_app

    django_app.setup()
    tm = cookies.tm

    def login(request: Any) -> Any:
        response = JsonResponse({"user": "user-42"})
        cookies.set(response, tm.issue("user-42"))
        return response

    @cookies.require_auth()
    def me(request: Any) -> Any:
        return JsonResponse({"user": request.auth["sub"]})

    def refresh(request: Any) -> Any:
        return cookies.refresh(request)

    def logout(request: Any) -> Any:
        return cookies.logout(request)

    django_app.add_urls(
        path("ck/login", login), path("ck/me", me), path("auth/refresh", refresh), path("auth/refresh/logout", logout)
    )
    from django.conf import settings

    settings.ROOT_URLCONF = django_app.__name__
    return Client()


def _django_set(response: Any) -> dict[str, dict[str, Any]]:
    return _set_cookies([morsel.output(header="").strip() for morsel in response.cookies.values()])


def test_django_login_read_rotate_reuse_and_logout() -> None:
    cookies = _cookies()
    tm = cookies.tm
    client = _django_client(cookies)
    login = client.post("/ck/login", secure=True)
    found = _django_set(login)
    _assert_set(found, tm)
    access, refresh = found[ACCESS]["value"], found[REFRESH]["value"]
    client.cookies = SimpleCookie()  # the Cookie header below is the only one sent
    me = client.get("/ck/me", HTTP_COOKIE=f"{ACCESS}={access}", secure=True)
    assert me.json() == {"user": "user-42"}
    assert client.get("/ck/me", HTTP_COOKIE=f"{ACCESS}=a; {ACCESS}=b", secure=True).status_code == 401
    rotated = client.post("/auth/refresh", HTTP_COOKIE=f"{REFRESH}={refresh}", secure=True)
    assert rotated.status_code == 200
    renewed = _django_set(rotated)
    _assert_set(renewed, tm)
    tm.clock.advance(60)  # type: ignore[attr-defined]
    client.cookies = SimpleCookie()
    reused = client.post("/auth/refresh", HTTP_COOKIE=f"{REFRESH}={refresh}", secure=True)
    assert reused.status_code == 401
    assert reused.json()["code"] == "token-reused"
    _assert_cleared(_django_set(reused))
    client.cookies = SimpleCookie()
    out = client.post("/auth/refresh/logout", HTTP_COOKIE=f"{REFRESH}={renewed[REFRESH]['value']}", secure=True)
    assert out.status_code == 204
    assert "Content-Type" not in out.headers  # a 204 has no content
    assert out.headers["Cache-Control"] == "no-store"
    _assert_cleared(_django_set(out))


def test_cookie_spec_header_is_what_the_docs_say() -> None:
    spec = CookieSpec(ACCESS, "t", 900, "/", "Lax")
    assert spec.header() == "__Host-access=t; Max-Age=900; Path=/; Secure; HttpOnly; SameSite=Lax"
    assert spec.cleared().header() == "__Host-access=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"


# --------------------------------------------------------------------------------------------------------------
# Headless Chromium: the page's script cannot read the cookies, and the browser sends them back
# --------------------------------------------------------------------------------------------------------------

_PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
(async () => {
  const out = document.getElementById("out");
  const login = await fetch("/login", {method: "POST"});
  const seen = document.cookie;
  const me = await fetch("/me");
  const body = me.ok ? (await me.json()).user : "status " + me.status;
  out.textContent = "login=" + login.status + " cookie=[" + seen + "] me=" + body;
})();
</script></body></html>"""


@pytest.mark.server
@pytest.mark.slow
def test_chromium_cannot_read_the_cookies_and_sends_them_back() -> None:
    from fastapi.responses import HTMLResponse

    from .browser import chromium_path, dump_dom

    chromium_path()
    app = _fastapi_app(_cookies())

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse(_PAGE)

    with run_asgi(app) as base:
        dom = dump_dom(base.replace("127.0.0.1", "localhost") + "/")
    assert "login=200 cookie=[] me=user-42" in dom


# --------------------------------------------------------------------------------------------------------------
# Settings: cookie tokens switch cross-origin protection on; csrf=False with them is refused at start-up
# --------------------------------------------------------------------------------------------------------------

_KEYED = {"key": SECRET, "algorithm": "HS256", "issuer": "https://auth.test", "audience": "app"}


def test_cookie_tokens_in_the_settings_switch_csrf_on_and_refuse_it_off() -> None:
    on = bg.GuardSettings(token_cookies=True, tokens=_KEYED)
    assert on.csrf_active
    assert StackParts.build(on).csrf is not None  # the middleware runs although csrf was never mentioned
    for off in (False, {"enabled": False}, {"enabled": False, "trusted_origins": ["https://admin.test"]}):
        with pytest.raises(bg.ConfigurationError, match="csrf"):
            bg.GuardSettings(token_cookies=True, csrf=off)
    with pytest.raises(bg.ConfigurationError, match="csrf"):
        bg.GuardSettings.from_env({"BACKEND_GUARD_TOKEN_COOKIES": "true", "BACKEND_GUARD_CSRF": "false"})
    assert bg.GuardSettings.from_env({"BACKEND_GUARD_TOKEN_COOKIES__ACCEPT": "cookie"}).csrf_active
    assert not bg.GuardSettings().csrf_active  # nothing on: nothing switched on
    with pytest.raises(bg.ConfigurationError, match="token_cookies"):
        bg.GuardSettings(token_cookies={"refresh_path": "/a;Domain=evil"})
    with pytest.raises(bg.ConfigurationError, match="token_cookies"):
        StackParts.build(bg.GuardSettings(tokens=_KEYED)).token_cookies()  # cookie tokens off: no companion


def test_parts_token_cookies_check_with_the_stacks_policy_and_proxies() -> None:
    settings = bg.GuardSettings(
        token_cookies={"refresh_path": "/session/refresh", "accept": "cookie"},
        csrf={"trusted_origins": ["https://admin.test"]},
        trusted_proxies=["10.0.0.0/8"],
        tokens=_KEYED,
    )
    parts = StackParts.build(settings)
    cookies = parts.token_cookies()
    assert cookies is parts.token_cookies()
    assert (cookies.refresh_path, cookies.accept) == ("/session/refresh", "cookie")
    assert cookies.csrf is parts.csrf
    assert cookies.client_ip is parts.client_ip
    assert cookies.tm is parts.tokens()
    # A stack narrowed to other layers (Django's one-part middlewares) still checks, with the settings' policy.
    narrowed = parts.only(("secure_headers",)).token_cookies(parts.tokens())
    admin = _view(("cookie", f"{ACCESS}=x"), ("origin", "https://admin.test"), method="POST")
    narrowed.check_origin(admin)
    with pytest.raises(CrossOriginRequest):
        narrowed.check_origin(_view(("origin", "https://evil.test"), method="POST"))


def test_a_cookie_route_exempted_from_the_middleware_is_still_checked_by_the_cookies() -> None:
    """The middleware exempts a path (a webhook); a cookie-authenticated route under it is not left open."""
    from starlette.testclient import TestClient

    from backend_guard.asgi import Guard

    settings = bg.GuardSettings(token_cookies=True, csrf={"exempt_paths": ["/hooks/"]}, tokens=_KEYED)
    app = FastAPI()
    guard = Guard(app, settings)
    cookies = guard.parts.token_cookies()

    @app.post("/hooks/me")
    @cookies.require_auth()
    async def me(request: Request) -> dict[str, str]:
        return {"user": request.state.auth["sub"]}

    token = guard.parts.tokens().issue("user-42").access_token
    client = TestClient(guard, base_url="https://app.test")
    forged = client.post("/hooks/me", headers={"cookie": f"{ACCESS}={token}", "origin": "https://evil.test"})
    assert (forged.status_code, forged.json()["code"]) == (403, "cross-origin-request")
    own = client.post("/hooks/me", headers={"cookie": f"{ACCESS}={token}", "sec-fetch-site": "same-origin"})
    assert own.json() == {"user": "user-42"}


# --------------------------------------------------------------------------------------------------------------
# Behind a proxy that terminates TLS: the request's own origin is the one the trusted proxy forwarded
# --------------------------------------------------------------------------------------------------------------


def _old_browser_post(path: str, token: str) -> dict[str, str]:
    """An older browser (no Fetch Metadata) posting from the app's own https page, through the proxy."""
    return {
        "cookie": f"{ACCESS}={token}",
        "origin": "https://app.test",
        "host": "app.test",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-proto": "https",
    }


async def test_behind_a_tls_proxy_the_cookie_check_uses_the_forwarded_scheme_starlette() -> None:
    tm = _manager()
    proxies = bg.ClientIP(["10.0.0.0/8"])
    cookies = _cookies(tm, client_ip=proxies)
    app = _fastapi_app(cookies)

    @app.post("/act")
    @cookies.require_auth()
    async def act(request: Request) -> dict[str, str]:
        return {"user": request.state.auth["sub"]}

    @app.post("/act-dep")
    async def act_dep(claims: dict[str, Any] = Depends(cookies.dependency())) -> dict[str, str]:  # noqa: B008
        return {"user": claims["sub"]}

    pair = tm.issue("user-42")
    transport = httpx.ASGITransport(app, client=("10.0.0.2", 5000))  # the proxy is the peer; it spoke plain http
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        for path in ("/act", "/act-dep"):
            answer = await client.post(path, headers=_old_browser_post(path, pair.access_token))
            assert answer.json() == {"user": "user-42"}, path
        refresh = _old_browser_post("/auth/refresh", "") | {"cookie": f"{REFRESH}={pair.refresh_token}"}
        assert (await client.post("/auth/refresh", headers=refresh)).status_code == 200
        # A forwarded scheme from a peer that is no trusted proxy is not believed: the origins differ, refused.
    untrusted = httpx.ASGITransport(app, client=("198.51.100.9", 5000))
    async with httpx.AsyncClient(transport=untrusted, base_url="http://app.test") as client:
        answer = await client.post("/act", headers=_old_browser_post("/act", pair.access_token))
        assert (answer.status_code, answer.json()["code"]) == (403, "cross-origin-request")


def test_behind_a_tls_proxy_the_cookie_check_uses_the_forwarded_scheme_flask() -> None:
    tm = _manager()
    cookies = _cookies(tm, client_ip=bg.ClientIP(["10.0.0.0/8"]))
    app = _flask_app(cookies)

    @app.post("/act")
    @cookies.require_auth()
    def act() -> dict[str, str]:
        import flask

        return {"user": flask.g.auth["sub"]}

    token = tm.issue("user-42").access_token
    client = app.test_client(use_cookies=False)
    env = {"REMOTE_ADDR": "10.0.0.2"}
    answer = client.post("/act", headers=_old_browser_post("/act", token), environ_base=env)
    assert answer.get_json() == {"user": "user-42"}
    env = {"REMOTE_ADDR": "198.51.100.9"}
    answer = client.post("/act", headers=_old_browser_post("/act", token), environ_base=env)
    assert answer.status_code == 403


# --------------------------------------------------------------------------------------------------------------
# WebSocket routes: the cookie authenticates the handshake; a cross-site handshake is refused before accept
# --------------------------------------------------------------------------------------------------------------


def _ws_apps(cookies: bg.TokenCookies) -> tuple[Any, Any]:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    fast = FastAPI()

    @fast.websocket("/dep")
    async def dep(websocket: WebSocket, claims: dict[str, Any] = Depends(cookies.dependency())) -> None:  # noqa: B008
        await websocket.accept()
        await websocket.send_text(claims["sub"])
        await websocket.close()

    @fast.websocket("/dec")
    @cookies.require_auth(scopes="read")
    async def dec(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.state.auth["sub"])
        await websocket.close()

    @cookies.require_auth()
    async def plain(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.state.auth["sub"])
        await websocket.close()

    return fast, Starlette(routes=[WebSocketRoute("/dec", plain)])


async def _handshake(url: str, headers: dict[str, str]) -> tuple[int, str]:
    """(101 and the first message) or (the refusal's status and body)."""
    import websockets
    from websockets.exceptions import InvalidStatus

    try:
        async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
            return 101, str(await ws.recv())
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.body.decode() if exc.response.body else ""


@pytest.mark.server
async def test_cookie_auth_on_websocket_routes_through_a_real_server() -> None:
    tm = _manager()
    cookies = _cookies(tm)
    fast, starlette_app = _ws_apps(cookies)
    token = tm.issue("user-42", {"scope": "read"}).access_token
    unscoped = tm.issue("user-7").access_token
    own = {"cookie": f"{ACCESS}={token}"}
    cases = [
        (fast, "/dep", own, 101),
        (fast, "/dec", own, 101),
        (starlette_app, "/dec", own, 101),
        (fast, "/dep", {"authorization": f"Bearer {token}"}, 101),
        (fast, "/dep", {}, 401),
        (fast, "/dec", {}, 401),
        (starlette_app, "/dec", {}, 401),
        (fast, "/dec", {"cookie": f"{ACCESS}={unscoped}"}, 403),
        (fast, "/dep", {"cookie": f"{ACCESS}=garbage"}, 401),
    ]
    # A page on another site opens the socket with the user's cookie (cross-site WebSocket hijacking): a handshake
    # is a GET, yet it is judged as an unsafe method.
    for site in ({"origin": "https://evil.test"}, {"sec-fetch-site": "cross-site", "origin": "https://evil.test"}):
        cases += [
            (app, path, own | site, 403) for app, path in ((fast, "/dep"), (fast, "/dec"), (starlette_app, "/dec"))
        ]
    for app in (fast, starlette_app):
        with run_asgi(app) as base:
            url = base.replace("http://", "ws://")
            for case_app, path, headers, status in cases:
                if case_app is not app:
                    continue
                found, body = await _handshake(url + path, headers)
                assert found == status, (path, headers, body)
                if status == 101:
                    assert body in ("user-42",), path
                else:
                    assert token not in body


def test_a_handshake_is_judged_as_unsafe_whatever_scheme_the_server_reports() -> None:
    cookies = _cookies()
    evil = ("origin", "https://evil.test")
    with pytest.raises(CrossOriginRequest):  # an ASGI websocket scope
        cookies.check_origin(RequestView("GET", "/ws", headers=(evil,), scheme="wss", host="app.test"))
    with pytest.raises(CrossOriginRequest):  # a server that reports the handshake as https
        cookies.check_origin(RequestView("GET", "/ws", headers=(evil, ("upgrade", "WebSocket")), scheme="https"))
    cookies.check_origin(RequestView("GET", "/page", headers=(evil,), scheme="https", host="app.test"))  # a link


async def test_inside_the_guard_parts_token_cookies_resolve_through_trusted_proxies() -> None:
    from backend_guard.asgi import Guard

    settings = bg.GuardSettings(token_cookies=True, trusted_proxies=["10.0.0.0/8"], tokens=_KEYED)
    app = FastAPI()
    guard = Guard(app, settings)
    cookies = guard.parts.token_cookies()

    @app.post("/act")
    @cookies.require_auth()
    async def act(request: Request) -> dict[str, str]:
        return {"user": request.state.auth["sub"]}

    token = guard.parts.tokens().issue("user-42").access_token
    transport = httpx.ASGITransport(guard, client=("10.0.0.2", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        answer = await client.post("/act", headers=_old_browser_post("/act", token))
        assert answer.json() == {"user": "user-42"}
        forged = _old_browser_post("/act", token) | {"origin": "https://evil.test"}
        assert (await client.post("/act", headers=forged)).status_code == 403


@pytest.mark.server
async def test_websocket_refusals_are_problem_documents_under_the_installed_stack() -> None:
    import json

    from backend_guard.fastapi import install

    tm = _manager()
    fast, _ = _ws_apps(_cookies(tm))
    install(fast, bg.GuardSettings())  # the error handlers render the dependency's refusal
    token = tm.issue("user-42", {"scope": "read"}).access_token
    with run_asgi(fast) as base:
        url = base.replace("http://", "ws://")
        for path in ("/dep", "/dec"):
            assert await _handshake(url + path, {"cookie": f"{ACCESS}={token}"}) == (101, "user-42")
            status, body = await _handshake(url + path, {})
            assert (status, json.loads(body)["code"]) == (401, "unauthenticated")
            forged = {"cookie": f"{ACCESS}={token}", "origin": "https://evil.test"}
            status, body = await _handshake(url + path, forged)
            assert (status, json.loads(body)["code"]) == (403, "cross-origin-request")


def test_flask_one_call_from_the_settings() -> None:
    import flask

    import backend_guard.flask

    app = flask.Flask(__name__)
    backend_guard.flask.Guard(app, bg.GuardSettings(token_cookies=True, tokens=_KEYED))
    cookies = backend_guard.flask.parts(app).token_cookies()

    @app.post("/act")
    @cookies.require_auth()
    def act() -> dict[str, str]:
        return {"user": flask.g.auth["sub"]}

    @app.post("/plain")
    def plain() -> str:
        return "changed"

    token = backend_guard.flask.parts(app).tokens().issue("user-42").access_token
    client = app.test_client(use_cookies=False)
    own = {"Cookie": f"{ACCESS}={token}", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/act", headers=own, base_url="https://app.test").get_json() == {"user": "user-42"}
    for path in ("/act", "/plain"):  # the Guard's middleware is on: csrf was never mentioned
        forged = client.post(path, headers=own | {"Sec-Fetch-Site": "cross-site"}, base_url="https://app.test")
        assert (forged.status_code, forged.get_json()["code"]) == (403, "cross-origin-request"), path


def test_django_one_call_from_the_settings() -> None:
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.test import Client, override_settings
    from django.urls import path

    import backend_guard.django

    from . import django_app

    django_app.setup()
    guard_settings = {"token_cookies": True, "tokens": _KEYED}

    def act(request: HttpRequest) -> HttpResponse:
        cookies = backend_guard.django.parts().token_cookies()
        return JsonResponse({"user": cookies.tm.verify_access(cookies.presented(cookies.view(request)))["sub"]})

    def plain(request: HttpRequest) -> HttpResponse:
        return HttpResponse("changed")

    class URLs:
        urlpatterns = [path("act", act), path("plain", plain)]

    with override_settings(
        ROOT_URLCONF=URLs,
        MIDDLEWARE=["backend_guard.django.GuardMiddleware"],
        BACKEND_GUARD=guard_settings,
        ALLOWED_HOSTS=["*"],
    ):
        parts = backend_guard.django.parts()
        assert parts.csrf is not None
        token = parts.tokens().issue("user-42").access_token
        client = Client()
        own = {"HTTP_COOKIE": f"{ACCESS}={token}", "HTTP_SEC_FETCH_SITE": "same-origin"}
        assert client.post("/act", secure=True, **own).json() == {"user": "user-42"}  # type: ignore[arg-type]
        for route in ("/act", "/plain"):
            forged = client.post(route, secure=True, **(own | {"HTTP_SEC_FETCH_SITE": "cross-site"}))  # type: ignore[arg-type]
            assert (forged.status_code, forged.json()["code"]) == (403, "cross-origin-request"), route


@pytest.mark.server
async def test_bearer_auth_on_websocket_routes_through_a_real_server() -> None:
    """``tm.require_auth()`` and ``tm.dependency()`` (header only) on WebSocket routes: no TypeError (500)."""
    tm = _manager()
    app = FastAPI()

    @app.websocket("/dep")
    async def dep(websocket: WebSocket, claims: dict[str, Any] = Depends(tm.dependency())) -> None:  # noqa: B008
        await websocket.accept()
        await websocket.send_text(claims["sub"])
        await websocket.close()

    @app.websocket("/dec")
    @tm.require_auth()
    async def dec(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.state.auth["sub"])
        await websocket.close()

    token = tm.issue("user-42").access_token
    with run_asgi(app) as base:
        url = base.replace("http://", "ws://")
        for path in ("/dep", "/dec"):
            assert await _handshake(url + path, {"authorization": f"Bearer {token}"}) == (101, "user-42")
            assert (await _handshake(url + path, {}))[0] == 401
            assert (await _handshake(url + path, {"authorization": "Bearer nope"}))[0] == 401


@pytest.mark.parametrize("path", ["/", "//"])
def test_a_refresh_path_of_the_whole_site_is_refused_at_start_up(path: str) -> None:
    # the refresh cookie goes only where it is needed: Path=/ would send the refresh token with every request
    with pytest.raises(bg.ConfigurationError, match="refresh_path"):
        bg.GuardSettings(token_cookies={"refresh_path": path})


def test_refresh_and_logout_refusals_carry_the_request_id_in_every_framework() -> None:
    """A refused refresh or logout is a problem document like every other: its ``request_id`` is the one in
    ``X-Request-ID`` (it was missing from the body: a user could not match the 401 to the log)."""
    import flask
    from django.http import HttpRequest, HttpResponse
    from django.test import Client, override_settings
    from django.urls import path
    from fastapi.testclient import TestClient

    import backend_guard.django
    import backend_guard.fastapi
    import backend_guard.flask

    from . import django_app

    settings = bg.GuardSettings(token_cookies=True, tokens=_KEYED)
    api = FastAPI()
    api_cookies = backend_guard.fastapi.install(api, settings).token_cookies()

    @api.post("/auth/refresh")
    async def api_refresh(request: Request) -> Response:
        response: Response = await api_cookies.arefresh(request)
        return response

    @api.post("/auth/refresh/logout")
    async def api_logout(request: Request) -> Response:
        response: Response = await api_cookies.alogout(request)
        return response

    web = flask.Flask(__name__)
    backend_guard.flask.Guard(web, settings)
    web_cookies = backend_guard.flask.parts(web).token_cookies()
    web.post("/auth/refresh")(lambda: web_cookies.refresh(flask.request))
    web.post("/auth/refresh/logout", endpoint="logout")(lambda: web_cookies.logout(flask.request))

    bad = {"Cookie": f"{REFRESH}=junk"}
    forged = bad | {"Sec-Fetch-Site": "cross-site"}
    answers = []
    fastapi_client = TestClient(api, base_url="https://app.test")
    flask_client = web.test_client(use_cookies=False)
    for path_, headers, status in (("/auth/refresh", bad, 401), ("/auth/refresh/logout", forged, 403)):
        answers.append((fastapi_client.post(path_, headers=headers), status))
        flask_answer = flask_client.post(path_, headers=headers, base_url="https://app.test")
        answers.append(
            (
                httpx.Response(
                    flask_answer.status_code, headers=list(flask_answer.headers.items()), content=flask_answer.data
                ),
                status,
            )
        )

    django_app.setup()

    def dj_refresh(request: HttpRequest) -> HttpResponse:
        response: HttpResponse = backend_guard.django.parts().token_cookies().refresh(request)
        return response

    class URLs:
        urlpatterns = [path("auth/refresh", dj_refresh)]

    with override_settings(
        ROOT_URLCONF=URLs,
        MIDDLEWARE=["backend_guard.django.GuardMiddleware"],
        BACKEND_GUARD={"token_cookies": True, "tokens": _KEYED},
        ALLOWED_HOSTS=["*"],
    ):
        dj = Client().post("/auth/refresh", HTTP_COOKIE=f"{REFRESH}=junk", secure=True)
        answers.append((httpx.Response(dj.status_code, headers=list(dj.headers.items()), content=dj.content), 401))

    for answer, status in answers:
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["request_id"] == answer.headers["x-request-id"], answer.text
