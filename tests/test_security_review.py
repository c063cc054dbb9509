"""Regression tests for the findings of the security review (one test, or a few, per finding).

Each test failed before its fix: the grace seal opened from the store alone, non-canonical token spellings,
lockout names hidden from the decorator, invisible characters in account names, stored hashes asking for
unbounded work, forged log lines, a client choosing to be counted as its proxy, IDNA deviations in CORS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

import backend_guard as bg
from backend_guard._keys import generate_key
from backend_guard._logging import log_server_error
from backend_guard.clientip import MAX_HEADER_LENGTH, ClientIP
from backend_guard.cors import CORSPolicy
from backend_guard.exceptions import ConfigurationError, InvalidHash, InvalidToken
from backend_guard.lockout import Lockout, normalize_identifier
from backend_guard.passwords import TEST, PasswordHasher
from backend_guard.storage import MemoryStore, Script
from backend_guard.tokens import TokenManager

from .conftest import FrozenClock

PEM, _ = generate_key("EdDSA")


def _tm(store: Any = None, **kw: Any) -> TokenManager:
    return TokenManager(PEM, "EdDSA", issuer="https://auth.example", audience="api", store=store, **kw)


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- tokens: the grace seal must not open from what the store holds ---------------------------------------


def test_the_store_alone_cannot_open_the_grace_successor() -> None:
    store = MemoryStore()
    tm = _tm(store, grace_window=30)
    first = tm.issue("mallory-victim")
    successor = tm.rotate(first.refresh_token)
    sid = tm.verify_access(successor.access_token)["sid"]
    read = Script(
        name="read-family", lua="return redis.call('GET', KEYS[1])", memory=lambda db, keys, args: db.get(keys[0])
    )
    fam = store.run(read, [tm._family_keys("mallory-victim", sid)[0]], [])
    # What an attacker reading the store (a dump, a replica, a backup) holds: the digests and the sealed blob.
    prev_digest = bytes.fromhex(fam["prev"])
    blob = _b64d(fam["sealed"])
    # HMAC hashes a key longer than its block first: HMAC(token, m) == HMAC(SHA-256(token), m). So any seal key
    # made by keying HMAC with the token is computable from the stored digest. None may open the blob.
    for info in (b"backend_guard refresh grace seal v1", b"backend_guard refresh grace seal v2"):
        candidate = hmac.new(prev_digest, info, hashlib.sha256).digest()
        with pytest.raises(InvalidTag):
            AESGCM(candidate).decrypt(blob[:12], blob[12:], sid.encode("ascii"))
    # ... while the holder of the previous token still gets the same successor back.
    assert tm.rotate(first.refresh_token).refresh_token == successor.refresh_token


# -- tokens: one spelling per token ----------------------------------------------------------------------


def _padded(token: str, index: int) -> str | None:
    parts = token.split(".")
    rest = len(parts[index]) % 4
    if not rest:
        return None
    parts[index] += "=" * (4 - rest)
    return ".".join(parts)


def test_padded_or_junk_spellings_of_a_token_are_refused() -> None:
    tm = _tm()
    pair = tm.issue("u")
    variants = [v for v in (_padded(pair.access_token, i) for i in range(3)) if v is not None]
    assert variants
    head, payload, sig = pair.access_token.split(".")
    variants += [
        f"{head}.{payload}.{sig}!!!!",
        f"{head}.{payload}.{sig[:4]}\u00e9\u00e9{sig[4:]}",
        f" {pair.access_token}",
        f"{head}.{payload}.{sig}.",
    ]
    for variant in variants:
        with pytest.raises(InvalidToken):
            tm.verify_access(variant)
    assert tm.verify_access(pair.access_token)["sub"] == "u"


def test_non_canonical_trailing_bits_are_refused() -> None:
    tm = _tm()
    token = tm.issue("u").access_token
    head, payload, sig = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(sig) % 4 in (2, 3)
    # Another last character that decodes to the same bytes (only the unused low bits differ).
    same = [c for c in alphabet if c != sig[-1] and _b64d(sig[:-1] + c) == _b64d(sig)]
    assert same
    for c in same:
        with pytest.raises(InvalidToken):
            tm.verify_access(f"{head}.{payload}.{sig[:-1]}{c}")


def test_a_padded_refresh_token_does_not_revoke_the_family() -> None:
    tm = _tm(MemoryStore(), grace_window=0)
    pair = tm.issue("u")
    # The payload or the signature: PyJWT itself accepts their padding (the header is this manager's to parse).
    variant = next(v for v in (_padded(pair.refresh_token, i) for i in (2, 1)) if v is not None)
    with pytest.raises(InvalidToken) as info:
        tm.rotate(variant)
    assert not isinstance(info.value, bg.TokenReused)
    tm.rotate(pair.refresh_token)  # the login is still alive


@given(st.text(max_size=200))
def test_arbitrary_text_rotates_to_invalid_token_only(text: str) -> None:
    tm = _TM_FOR_FUZZ
    with pytest.raises(InvalidToken):
        tm.rotate(text)


_TM_FOR_FUZZ = _tm()


# -- lockout: the decorator must see the name the route sees ----------------------------------------------


class LoginForm(BaseModel):
    username: str
    password: str


def _fastapi_login(lock: Lockout) -> Any:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    import backend_guard.fastapi as bgf

    app = FastAPI(strict_content_type=False)  # FastAPI's behaviour before 0.132, and an option since
    bgf.install_error_handlers(app)

    @app.post("/login")
    @lock.protect(field="username")
    async def login(form: LoginForm) -> dict[str, Any]:
        if form.password != "right":
            raise lock.invalid_credentials()
        return {"ok": True}

    return TestClient(app)


def test_a_body_without_content_type_still_counts_against_the_account() -> None:
    lock = Lockout(max_failures=3)
    client = _fastapi_login(lock)
    body = json.dumps({"username": "alice", "password": "wrong"}).encode()
    for _ in range(3):
        assert client.post("/login", content=body, headers={"content-type": ""}).status_code == 401
    assert lock.check("alice", "testclient").locked
    good = json.dumps({"username": "alice", "password": "right"}).encode()
    assert client.post("/login", content=good, headers={"content-type": ""}).status_code == 429
    assert client.post("/login", json={"username": "alice", "password": "right"}).status_code == 429


def test_a_json_body_sent_as_a_form_is_refused_before_the_route() -> None:
    import flask

    lock = Lockout(max_failures=2)
    app = flask.Flask(__name__)
    bg_flask = pytest.importorskip("backend_guard.flask")
    bg_flask.install_error_handlers(app)
    checks: list[str] = []

    @app.post("/login")
    @lock.protect(field="username")
    def login() -> Any:
        data = json.loads(flask.request.get_data())  # a view that ignores the Content-Type
        checks.append(data["username"])
        if data["password"] != "right":
            raise lock.invalid_credentials()
        return {"ok": True}

    client = app.test_client()
    body = json.dumps({"username": "bob", "password": "x"})
    for _ in range(4):
        r = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
        assert r.status_code == 415
        assert r.headers["content-type"] == "application/problem+json"
    assert checks == []  # the password check never ran for a name the lockout could not read
    for _ in range(2):
        assert client.post("/login", data=body, content_type="application/json").status_code == 401
    assert lock.check("bob", "127.0.0.1").locked


@pytest.mark.parametrize(
    "variant",
    ["al\u200bice", "alice\u200d", "\ufeffalice", "ali\u00adce", "al\u2060ice", "a\u034flice", "alice\ufe0f"],
)
def test_invisible_characters_do_not_make_a_new_account(variant: str) -> None:
    assert normalize_identifier(variant) == "alice"
    lock = Lockout(max_failures=2)
    lock.record_failure("alice", "192.0.2.1")
    lock.record_failure(variant, "192.0.2.1")
    assert lock.check("alice", "192.0.2.1").locked


@given(st.text(max_size=30))
def test_normalisation_stays_a_fixed_point(name: str) -> None:
    once = normalize_identifier(name)
    assert normalize_identifier(once) == once


# -- passwords: a stored hash cannot ask for unbounded work -----------------------------------------------


def _hasher() -> PasswordHasher:
    return PasswordHasher(TEST, allow_weak=True)


def _argon2_with(m: int, t: int, p: int) -> str:
    salt = base64.b64encode(b"0123456789abcdef").decode().rstrip("=")
    digest = base64.b64encode(b"x" * 32).decode().rstrip("=")
    return f"$argon2id$v=19$m={m},t={t},p={p}${salt}${digest}"


@pytest.mark.parametrize(
    "stored",
    [
        _argon2_with(8, 4_000_000_000, 1),  # iterations: hours of work with 8 KiB
        _argon2_with(1024 * 1024, 100, 1),  # within the memory bound, but 100 passes over 1 GiB
        _argon2_with(8 * 999, 1, 999),  # 999 lanes: libargon2 starts a thread per lane
        "argon2" + _argon2_with(16 * 1024 * 1024, 1, 1),  # Django's format skipped the memory bound (16 GiB)
        "argon2" + _argon2_with(8, 4_000_000_000, 1),
        "$2b$31$" + "a" * 53,  # bcrypt cost 31: 2**31 rounds
    ],
)
def test_stored_hashes_asking_for_unbounded_work_are_invalid(stored: str) -> None:
    hasher = _hasher()
    with pytest.raises(InvalidHash):
        hasher.verify(stored, "password")
    with pytest.raises(InvalidHash):
        hasher.verify_and_update(stored, "password")


def test_a_strong_but_reasonable_stored_hash_still_verifies() -> None:
    strong = PasswordHasher(bg.Argon2Parameters(time_cost=3, memory_cost=65536, parallelism=4))
    stored = strong.hash("pw")
    assert _hasher().verify(stored, "pw")


# -- logging: request values cannot forge log lines ---------------------------------------------------------


def test_server_error_log_escapes_control_characters(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="backend_guard.errors")
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        log_server_error(
            exc,
            request_id="r1",
            method="GET\r\nX",
            route="/a\r\n2025-01-01 INFO forged line\x1b[2J\u2028" + "z" * 5000,
            status=500,
        )
    (record,) = caplog.records
    message = record.getMessage()
    for bad in ("\n", "\r", "\x1b", "\u2028"):
        assert bad not in message
    assert "\\r\\n2025-01-01 INFO forged line" in message
    assert len(message) < 1000
    assert "\n" not in record.http_route  # type: ignore[attr-defined]
    assert "\n" not in record.http_method  # type: ignore[attr-defined]


# -- client address: an overlong header must not choose the proxy's bucket -----------------------------


@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded"])
def test_an_overlong_forwarding_header_still_yields_the_client(header: str) -> None:
    cip = ClientIP(["10.0.0.0/8"], forwarded_header=header)
    junk = ",".join(["1.1.1.1"] * (MAX_HEADER_LENGTH // 4))
    value = f"{junk}, 198.51.100.7" if header == "x-forwarded-for" else f"{junk}, for=198.51.100.7"
    assert len(value) > MAX_HEADER_LENGTH
    assert cip.resolve("10.0.0.5", {header: value}).address == "198.51.100.7"
    # One huge item with no comma in the kept end: the proxy, as before (nothing whole to read).
    assert cip.resolve("10.0.0.5", {header: "9" * (MAX_HEADER_LENGTH * 2)}).address == "10.0.0.5"


# -- CORS: IDNA 2003 and browsers disagree on deviation characters ----------------------------------------


@pytest.mark.parametrize("origin", ["https://faß.example", "https://FAẞ.example", "https://ς.example"])
def test_cors_refuses_idna_deviation_characters_in_configured_origins(origin: str) -> None:
    with pytest.raises(ConfigurationError, match="xn--"):
        CORSPolicy(allow_origins=[origin])


def test_cors_other_idna_hosts_still_work() -> None:
    policy = CORSPolicy(allow_origins=["https://bücher.example"])
    assert policy.is_allowed_origin("https://xn--bcher-kva.example")
    assert not policy.is_allowed_origin("https://fass.example")


def test_the_grace_replay_ends_with_its_window() -> None:
    # The new seal key changes nothing else: after the window the previous token is reuse, as before.
    clock = FrozenClock()
    tm = _tm(MemoryStore(clock=clock), grace_window=5, clock=clock)
    first = tm.issue("u")
    second = tm.rotate(first.refresh_token)
    clock.advance(6)
    with pytest.raises(bg.TokenReused):
        tm.rotate(first.refresh_token)
    with pytest.raises(bg.TokenReused):
        tm.rotate(second.refresh_token)
