"""TokenManager inputs as applications pass them: integer primary keys, lists of scopes, one-line PEM keys."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import backend_guard as bg
from backend_guard._keys import generate_key
from backend_guard.exceptions import ConfigurationError, InvalidToken
from backend_guard.storage import Store
from backend_guard.tokens import TokenManager

from .conftest import FrozenClock

SECRET = "k" * 32


def _manager(store: Store | None = None) -> TokenManager:
    return TokenManager(SECRET, "HS256", issuer="https://a", audience="api", store=store, clock=FrozenClock())


@pytest.fixture
def tm(store: Store) -> TokenManager:
    return _manager(store)


def test_an_integer_primary_key_is_a_subject_and_comes_back_as_its_string(tm: TokenManager) -> None:
    pair = tm.issue(42)
    assert tm.verify_access(pair.access_token)["sub"] == "42"
    rotated = tm.rotate(pair.refresh_token)
    assert tm.verify_access(rotated.access_token)["sub"] == "42"
    assert tm.revoke_subject(42) == 1  # the same login as issue(42), and as revoke_subject("42") would end
    with pytest.raises(InvalidToken, match="ended"):
        tm.rotate(rotated.refresh_token)


@given(subject=st.integers())
def test_any_integer_subject_round_trips_as_its_decimal_string(subject: int) -> None:
    tm = _manager()
    assert tm.verify_access(tm.issue(subject).access_token)["sub"] == str(subject)


@pytest.mark.parametrize("subject", [True, False, None, 4.2, b"42", uuid.UUID(int=7), ["42"], ""])
def test_subjects_other_than_str_or_int_are_a_clear_configuration_error(subject: Any) -> None:
    tm = _manager()
    with pytest.raises(ConfigurationError, match="subject must be"):
        tm.issue(subject)
    with pytest.raises(ConfigurationError, match="subject must be"):
        tm.revoke_subject(subject)


def test_a_login_whose_tokens_would_be_too_long_to_verify_is_refused_and_stores_nothing(tm: TokenManager) -> None:
    # A 6,000-character e-mail as subject, or 900 roles: tokens over max_token_length (8,192), which every check
    # refuses: the login would look successful and be unusable.
    for subject, claims in (("l" * 6000 + "@example.com", None), ("u", {"roles": [f"role-{i}" for i in range(900)]})):
        with pytest.raises(ConfigurationError, match="over max_token_length=8192"):
            tm.issue(subject, claims)
        assert tm.revoke_subject(subject) == 0  # no login was stored
    pair = tm.issue("u", {"roles": ["admin"]})
    with pytest.raises(ConfigurationError, match="over max_token_length"):
        tm.rotate(pair.refresh_token, {"roles": [f"role-{i}" for i in range(900)]})
    rotated = tm.rotate(pair.refresh_token)  # the refused rotation spent nothing: the token still rotates
    assert tm.verify_access(rotated.access_token)["roles"] == ["admin"]


@given(length=st.integers(min_value=1, max_value=9000))
def test_every_pair_issue_returns_is_one_its_checks_accept(length: int) -> None:
    tm = _manager()
    try:
        pair = tm.issue("s" * length)
    except ConfigurationError:
        assert length > 5000  # only a subject this long makes a token over 8,192 characters
        return
    assert tm.verify_access(pair.access_token)["sub"] == "s" * length
    assert tm.rotate(pair.refresh_token).access_token


async def test_the_async_twins_take_integer_subjects_too() -> None:
    tm = _manager()
    pair = await tm.aissue(7)
    assert (await tm.averify_access(pair.access_token))["sub"] == "7"
    assert await tm.arevoke_subject(7) == 1


@pytest.mark.parametrize(
    ("scope", "stored"),
    [
        (["read", "write"], "read write"),
        (("read",), "read"),
        (frozenset({"write", "read"}), "read write"),
        (["read", "read", "admin"], "read admin"),
        ([], ""),
        ("read write", "read write"),
    ],
)
def test_a_scope_list_is_stored_as_the_oauth_space_separated_string(scope: Any, stored: str) -> None:
    tm = _manager()
    pair = tm.issue("u", {"scope": scope})
    assert tm.verify_access(pair.access_token)["scope"] == stored
    assert tm.verify_access(tm.rotate(pair.refresh_token).access_token)["scope"] == stored
    assert tm.verify_access(tm.rotate(tm.issue("u").refresh_token, {"scope": scope}).access_token)["scope"] == stored


@pytest.mark.parametrize("scope", [["read write"], ['re"ad'], [""], [1], [None], {"read": True}, b"read", 3])
def test_a_scope_that_is_not_a_list_of_scope_strings_is_refused_at_issue_time(scope: Any) -> None:
    with pytest.raises(ConfigurationError, match="scope"):
        _manager().issue("u", {"scope": scope})


def test_require_auth_grants_the_scopes_given_as_a_list_at_issue_time() -> None:
    tm = _manager()

    @tm.require_auth(scopes=["read", "write"])
    async def edit(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.auth["sub"]})

    app = Starlette(routes=[Route("/edit", edit)])
    both = tm.issue(42, {"scope": ["read", "write"]}).access_token
    one = tm.issue(42, {"scope": ["read"]}).access_token
    with TestClient(app) as client:
        assert client.get("/edit", headers={"Authorization": f"Bearer {both}"}).json() == {"sub": "42"}
        assert client.get("/edit", headers={"Authorization": f"Bearer {one}"}).status_code == 403


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "RS256"])
@pytest.mark.parametrize("newline", ["\\n", "\\r\\n"])
def test_a_pem_key_with_literal_backslash_n_from_the_environment_works(algorithm: str, newline: str) -> None:
    pem, _ = generate_key(algorithm)
    one_line = pem.strip().replace("\n", newline)  # how a one-line env variable or a .env file holds it
    assert "\n" not in one_line
    direct = TokenManager(one_line, algorithm, issuer="https://a", audience="api")
    settings = bg.GuardSettings.from_env(
        {"BACKEND_GUARD_TOKENS__KEY": one_line, "BACKEND_GUARD_TOKENS__ALGORITHM": algorithm}
    )
    from_env = settings.tokens.build("memory://")
    real = TokenManager(pem, algorithm, issuer="https://a", audience="api")
    kids = {tm.keys.signing_key.kid for tm in (direct, from_env, real) if tm.keys.signing_key is not None}
    assert len(kids) == 1  # the very same key, read three ways
    pair = from_env.issue(42)
    assert from_env.verify_access(pair.access_token)["sub"] == "42"


def test_an_hmac_secret_with_backslash_n_is_taken_as_it_is() -> None:
    secret = "a\\nb" * 10  # not a PEM: the two characters stay two characters
    tm = TokenManager(secret, "HS256", issuer="https://a", audience="api")
    assert tm.keys.signing_key is not None
    assert tm.keys.signing_key.signing == secret.encode()
