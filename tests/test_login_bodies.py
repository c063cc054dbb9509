"""The login decorator counts the very name the route checks, or refuses the request before the route runs.

Through real servers (FastAPI on uvicorn, Flask and Django on waitress) on the real Redis, guesses at one account
from 30 loopback addresses in every body shape of tests/login_attacks.py reach the password check at most as
often as the account-wide threshold allows, and the account locks. Hypothesis then runs body shapes and content
types against the decorator: each request is either refused with 400/413/415 before the route, or the name the
lockout counted is the name the route parses (as a form, and as JSON whatever the label says).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

import backend_guard as bg
from backend_guard.lockout import LockoutEvent, normalize_identifier
from backend_guard.lockout._routes import LoginRequestRefused, login_body_kind, unframed_body_kind
from backend_guard.request import RequestView
from backend_guard.storage import RedisStore

from .conftest import TEST_TIMEOUTS, _cleanup
from .login_attacks import REFUSALS, flood
from .servers import run_asgi, run_asgi_h2, run_wsgi

SECRET = b"login-bodies-test-secret-0123456789"
THRESHOLD = 20  # account-wide: guesses from unknown addresses that reach the password check


class Checks:
    """Counts the route's password checks for alice (thread-safe: servers run routes in threads)."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def saw(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("username") == "alice":
            with self._lock:
                self.n += 1


def _lock(store: Any) -> bg.Lockout:
    return bg.Lockout(store=store, max_failures=5, account_max_failures=THRESHOLD, secret=SECRET)


@pytest.fixture
def redis_lock(redis_url: str, prefix: str) -> Iterator[bg.Lockout]:
    store = RedisStore(redis_url, prefix=prefix, **TEST_TIMEOUTS)
    try:
        yield _lock(store)
    finally:
        store.close()
        _cleanup(prefix)


def _fastapi(lock: bg.Lockout, checks: Checks) -> Any:
    from fastapi import FastAPI

    import backend_guard.fastapi as bgf

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await lock.store.aclose()  # the async client belongs to the server's loop: close it there

    app = FastAPI(lifespan=lifespan)
    bgf.install_error_handlers(app)

    async def login(request: Request) -> Any:
        checks.saw(json.loads(await request.body()))  # any body, as JSON, whatever its Content-Type
        raise lock.invalid_credentials()

    app.post("/login")(lock.protect()(login))
    return app


def _flask(lock: bg.Lockout, checks: Checks) -> Any:
    import flask

    import backend_guard.flask as bgfl

    app = flask.Flask(__name__)
    bgfl.install_error_handlers(app)

    @app.post("/login")
    @lock.protect()
    def login() -> Any:
        checks.saw(json.loads(flask.request.get_data()))
        raise lock.invalid_credentials()

    return app


def _django(lock: bg.Lockout, checks: Checks) -> Any:
    from django.urls import path

    from . import django_app

    django_app.setup()

    @lock.protect()
    def login(request: Any) -> Any:
        checks.saw(json.loads(request.body))
        raise lock.invalid_credentials()

    # A fresh view per test under its own URL: the Django URL list is shared by the whole process.
    route = f"login-bodies-{id(lock)}/"
    django_app.add_urls(path(route, login))
    return django_app.wsgi_app(["backend_guard.django.ErrorEnvelopeMiddleware"]), "/" + route


def _assert_guarded(statuses: Any, checks: Checks, lock: bg.Lockout) -> None:
    assert set(statuses) <= REFUSALS | {401, 429}, statuses
    assert checks.n == THRESHOLD, (checks.n, statuses)
    assert lock.check("alice", "127.0.0.250").locked
    assert lock.check("alice", "127.0.0.250").scope == "account"


@pytest.mark.redis
@pytest.mark.server
@pytest.mark.slow
def test_fastapi_password_check_runs_no_more_than_the_account_threshold_whatever_the_body(
    redis_lock: bg.Lockout,
) -> None:
    checks = Checks()
    with run_asgi(_fastapi(redis_lock, checks), lifespan="on") as url:
        statuses = flood(url + "/login")
    _assert_guarded(statuses, checks, redis_lock)


@pytest.mark.redis
@pytest.mark.server
@pytest.mark.slow
def test_flask_password_check_runs_no_more_than_the_account_threshold_whatever_the_body(
    redis_lock: bg.Lockout,
) -> None:
    checks = Checks()
    with run_wsgi(_flask(redis_lock, checks)) as url:
        statuses = flood(url + "/login")
    _assert_guarded(statuses, checks, redis_lock)


@pytest.mark.redis
@pytest.mark.server
@pytest.mark.slow
def test_django_password_check_runs_no_more_than_the_account_threshold_whatever_the_body(
    redis_lock: bg.Lockout,
) -> None:
    checks = Checks()
    app, route = _django(redis_lock, checks)
    with run_wsgi(app) as url:
        statuses = flood(url + route)
    _assert_guarded(statuses, checks, redis_lock)


# -- the class of bodies, property-tested ---------------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(["alice", "Alice ", "", " ", "\u200b", "bob"]),
    st.text(max_size=8),
    st.integers(),
    st.none(),
    st.lists(st.just("alice"), max_size=2),
)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    members = [("username", draw(NAMES)) for _ in range(draw(st.integers(0, 2)))]
    members += [("password", "x")]
    text = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in members) + "}"
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "latin-1"]))
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode("utf-8")


BODIES = st.one_of(
    json_bodies(),
    st.sampled_from(
        [
            b"username=alice&password=x",
            b"username=alice&username=bob&password=x",
            b"username=&password=x",
            b"password=x",
            b'"alice"',
            b"[1, 2]",
            b"\xff\xfe\x00",
            b"--zzz\r\nContent-Disposition: form-data; name=username\r\n\r\nalice\r\n--zzz--\r\n",
            b"--zzz\r\nContent-Disposition: form-data; name=username; filename=a\r\n\r\nalice\r\n--zzz--\r\n",
            b"",
            b"[" * 5000 + b"]" * 5000,
        ]
    ),
    st.binary(max_size=40),
)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "application/ld+json",
        "Application/JSON",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "multipart/form-data",
        "multipart/form-data; boundary=zzz",
        "text/plain",
        "application/octet-stream",
    ]
)


def _flask_probe() -> tuple[Any, bg.Lockout, list[str], list[str]]:
    """A Flask route that parses the body both ways; returns (client, lock, route's names, counted ids)."""
    import flask

    import backend_guard.flask as bgfl

    counted: list[str] = []

    def on_event(event: LockoutEvent) -> None:
        if event.kind == "failure":
            counted.append(event.account_id)

    lock = bg.Lockout(max_failures=100, account_max_failures=None, on_event=on_event)
    seen: list[str] = []
    app = flask.Flask(__name__)
    bgfl.install_error_handlers(app)

    @app.post("/login")
    @lock.protect()
    def login() -> Any:
        names = flask.request.form.getlist("username")  # as a form...
        try:
            data = json.loads(flask.request.get_data())  # ...and as JSON, whatever the label says
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("username"), str):
            names.append(data["username"])
        seen.extend(names)
        raise lock.invalid_credentials()

    return app.test_client(), lock, seen, counted


def _flask_own_json(
    *, force: bool = False, lenient: bool = False
) -> tuple[Any, bg.Lockout, list[str], list[Any], list[Any]]:
    """A Flask app whose JSON provider reads ``"alice+tag"`` as alice, its route calling ``get_json(force=force)``;
    returns (client, lock, counted ids, the provider's parses, what the route's get_json() returned). ``lenient``:
    the provider also reads what the standard parser refuses, raw control characters in strings (``strict=False``)
    and byte order marks (or bytes that are no UTF-8) before the text."""
    import flask
    from flask.json.provider import DefaultJSONProvider

    import backend_guard.flask as bgfl

    counted: list[str] = []
    parses: list[Any] = []
    seen: list[Any] = []

    class Provider(DefaultJSONProvider):
        def loads(self, s: str | bytes, **kwargs: Any) -> Any:
            if lenient:
                text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
                data = json.loads(text.lstrip("\ufeff\ufffd"), strict=False)
            else:
                data = super().loads(s, **kwargs)
            if isinstance(data, dict) and isinstance(data.get("username"), str):
                data["username"] = data["username"].partition("+")[0]
            parses.append(data)
            return data

    def on_event(event: LockoutEvent) -> None:
        if event.kind == "failure":
            counted.append(event.account_id)

    lock = bg.Lockout(max_failures=100, account_max_failures=None, on_event=on_event)
    app = flask.Flask(__name__)
    app.json = Provider(app)
    bgfl.install_error_handlers(app)

    @app.post("/login")
    @lock.protect()
    def login() -> Any:
        seen.append(flask.request.get_json(force=force))
        raise lock.invalid_credentials()

    return app.test_client(), lock, counted, parses, seen


def test_a_flask_login_counts_the_name_of_the_apps_own_json_parse_the_route_gets_too() -> None:
    client, lock, counted, parses, seen = _flask_own_json()
    assert client.post("/login", json={"username": "alice+tag", "password": "x"}).status_code == 401
    assert counted == [lock.account_id("alice")]  # the account the route checks, not "alice+tag"
    assert len(parses) == 1  # parsed once: the route's get_json() is the very object the lockout read
    assert seen[0] is parses[0]


def test_a_flask_json_body_where_the_member_may_repeat_must_pass_the_strict_reader_too() -> None:
    # An escape (or the quoted name twice) sends the body through the strict reader too: a repeated member is
    # refused, whichever spelling; an escape elsewhere counts the provider's name, the one the route checks.
    client, lock, counted, _, seen = _flask_own_json()
    for body in (b'{"username": "alice", "username": "bob"}', b'{"username": "alice", "user\\u006eame": "bob"}'):
        assert client.post("/login", data=body, content_type="application/json").status_code == 400
    assert (counted, seen) == ([], [])
    body = b'{"username": "alice+tag", "note": "\\n"}'
    assert client.post("/login", data=body, content_type="application/json").status_code == 401
    assert counted == [lock.account_id("alice")]
    assert seen == [{"username": "alice", "note": "\n"}]


def test_a_flask_route_using_get_json_force_is_counted_under_the_name_the_apps_provider_gives_it() -> None:
    # No Content-Type: the lockout reads the raw member ("alice+tag", a fresh account each time), the route's
    # get_json(force=True) the provider's "alice": unlimited guesses on alice through alice+1, alice+2, ...
    client, lock, counted, _, seen = _flask_own_json(force=True)
    response = client.post("/login", data=json.dumps({"username": "alice+1", "password": "x"}), content_type="")
    assert response.status_code in (400, 401, 415)
    if response.status_code == 401:
        assert counted == [lock.account_id(seen[0]["username"])]


def test_a_flask_login_whose_password_needs_an_escape_is_not_refused_under_a_name_changing_provider() -> None:
    # json.dumps escapes a quote in the password: the strict reader's "alice+tag" then differs from the
    # provider's "alice", and a user whose password holds a quote or a backslash can never log in (400).
    client, lock, counted, _, _ = _flask_own_json()
    body = json.dumps({"username": "alice+tag", "password": 'pa"ss'})
    assert client.post("/login", data=body, content_type="application/json").status_code == 401
    assert counted == [lock.account_id("alice")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_a_login_body_is_refused_or_counted_under_the_name_the_route_reads(
    body: bytes, content_type: str | None
) -> None:
    client, lock, seen, counted = _flask_probe()
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post("/login", data=body, headers=headers)
    if response.status_code in REFUSALS:
        assert response.headers["content-type"] == "application/problem+json"
        assert seen == []  # refused before the route: nothing checked
        assert counted == []
        return
    assert response.status_code == 401, response.status_code
    assert len(counted) == 1
    for name in seen:  # every name the route could read is the one the lockout counted
        assert lock.account_id(name) == counted[0]
        assert normalize_identifier(name)


def test_a_form_body_that_is_json_too_deep_for_the_lockouts_parser_is_refused_whatever_the_depth() -> None:
    # The lockout parses a few frames deeper than the route: at some depths only its json.loads hits the
    # recursion limit, and a "not JSON" verdict there let the form's decoy be counted while the route read alice.
    import sys

    client, _, seen, counted = _flask_probe()
    limit = sys.getrecursionlimit()
    for depth in range(limit - 400, limit + 1):
        nested = b"[" * depth + b"]" * depth
        body = b'{"username": "alice", "password": "x", "q": "&username=decoy&", "n": ' + nested + b"}"
        labelled = {"content-type": "application/x-www-form-urlencoded"}
        status = client.post("/login", data=body, headers=labelled).status_code
        assert (status, seen, counted) == (415, [], []), depth


@given(body=st.one_of(json_bodies(), st.binary(max_size=60)))
def test_the_json_reader_returns_the_member_json_loads_returns_or_refuses(body: bytes) -> None:
    from backend_guard.lockout._routes import LoginRequestRefused, name_from_json

    try:
        name: str | int = name_from_json(body, "username")
    except LoginRequestRefused as exc:
        name = exc.status
    if name != 400:
        assert json.loads(body)["username"] == name


_SPELLINGS = ['"username"', '"user\\u006eame"', '"\\u0075sername"', '"password"', '"usernam"']


@st.composite
def _objects(draw: st.DrawFn, depth: int = 0) -> str:
    """A JSON object written by hand: members may repeat, names may be escaped, values may nest."""
    values = st.sampled_from(['"alice"', '"bob"', "1", '""', "null", '"\\u0061lice"'])
    if depth < 2:
        values = st.one_of(values, _objects(depth + 1))
    members = draw(st.lists(st.tuples(st.sampled_from(_SPELLINGS), values), max_size=4))
    return "{" + ", ".join(f"{name}: {value}" for name, value in members) + "}"


def _refused_or_name(body: bytes) -> str | int:
    from backend_guard.lockout._routes import LoginRequestRefused, name_from_json

    try:
        return name_from_json(body, "username")
    except LoginRequestRefused as exc:
        return exc.status


def _reference(body: bytes) -> str | int:
    """What the reader must answer: any object naming the member twice is refused (parsers disagree on which
    wins), else the top-level member if it is a non-empty string."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if sum(1 for key, _ in items if key == "username") > 1:
            raise ValueError("repeated")
        return dict(items)

    try:
        data = json.loads(body, object_pairs_hook=pairs)
    except ValueError:
        return 400
    name = data.get("username") if isinstance(data, dict) else None
    return name if isinstance(name, str) and normalize_identifier(name) else 400


@given(body=_objects(), encoding=st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32", "utf-8-sig"]))
def test_a_repeated_account_member_is_refused_however_it_is_written(body: str, encoding: str) -> None:
    raw = body.encode(encoding)
    assert _refused_or_name(raw) == _reference(raw)


def test_a_repeated_account_member_is_refused_in_each_spelling() -> None:
    for body in (
        '{"username": "alice", "username": "bob"}',
        '{"username": "alice", "user\\u006eame": "bob"}',
        '{"a": {"username": 1, "username": 2}, "username": "alice"}',
    ):
        for encoding in ("utf-8", "utf-16", "utf-32"):
            assert _refused_or_name(body.encode(encoding)) == 400, (body, encoding)
    assert _refused_or_name(b'{"username": "alice", "note": "username"}') == "alice"


def test_a_padded_json_body_is_refused_as_too_large() -> None:
    from backend_guard.lockout._routes import LoginRequestRefused, name_from_json

    body = json.dumps({"username": "alice", "pad": "x" * (1 << 20)}).encode()
    with pytest.raises(LoginRequestRefused) as info:
        name_from_json(body, "username")
    assert info.value.status == 413


# -- the login outcome: Django's own LoginView ----------------------------------------------------------------


@pytest.fixture
def django_login_server(redis_url: str, prefix: str, tmp_path: Any) -> Iterator[str]:
    import subprocess
    import sys

    from .test_workers import ROOT, start_server, stop_server

    env = {"BG_DJ_DB": str(tmp_path / "auth.sqlite3"), "BG_WORKER_STORE": redis_url, "BG_WORKER_PREFIX": prefix}
    subprocess.run(  # noqa: S603 - our own test app: tables and users, once, before the workers start
        [sys.executable, "-m", "tests.django_login_app"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        check=True,
        timeout=120,
    )
    proc, url = start_server(env, workers=2, app="tests.django_login_app:app")
    try:
        yield url
    finally:
        stop_server(proc)
        _cleanup(prefix)


def _post_login(client: Any, url: str, username: str, password: str) -> int:
    page = client.get(url + "/login/")  # a GET is not an attempt: it only renders the form (and the CSRF token)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    data = {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password}
    return int(client.post(url + "/login/", data=data).status_code)


@pytest.mark.redis
@pytest.mark.server
@pytest.mark.slow
def test_django_login_view_failures_lock_the_account_and_never_make_the_address_known(
    django_login_server: str,
) -> None:
    import httpx

    url = django_login_server
    with httpx.Client(timeout=10) as client:
        # bob logs in (LoginView redirects: user_logged_in marks the attempt a success, the address is known) ...
        assert _post_login(client, url, "bob", "right") == 302
        # ... so the account-wide lock (5) never applies to his address: 10 typos all reach the password check.
        assert [_post_login(client, url, "bob", "typo") for _ in range(10)] == [200] * 10
        # LoginView answers alice's wrong passwords with 200: user_login_failed counts each as a failure, and
        # after 5 the account is locked for this address, which never became "known".
        statuses = [_post_login(client, url, "alice", "wrong") for _ in range(30)]
        assert statuses == [200] * 5 + [429] * 25
        assert _post_login(client, url, "alice", "right") == 429
        checks = client.get(url + "/count").json()["count"]
    assert checks == 1 + 10 + 5


def _django_app_lock(redis_url: str, prefix: str) -> tuple[bg.Lockout, RedisStore]:
    """A Lockout reading the counters tests/django_login_app.py keeps (its store prefix, thresholds and secret)."""
    store = RedisStore(redis_url, prefix=prefix, **TEST_TIMEOUTS)
    lock = bg.Lockout(
        store=store, max_failures=100, account_max_failures=5, secret=b"django-login-app-secret-0123456789"
    )
    return lock, store


@pytest.mark.redis
@pytest.mark.server
@pytest.mark.slow
def test_a_django_login_of_another_user_than_the_named_account_counts_as_a_failure_for_that_account(
    django_login_server: str, redis_url: str, prefix: str
) -> None:
    import httpx

    url = django_login_server
    lock, store = _django_app_lock(redis_url, prefix)
    try:
        with httpx.Client(timeout=10) as client:
            # mallory names alice with a wrong password, and the view logs mallory in by the fallback pair:
            # user_logged_in is mallory's, so alice's attempt is a failure, every time.
            body = {"username": "alice", "password": "guess", "fallback_user": "mallory", "fallback_password": "right"}
            answers = [client.post(url + "/fallback-login/", data=body) for _ in range(5)]
            assert [(r.status_code, r.json()["user"]) for r in answers] == [(200, "mallory")] * 5
            status = lock.check("alice", "127.0.0.1")
            assert not status.known_address  # mallory's address never became "known" for alice
            assert status.locked  # the account-wide threshold (5) counted all five
            assert client.post(url + "/fallback-login/", data=body).status_code == 429
            # alice's own password from that address is refused too: her account is locked there.
            assert (
                client.post(url + "/fallback-login/", data={"username": "alice", "password": "right"}).status_code
                == 429
            )
    finally:
        store.close()


@pytest.mark.redis
@pytest.mark.server
@pytest.mark.slow
def test_a_django_login_by_username_or_by_email_is_the_counted_accounts_success(
    django_login_server: str, redis_url: str, prefix: str
) -> None:
    import httpx

    url = django_login_server
    lock, store = _django_app_lock(redis_url, prefix)
    try:
        with httpx.Client(timeout=10) as client:
            assert _post_login(client, url, "bob", "right") == 302  # LoginView, by username
            assert client.post(
                url + "/email-login/", data={"username": " Alice@Example.COM", "password": "right"}
            ).json() == {"ok": True}
            fallback = {"username": "mallory", "password": "right", "fallback_user": "bob", "fallback_password": "x"}
            assert client.post(url + "/fallback-login/", data=fallback).json() == {"ok": True, "user": "mallory"}
        # Each success remembered the address for the very account the lockout counted.
        assert lock.check("bob", "127.0.0.1").known_address
        assert lock.check("alice@example.com", "127.0.0.1").known_address
        assert lock.check("mallory", "127.0.0.1").known_address
    finally:
        store.close()


# -- the other ways in: custom getters, GET pages, the FastAPI dependency, statuses ---------------------------


def _flask_route(lock: bg.Lockout, **options: Any) -> tuple[Any, list[str]]:
    import flask

    import backend_guard.flask as bgfl

    app = flask.Flask(__name__)
    bgfl.install_error_handlers(app)
    ran: list[str] = []

    @app.route("/login", methods=["GET", "POST"])
    @lock.protect(**options)
    def login() -> Any:
        ran.append(flask.request.method)
        body = flask.request.get_json(silent=True) or {}
        if body.get("mark") == "ok":
            flask.g.login_attempt.succeeded()
        elif body.get("mark") == "failed":
            flask.g.login_attempt.failed()
        return {"page": True}

    return app.test_client(), ran


def test_a_custom_account_getter_that_finds_no_name_refuses_the_request() -> None:
    lock = bg.Lockout(max_failures=2)
    client, ran = _flask_route(lock, account=lambda call: call.view.header("x-user"))
    for value in (None, "", "  ", "\u200b"):
        headers = {} if value is None else {"x-user": value}
        assert client.post("/login", json={}, headers=headers).status_code == 400
    assert ran == []
    assert client.post("/login", json={}, headers={"x-user": "alice"}).status_code == 200
    assert ran == ["POST"]


def test_a_login_page_get_is_not_an_attempt_but_a_name_in_the_url_is_refused() -> None:
    lock = bg.Lockout(max_failures=2)
    client, ran = _flask_route(lock)
    assert [client.get("/login").status_code for _ in range(5)] == [200] * 5  # only renders the page
    assert client.get("/login?username=alice").status_code == 400
    assert client.post("/login?username=alice", json={"username": "bob"}).status_code == 400
    assert client.post("/login", json={"password": "x"}).status_code == 400  # no name: not run uncounted
    assert client.post("/login", data=b"").status_code == 400
    assert ran == ["GET"] * 5


def test_a_json_body_labelled_as_a_form_is_refused_with_a_detail_that_says_so() -> None:
    client, ran = _flask_route(bg.Lockout(max_failures=2))
    labelled_form = {"content-type": "application/x-www-form-urlencoded"}
    answer = client.post("/login", data=b'{"username": "alice"}', headers=labelled_form)
    assert answer.status_code == 415
    assert "labelled as a form must not be JSON" in answer.get_json()["detail"]
    other = client.post("/login", data=b'{"username": "alice"}', headers={"content-type": "text/plain"})
    assert other.get_json()["detail"] == "A login request body must be JSON, a URL-encoded form or a multipart form."
    assert ran == []


def test_a_status_alone_is_a_success_only_when_the_application_names_it() -> None:
    lock = bg.Lockout(max_failures=2)
    client, _ = _flask_route(lock)
    assert [client.post("/login", json={"username": "a"}).status_code for _ in range(3)] == [200, 200, 429]
    named = bg.Lockout(max_failures=2)
    client, _ = _flask_route(named, success_statuses=(200,))
    assert [client.post("/login", json={"username": "a"}).status_code for _ in range(3)] == [200, 200, 200]
    # A failure the route reports wins over a status named as success.
    failed = [client.post("/login", json={"username": "b", "mark": "failed"}).status_code for _ in range(3)]
    assert failed == [200, 200, 429]
    marked = bg.Lockout(max_failures=2)
    client, _ = _flask_route(marked)
    assert [client.post("/login", json={"username": "a", "mark": "ok"}).status_code for _ in range(3)] == [200] * 3


def _dependency_app(lock: bg.Lockout, ran: list[str], method: str = "POST") -> Any:
    """A FastAPI login route guarded by ``lock.dependency()``, answering ``method``; it records each name it checks."""
    from fastapi import Depends, FastAPI

    import backend_guard.fastapi as bgf

    app = FastAPI()
    bgf.install_error_handlers(app)

    @app.api_route("/login", methods=[method])
    async def login(request: Request, attempt: bg.Attempt = Depends(lock.dependency())) -> Any:  # noqa: B008
        ran.append(json.loads(await request.body())["username"])
        raise lock.invalid_credentials()

    return app


def test_the_fastapi_dependency_refuses_a_body_it_cannot_read_before_the_route() -> None:
    from fastapi.testclient import TestClient

    lock = bg.Lockout(max_failures=2)
    ran: list[str] = []
    client = TestClient(_dependency_app(lock, ran))
    body = json.dumps({"username": "alice", "password": "x"}).encode()
    padded = json.dumps({"username": "alice", "pad": "x" * (1 << 20)}).encode()
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert client.post("/login", content=body, headers=form).status_code == 415
    assert client.post("/login", content=body, headers={"content-type": "multipart/form-data"}).status_code == 415
    assert client.post("/login", content=padded, headers={"content-type": "application/json"}).status_code == 413
    assert ran == []
    assert [client.post("/login", content=body).status_code for _ in range(3)] == [401, 401, 429]
    assert ran == ["alice", "alice"]


# -- a safe method with a body its headers do not declare (HTTP/2 and HTTP/3 need not) ---------------------


def _view(method: str, *headers: tuple[str, str]) -> RequestView:
    return RequestView(method=method, path="/login", headers=tuple(headers), client="127.0.0.1")


def test_a_safe_request_declaring_no_body_is_a_page_only_once_its_body_turns_out_empty() -> None:
    for method in ("GET", "HEAD", "OPTIONS", "get"):
        assert login_body_kind(_view(method), "username") == "unframed"
        # A declared 0 is read too: the server, not the client's header, says whether a body came.
        assert login_body_kind(_view(method, ("content-length", "0")), "username") == "unframed"
        assert unframed_body_kind(_view(method), b"") == "none"
        assert unframed_body_kind(_view(method), b'{"username": "alice"}') == "json"
        form = _view(method, ("content-type", "application/x-www-form-urlencoded"))
        assert unframed_body_kind(form, b"username=alice") == "urlencoded"
        assert unframed_body_kind(form, None) == "urlencoded"  # a form parser consumed the stream: there was one
    with pytest.raises(LoginRequestRefused) as refused:
        unframed_body_kind(_view("GET", ("content-type", "text/plain")), b"username=alice")
    assert refused.value.status == 415
    two_types = _view("GET", ("content-type", "application/json"), ("content-type", "multipart/form-data"))
    with pytest.raises(LoginRequestRefused):
        unframed_body_kind(two_types, b"{}")
    # A page's own odd Content-Type (no body) is still only a page.
    assert unframed_body_kind(_view("GET", ("content-type", "text/plain")), b"") == "none"


@given(st.binary(min_size=1, max_size=64), st.sampled_from(["GET", "HEAD", "OPTIONS"]), st.booleans())
def test_a_safe_request_that_carries_any_body_is_never_a_page(body: bytes, method: str, typed: bool) -> None:
    view = _view(method, ("content-type", "application/json")) if typed else _view(method)
    assert login_body_kind(view, "username") == "unframed"
    assert unframed_body_kind(view, body) == "json"


def _any_method_login_app(lock: bg.Lockout, checked: list[str]) -> Any:
    """A Starlette login route that also answers GET and checks the password of any body it gets, whatever the
    method (the route a GET with a body could otherwise reach uncounted)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    import backend_guard.fastapi as bgf

    @lock.protect()
    async def login(request: Request) -> Any:
        body = await request.body()
        if not body:
            return JSONResponse({"page": True, "http_version": request.scope["http_version"]})
        checked.append(json.loads(body)["username"])
        raise lock.invalid_credentials()

    app = Starlette(routes=[Route("/login", login, methods=["GET", "POST"])])
    bgf.install_error_handlers(app)
    return app


@pytest.mark.server
def test_an_http2_get_with_a_body_it_does_not_declare_is_a_counted_login_attempt() -> None:
    import httpx

    lock = bg.Lockout(max_failures=2)
    checked: list[str] = []
    body = json.dumps({"username": "alice", "password": "wrong"}).encode()

    def streamed() -> Iterator[bytes]:  # no Content-Length: HTTP/2 sends the body in DATA frames, undeclared
        yield body

    with (
        run_asgi_h2(_any_method_login_app(lock, checked)) as url,
        httpx.Client(base_url=url, http1=False, http2=True, timeout=10.0) as client,
    ):
        page = client.get("/login")
        assert (page.http_version, page.status_code, page.json()["http_version"]) == ("HTTP/2", 200, "2")
        assert lock.check("alice", "127.0.0.1").remaining == 2  # a page is not an attempt
        answers = []
        for _ in range(5):
            answer = client.request("GET", "/login", content=streamed(), headers={"content-type": "application/json"})
            assert "content-length" not in answer.request.headers
            answers.append(answer.status_code)
        text = client.request(
            "GET", "/login", content=iter([b"username=alice"]), headers={"content-type": "text/plain"}
        )
    assert answers == [401, 401, 429, 429, 429]
    assert checked == ["alice", "alice"]  # the password check ran as often as the lockout allows, no more
    assert lock.check("alice", "127.0.0.1").locked
    assert text.status_code == 415


def _get_through(app: Any, body: bytes, *headers: tuple[bytes, bytes]) -> int:
    """The status ``app`` answers a GET whose body ``body`` the ASGI server hands over with these headers (an
    HTTP/2 GET need not declare its body; a server that does not check a declared length hands over what came)."""
    import asyncio

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "2",
        "method": "GET",
        "scheme": "http",
        "path": "/login",
        "raw_path": b"/login",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    chunks = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


def test_the_fastapi_dependency_counts_an_http2_get_carrying_a_body() -> None:
    lock = bg.Lockout(max_failures=2)
    ran: list[str] = []
    app = _dependency_app(lock, ran, "GET")
    body = json.dumps({"username": "alice", "password": "x"}).encode()
    assert _get_through(app, b"") == 400  # a route guarded by the dependency always takes an attempt
    assert [_get_through(app, body) for _ in range(3)] == [401, 401, 429]
    assert ran == ["alice", "alice"]


def test_a_fastapi_form_route_serving_its_page_on_get_counts_a_get_form_body_and_renders_a_bodyless_get() -> None:
    from fastapi import FastAPI, Form
    from fastapi.testclient import TestClient

    import backend_guard.fastapi as bgf

    lock = bg.Lockout(max_failures=2)
    app = FastAPI()
    bgf.install_error_handlers(app)
    checked: list[str] = []

    @app.api_route("/login", methods=["GET", "POST"])
    @lock.protect()
    async def login(username: str | None = Form(None), password: str | None = Form(None)) -> Any:  # noqa: B008
        if username is None:
            return {"page": True}
        checked.append(username)
        raise lock.invalid_credentials()

    client = TestClient(app)
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"content-type": content_type} if content_type else {}
        assert client.get("/login", headers=headers).json() == {"page": True}  # FastAPI parsed an empty form
    form = (b"content-type", b"application/x-www-form-urlencoded")
    statuses = [_get_through(app, b"username=alice&password=wrong", form) for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert checked == ["alice", "alice"]


def test_a_get_body_another_reader_consumed_is_refused_not_taken_for_a_page() -> None:
    from fastapi import Depends, FastAPI

    import backend_guard.fastapi as bgf

    lock = bg.Lockout(max_failures=2)
    app = FastAPI()
    bgf.install_error_handlers(app)
    checked: list[str] = []

    async def raw(request: Request) -> bytes:  # a dependency that streams the body: nothing is cached
        return b"".join([chunk async for chunk in request.stream()])

    @app.api_route("/login", methods=["GET", "POST"])
    @lock.protect()
    async def login(raw_body: bytes = Depends(raw)) -> Any:  # noqa: B008
        if not raw_body:
            return {"page": True}
        checked.append(json.loads(raw_body)["username"])
        raise lock.invalid_credentials()

    body = json.dumps({"username": "alice", "password": "wrong"}).encode()
    # No form type: Starlette's form() is an empty form made without the stream, which says nothing of the body.
    for headers in (
        [],
        [(b"content-type", b"application/json")],
        [(b"content-type", b"application/x-www-form-urlencoded")],
    ):
        assert [_get_through(app, body, *headers) for _ in range(3)] == [400, 400, 400]
    assert checked == []


def test_a_declared_content_length_of_0_is_not_taken_on_trust() -> None:
    lock = bg.Lockout(max_failures=2)
    checked: list[str] = []
    app = _any_method_login_app(lock, checked)
    body = json.dumps({"username": "alice", "password": "wrong"}).encode()
    assert _get_through(app, b"", (b"content-length", b"0")) == 200  # a page
    assert [_get_through(app, body, (b"content-length", b"0")) for _ in range(4)] == [401, 401, 429, 429]
    assert checked == ["alice", "alice"]


def test_a_websocket_route_under_the_login_decorator_is_not_refused_for_a_body_it_cannot_have() -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocket

    lock = bg.Lockout(max_failures=2)

    @lock.protect()
    async def hello(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    client = TestClient(Starlette(routes=[WebSocketRoute("/ws", hello)]))
    for _ in range(3):
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_text() == "hello"  # accepted: a handshake has no body to read (refused 400 before)


# -- bodies the framework parsed before the route: FastAPI's Form(), Django's charset ----------------------


def _fastapi_form_app(lock: bg.Lockout, seen: list[str]) -> Any:
    from fastapi import Depends, FastAPI, Form

    import backend_guard.fastapi as bgf

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await lock.store.aclose()

    app = FastAPI(lifespan=lifespan)
    bgf.install_error_handlers(app)

    @app.post("/login")
    @lock.protect()
    async def login(username: str = Form(), password: str = Form()) -> Any:  # noqa: B008
        seen.append(username)
        raise lock.invalid_credentials()

    @app.post("/login-sync")
    @lock.protect()
    def login_sync(username: str = Form(), password: str = Form()) -> Any:  # noqa: B008
        seen.append(username)
        raise lock.invalid_credentials()

    @app.post("/login-dep")
    async def login_dep(
        username: str = Form(),  # noqa: B008
        attempt: bg.Attempt = Depends(lock.dependency()),  # noqa: B008
    ) -> Any:
        seen.append(username)
        raise lock.invalid_credentials()

    return app


@pytest.mark.server
@pytest.mark.parametrize("route", ["/login", "/login-sync", "/login-dep"])
def test_a_fastapi_form_login_in_a_urlencoded_body_is_counted_under_the_form_name(route: str) -> None:
    import httpx

    # FastAPI parses a Form() body from the stream before the route runs: the raw bytes are gone for the route
    # too, so the lockout reads the very form FastAPI parsed (an HTML form or OAuth2PasswordRequestForm login).
    lock = bg.Lockout(max_failures=3, secret=SECRET)
    seen: list[str] = []
    with run_asgi(_fastapi_form_app(lock, seen), lifespan="on") as url, httpx.Client(timeout=10) as client:
        statuses = [client.post(url + route, data={"username": "alice", "password": "x"}).status_code for _ in range(5)]
        json_labelled = client.post(
            url + route,
            content=b'{"username": "bob"}',
            headers={"content-type": "application/x-www-form-urlencoded"},
        ).status_code
    assert statuses == [401, 401, 401, 429, 429]
    assert seen == ["alice"] * 3
    assert json_labelled in REFUSALS | {422}  # no form name: never reaches the route


def _django_charset_app(lock: bg.Lockout, seen: list[str]) -> tuple[Any, str]:
    from django.conf import settings
    from django.urls import path

    from . import django_app

    django_app.setup()

    @lock.protect()
    def login(request: Any) -> Any:
        # What Django REST framework's JSONParser does: decode with the Content-Type charset (request.encoding).
        data = json.loads(request.body.decode(request.encoding or settings.DEFAULT_CHARSET))
        seen.append(data["username"])
        raise lock.invalid_credentials()

    route = f"login-charset-{id(lock)}/"
    django_app.add_urls(path(route, login))
    return django_app.wsgi_app(["backend_guard.django.ErrorEnvelopeMiddleware"]), "/" + route


@pytest.mark.server
def test_a_django_json_body_read_with_its_declared_charset_is_refused_or_counted_under_that_name() -> None:
    import httpx

    lock = bg.Lockout(max_failures=3, secret=SECRET)
    seen: list[str] = []
    app, route = _django_charset_app(lock, seen)
    # A fresh UTF-7 spelling of alice per guess: JSON read from the bytes sees "+AGE-lice", "a+AGw-ice", ...
    spellings = ["+AGE-lice", "a+AGw-ice", "al+AGk-ce", "ali+AGM-e", "alic+AGU-", "+AGEAbA-ice"]
    utf7 = {"content-type": "application/json; charset=utf-7"}
    with run_wsgi(app) as url, httpx.Client(timeout=10) as client:
        statuses = [
            client.post(url + route, content=json.dumps({"username": s}).encode(), headers=utf7).status_code
            for s in spellings
        ]
        plain = [client.post(url + route, content=b'{"username": "alice"}', headers=utf7).status_code for _ in range(5)]
    assert set(statuses) <= REFUSALS, statuses
    assert plain == [401, 401, 401, 429, 429]  # the same name either way: counted
    assert seen == ["alice"] * 3


def _json_and_django_multipart(decoy: str, charset: str) -> bytes:
    """A JSON guess at alice that Django's multipart parser also reads as a form naming ``decoy``: Django finds
    a boundary anywhere (no line break before it), so a JSON string opens a part whose headers end at JSON
    whitespace (CRLF CRLF) and whose value runs to the next boundary. In UTF-7 the braces are spelled
    ``+AHs-``/``+AH0-``: the raw bytes are then not JSON, but the body decoded with its charset is."""
    body = (
        b'{"username": "alice", "password": "wrong", "z": "--XYZcontent-disposition: form-data; name=username;"'
        b'\r\n\r\n, "q": "' + decoy.encode() + b'--XYZ--"}'
    )
    return body.replace(b"{", b"+AHs-").replace(b"}", b"+AH0-") if charset == "utf-7" else body


@pytest.mark.server
@pytest.mark.parametrize("charset", ["utf-8", "utf-7"])
def test_a_json_body_that_django_also_reads_as_a_multipart_form_is_refused_before_the_route(charset: str) -> None:
    import httpx

    lock = bg.Lockout(max_failures=3, secret=SECRET)
    seen: list[str] = []
    app, route = _django_charset_app(lock, seen)  # the view reads the body as JSON, whatever the label says
    headers = {"content-type": f"multipart/form-data; boundary=XYZ; charset={charset}"}
    with run_wsgi(app) as url, httpx.Client(timeout=10) as client:
        # A fresh decoy per guess: counted under the decoy, alice's password would be checked without end.
        statuses = [
            client.post(url + route, content=_json_and_django_multipart(f"decoy{i}", charset), headers=headers)
            for i in range(6)
        ]
    assert {s.status_code for s in statuses} == {415}, [(s.status_code, s.text) for s in statuses]
    assert seen == []


def _starlette_form_app(lock: bg.Lockout, seen: list[str]) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    @lock.protect()
    async def login(request: Request) -> Any:
        seen.append(str((await request.form()).get("username")))  # Starlette reads the first Content-Type
        return JSONResponse({}, status_code=401)

    return Starlette(routes=[Route("/login", login, methods=["POST"])])


@pytest.mark.server
def test_a_login_with_two_content_types_is_refused_before_the_route() -> None:
    import httpx

    lock = bg.Lockout(max_failures=3, secret=SECRET)
    seen: list[str] = []
    # Joined, the two read "application/x-www-form-urlencoded, application/ld+json": a +json type to the lockout,
    # which would count the JSON's fresh decoy, while Starlette parses the form under the first one (alice).
    headers = [("content-type", "application/x-www-form-urlencoded"), ("content-type", "application/ld+json")]
    with run_asgi(_starlette_form_app(lock, seen)) as url, httpx.Client(timeout=10) as client:
        statuses = [
            client.post(
                url + "/login",
                content=json.dumps({"username": f"decoy{i}", "x": "&username=alice&"}).encode(),
                headers=headers,
            ).status_code
            for i in range(6)
        ]
    assert set(statuses) == {400}, statuses
    assert seen == []


def _django_body_reading_app(lock: bg.Lockout) -> tuple[Any, str]:
    from django.http import JsonResponse
    from django.urls import path

    from . import django_app

    django_app.setup()

    @lock.protect()
    def login(request: Any) -> Any:
        # What the Django quickstart's view does: read the raw body (to parse JSON), whatever the Content-Type.
        return JsonResponse({"body": len(request.body), "form": request.POST.get("username")})

    route = f"login-raw-body-{id(lock)}/"
    django_app.add_urls(path(route, login))
    return django_app.wsgi_app(["backend_guard.django.ErrorEnvelopeMiddleware"]), "/" + route


@pytest.mark.server
def test_a_django_login_view_can_still_read_the_raw_body_of_a_multipart_form_the_lockout_read() -> None:
    import httpx

    lock = bg.Lockout(max_failures=3, secret=SECRET)
    app, route = _django_body_reading_app(lock)
    with run_wsgi(app) as url, httpx.Client(timeout=10) as client:
        answer = client.post(url + route, files={"username": (None, "alice"), "password": (None, "x")})
    assert answer.status_code == 200, answer.text  # not a 500 from Django's RawPostDataException
    assert answer.json()["form"] == "alice"
    assert answer.json()["body"] > 0
    assert lock.check("alice", "127.0.0.1").remaining == 2  # counted under the name the route reads


@pytest.mark.parametrize("length", ["-1", " 5", "+7", "1_000", "\u0661\u0662", "5 ", "0x10", ""])
def test_a_content_length_that_is_not_ascii_digits_is_refused_before_the_route(length: str) -> None:
    # int() reads all of these; a server in front may not, so the lockout and the route could see different
    # bodies (RFC 9110: Content-Length = 1*DIGIT).
    headers = (("content-length", length), ("content-type", "application/json"))
    with pytest.raises(LoginRequestRefused, match="not a number"):
        login_body_kind(RequestView(method="POST", path="/login", headers=headers), "username")
    ok = RequestView(method="POST", path="/login", headers=(("content-length", "17"),))
    assert login_body_kind(ok, "username") == "json"


@pytest.mark.parametrize(
    "body",
    [
        b'\xff\xfe{"username": "alice"}',  # a UTF-16 mark with no NUL after it
        b'\xfe\xff{"username": "alice"}',
        b'\xef\xbb\xbf\xef\xbb\xbf{"username": "alice"}',  # two UTF-8 marks
        b'\xef\xbb\xbf{"username": "alice", "password": "a\x01b"}',  # a raw control character after a mark
    ],
)
def test_a_flask_body_after_a_byte_order_mark_must_pass_the_strict_reader_too(body: bytes) -> None:
    # A body json.loads does not read as plain UTF-8 may hold the member twice in another reading: it must pass
    # the strict reader (as it did before the reading of the name was made cheaper), whatever the provider reads.
    client, _, counted, _, _ = _flask_own_json(lenient=True)
    assert client.post("/login", data=body, content_type="application/json").status_code == 400
    assert counted == []


def test_a_flask_body_read_as_utf8_with_a_raw_nul_counts_the_name_the_provider_reads() -> None:
    # A raw NUL inside a string is JSON to a strict=False provider: the body is read as UTF-8 by json.loads, the
    # member cannot repeat, so the provider's name is counted and the route runs (it was never refused).
    client, lock, counted, _, _ = _flask_own_json(lenient=True)
    body = b'{"username": "alice", "password": "a\x00b"}'
    assert client.post("/login", data=body, content_type="application/json").status_code == 401
    assert counted == [lock.account_id("alice")]
