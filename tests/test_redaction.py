"""Redaction knows the secret-bearing names by their words, and problem documents never carry their values."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend_guard.errors import problem_document
from backend_guard.errors._redact import REDACTED, is_sensitive_key, redact_headers, redact_mapping
from backend_guard.integrations._errors_fastapi import install_fastapi_error_handlers

from .servers import run_asgi

# Each a secret's name, as words (joined below with any separator or in camelCase).
SECRET_NAMES = [
    ["jwt"],
    ["pw"],
    ["pwd"],
    ["passwd"],
    ["password"],
    ["secret"],
    ["token"],
    ["dsn"],
    ["database", "url"],
    ["bearer"],
    ["privkey"],
    ["private", "key"],
    ["mfa", "code"],
    ["otp"],
    ["totp"],
    ["api", "key"],
    ["cookie"],
    ["authorization"],
    ["x", "jwt", "assertion"],
    ["dpop"],
    ["subscription", "key"],
    ["ocp", "apim", "subscription", "key"],
    ["client", "assertion"],
    ["client", "secret"],
    ["x", "api", "key"],
    ["private", "token"],
    ["otp", "code"],
    ["code", "verifier"],
]
# Glued spellings: an owner word and a secret's ending in one word ("oldpw", "newpwd", "dbpass", "rootpassword").
GLUED_OWNERS = ["old", "new", "user", "db", "admin", "root", "ldap", "smtp", "my", "current", "confirm", "app"]
GLUED_ENDINGS = ["pw", "pwd", "pass", "passwd", "password", "secret", "token", "apikey", "subscriptionkey"]
OTHER_WORDS = st.lists(st.sampled_from(["user", "new", "old", "app", "main", "value", "my", "current"]), max_size=2)
HARMLESS = [
    "email",
    "author",
    "authority_name",
    "passport",
    "compass",
    "bypass_cache",
    "shipping",
    "spinner",
    "public_key",
    "key",
    "username",
    "description",
    "mfa_enabled",
    "redirect_url",
    "tokenizer",
    "status",
    "keyboard",
    "bypassCache",
    "BYPASS_CACHE",
    "encompass",
    "overpass_id",
    "trespass_notice",
    "subscription_id",
    "subscription_plan",
    "assertion_count",
    "verifier_name",
]
# Decided: redacted although they may hold nothing secret (a password hint often gives the password away).
REDACTED_ON_PURPOSE = ["password_hint", "assertion", "client_assertion_type", "pin"]


def _case(word: str, style: int) -> str:
    return [word.lower(), word.upper(), word.capitalize()][style]


@settings(max_examples=400, deadline=None)
@given(
    secret=st.sampled_from(SECRET_NAMES),
    before=OTHER_WORDS,
    after=OTHER_WORDS,
    separator=st.sampled_from(["_", "-", ".", " ", "__", "camel"]),
    style=st.integers(0, 2),
)
def test_any_name_containing_a_secret_word_is_redacted(
    secret: list[str], before: list[str], after: list[str], separator: str, style: int
) -> None:
    words = [*before, *secret, *after]
    if separator == "camel":
        name = words[0].lower() + "".join(w.capitalize() for w in words[1:])
    else:
        name = separator.join(_case(w, style) for w in words)
    assert is_sensitive_key(name), name
    assert redact_mapping({name: "s3cr3t-value"}) == {name: REDACTED}


@settings(max_examples=300, deadline=None)
@given(
    owner=st.sampled_from(GLUED_OWNERS),
    ending=st.sampled_from(GLUED_ENDINGS),
    before=OTHER_WORDS,
    separator=st.sampled_from(["_", "-", ".", "camel"]),
    style=st.integers(0, 2),
)
def test_a_secret_glued_to_its_owner_word_is_redacted(
    owner: str, ending: str, before: list[str], separator: str, style: int
) -> None:
    words = [*before, owner + ending]
    if separator == "camel":
        name = words[0].lower() + "".join(w.capitalize() for w in words[1:])
    else:
        name = separator.join(_case(w, style) for w in words)
    assert is_sensitive_key(name), name
    assert redact_mapping({name: "s3cr3t-value"}) == {name: REDACTED}


@pytest.mark.parametrize(
    "name",
    ["oldpw", "newpwd", "userpass", "dbpass", "Ocp-Apim-Subscription-Key", "client_assertion", *REDACTED_ON_PURPOSE],
)
def test_names_reviewers_found_unredacted_are_redacted(name: str) -> None:
    assert is_sensitive_key(name)
    assert redact_headers([(name, "abc")]) == [(name, REDACTED)]


@pytest.mark.parametrize("name", HARMLESS)
def test_common_harmless_names_are_not_redacted(name: str) -> None:
    assert not is_sensitive_key(name)
    assert redact_mapping({name: "v"}) == {name: "v"}


@pytest.mark.parametrize("header", ["X-JWT-Assertion", "DPoP", "x-api-key", "Authorization", "Cookie"])
def test_secret_headers_are_redacted(header: str) -> None:
    assert redact_headers([(header, "abc"), ("Accept", "*/*")]) == [(header, REDACTED), ("Accept", "*/*")]


def test_a_url_with_a_password_is_redacted_under_any_name() -> None:
    data = {"target": "postgres://app:s3cret@db.internal/app", "home": "https://example.com/a@b"}
    assert redact_mapping(data) == {"target": REDACTED, "home": "https://example.com/a@b"}


def test_a_url_with_a_password_inside_a_longer_text_is_redacted() -> None:
    data = {"error": "could not connect to postgres://app:s3cret@db.internal/app (timeout)", "note": "at 10:30 @ home"}
    assert redact_mapping(data) == {"error": REDACTED, "note": "at 10:30 @ home"}


def test_a_url_with_a_password_as_a_query_option_is_redacted() -> None:
    data = {"store": "redis://db.internal:6379/0?Password=s3cret", "next": "https://example.com/?page=2"}
    assert redact_mapping(data) == {"store": REDACTED, "next": "https://example.com/?page=2"}
    # Spellings redis-py reads a password from too (review of c5cb666).
    for url in (
        "redis://db:6379/0?pass%77ord=s3",
        "redis://db/0?%70assword=s3",
        "rediss://db/0?ssl_pass%77ord=s3",
        "redis://u:S3CR\tETX@db:6379/0",
    ):
        assert redact_mapping({"upstream": url}) == {"upstream": REDACTED}, url


def test_problem_document_extensions_are_redacted() -> None:
    doc = problem_document(400, extensions={"jwt": "eyJhbGciOi.x.y", "dsn": "https://k@sentry", "field": "email"})
    assert doc["jwt"] == REDACTED
    assert doc["dsn"] == REDACTED
    assert doc["field"] == "email"


SECRET = "eyJhbGciOiJIUzI1NiJ9.secret-part.sig"


@pytest.fixture(scope="module")
def fastapi_url() -> Iterator[str]:
    from fastapi import FastAPI, HTTPException

    app = FastAPI()
    install_fastapi_error_handlers(app)

    @app.get("/refused")
    def refused() -> None:
        detail = {"reason": "expired", "bearer": SECRET, "session": {"db_password": SECRET, "user": "ann"}}
        raise HTTPException(401, detail=detail)

    @app.post("/echo")
    def echo(body: dict[str, str]) -> None:
        raise HTTPException(400, detail={"problem": "not accepted", "value": body.get("value", "")})

    with run_asgi(app) as url:
        yield url


@pytest.mark.server
def test_an_http_exceptions_structured_detail_reaches_the_body_redacted(fastapi_url: str) -> None:
    r = httpx.get(fastapi_url + "/refused")
    assert r.status_code == 401
    assert SECRET not in r.text
    data = r.json()["data"]
    assert data["reason"] == "expired"
    assert data["bearer"] == REDACTED
    assert data["session"] == REDACTED  # a session is a secret as a whole


@pytest.mark.server
def test_a_long_echoed_value_full_of_colons_is_answered_at_once(fastapi_url: str) -> None:
    # An app echoing the client's input in a structured detail: redacting it must stay linear in its length
    # (a pattern backtracking over every ':' took minutes for 200 KB).
    value = "a://" + ":" * 200_000
    r = httpx.post(fastapi_url + "/echo", json={"value": value}, timeout=30)
    assert r.status_code == 400
    assert r.json()["data"] == {"problem": "not accepted", "value": value}
