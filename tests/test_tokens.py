"""TokenManager: algorithms, keys and key rings, claims, and the attack table (every refusal is InvalidToken)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from backend_guard._keys import KeyRing, SigningKey, generate_key
from backend_guard.errors import problem_response
from backend_guard.exceptions import ConfigurationError, InvalidToken, TokenExpired
from backend_guard.tokens import TokenManager, TokenPair

from .conftest import FrozenClock

ISS = "https://a"
AUD = "https://api.example"
ALGORITHMS = ["EdDSA", "ES256", "RS256", "HS256", "HS384", "HS512"]


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def materials(rsa_key: rsa.RSAPrivateKey) -> dict[str, str]:
    return {
        "EdDSA": _pem(ed25519.Ed25519PrivateKey.generate()),
        "ES256": _pem(ec.generate_private_key(ec.SECP256R1())),
        "RS256": _pem(rsa_key),
        "HS256": "s" * 32,
        "HS384": "t" * 48,
        "HS512": "u" * 64,
    }


def _manager(material: Any, alg: str = "EdDSA", clock: FrozenClock | None = None, **kw: Any) -> TokenManager:
    kw.setdefault("issuer", ISS)
    kw.setdefault("audience", AUD)
    return TokenManager(material, alg, clock=clock or FrozenClock(), **kw)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(payload).encode())
    return f"{head}.{body}.{_b64(signature)}"


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(head))), json.loads(base64.urlsafe_b64decode(pad(body)))


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_each_algorithm_round_trips_with_all_claims(alg: str, materials: dict[str, str]) -> None:
    tm = _manager(materials[alg], alg)
    pair = tm.issue("user-1", {"scope": "read write"})
    assert isinstance(pair, TokenPair)
    assert pair.token_type == "Bearer"
    assert pair.expires_in == 900
    claims = tm.verify_access(pair.access_token)
    for name in ("iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid"):
        assert name in claims
    assert claims["sub"] == "user-1"
    assert claims["iss"] == ISS
    assert claims["aud"] == AUD
    assert claims["scope"] == "read write"
    header, _ = _parts(pair.access_token)
    assert header == {"alg": alg, "typ": "at+jwt", "kid": tm.keys.keys[0].kid}
    assert _parts(pair.refresh_token)[0]["typ"] == "rt+jwt"


def test_pair_repr_hides_tokens(materials: dict[str, str]) -> None:
    pair = _manager(materials["EdDSA"]).issue("u")
    assert pair.access_token not in repr(pair)
    assert pair.refresh_token not in repr(pair)
    assert pair.as_dict()["access_token"] == pair.access_token


# -- configuration --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("material", "alg"),
    [
        ("x" * 31, "HS256"),
        ("x" * 47, "HS384"),
        ("x" * 63, "HS512"),
        ("x" * 64, "EdDSA"),  # a plain secret for an asymmetric algorithm
        ("x" * 64, "none"),
        ("x" * 64, "HS1"),
    ],
)
def test_weak_or_wrong_keys_are_refused(material: str, alg: str) -> None:
    with pytest.raises(ConfigurationError):
        _manager(material, alg)


def test_pem_as_hmac_secret_is_refused(materials: dict[str, str], rsa_key: rsa.RSAPrivateKey) -> None:
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigurationError):
        _manager(public_pem, "HS256")
    with pytest.raises(ConfigurationError):
        _manager(materials["RS256"], "HS512")


def test_key_type_must_match_algorithm(materials: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        _manager(materials["EdDSA"], "RS256")
    with pytest.raises(ConfigurationError):
        _manager(materials["RS256"], "ES256")
    with pytest.raises(ConfigurationError):
        _manager(ec.generate_private_key(ec.SECP384R1()), "ES256")


def test_small_rsa_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigurationError, match="2048"):
        _manager(small, "RS256")


def test_mixing_hmac_and_asymmetric_keys_is_refused(materials: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="mix"):
        KeyRing([SigningKey.load(materials["HS256"], "HS256"), SigningKey.load(materials["EdDSA"], "EdDSA")])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"issuer": ""},
        {"audience": ""},
        {"leeway": 3600},
        {"grace_window": -1},
        {"access_ttl": 10, "refresh_ttl": 5},
        {"max_token_length": 10},
    ],
)
def test_unsafe_settings_are_refused(kwargs: dict[str, Any], materials: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        _manager(materials["EdDSA"], **kwargs)


def test_reserved_claims_cannot_be_overridden(materials: dict[str, str]) -> None:
    tm = _manager(materials["EdDSA"])
    for claim in ("sub", "exp", "aud", "iss", "jti", "sid"):
        with pytest.raises(ConfigurationError):
            tm.issue("u", {claim: "x"})


# -- key rings and JWKS -----------------------------------------------------------------------------------------


def test_ring_signs_with_newest_and_verifies_retired_until_end(materials: dict[str, str]) -> None:
    clock = FrozenClock()
    old_pem, _ = generate_key("EdDSA")
    old_tm = _manager(old_pem, clock=clock)
    old_token = old_tm.issue("u").access_token
    ring = KeyRing(
        [SigningKey.load(old_pem, "EdDSA", verify_until=clock.now + 600), SigningKey.load(materials["EdDSA"], "EdDSA")]
    )
    tm = _manager(ring, clock=clock, access_ttl=3600)
    new_token = tm.issue("u").access_token
    assert _parts(new_token)[0]["kid"] == ring.keys[1].kid
    assert tm.verify_access(old_token)["sub"] == "u"
    clock.advance(601)
    assert tm.verify_access(new_token)["sub"] == "u"
    with pytest.raises(InvalidToken, match="unknown key"):
        tm.verify_access(old_token)


def test_jwks_exports_public_keys_only(materials: dict[str, str]) -> None:
    clock = FrozenClock()
    ring = KeyRing(
        [
            SigningKey.load(materials["ES256"], "ES256", verify_until=clock.now + 10),
            SigningKey.load(materials["EdDSA"], "EdDSA"),
        ]
    )
    tm = _manager(ring, clock=clock)
    jwks = tm.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [k.kid for k in ring.keys]
    for jwk in jwks["keys"]:
        assert "d" not in jwk
        assert jwk["use"] == "sig"
    assert jwks["keys"][1] == {**jwks["keys"][1], "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA"}
    # A public JWK exported here verifies a token with plain PyJWT.
    token = tm.issue("u").access_token
    public = jwt.PyJWK(jwks["keys"][1])
    options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}  # PyJWT reads the wall clock
    assert jwt.decode(token, public.key, algorithms=["EdDSA"], audience=AUD, options=options)["sub"] == "u"
    clock.advance(11)
    assert len(tm.jwks()["keys"]) == 1
    with pytest.raises(ConfigurationError):
        KeyRing(["h" * 32], "HS256").jwks()


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_generate_key(alg: str) -> None:
    material, jwk = generate_key(alg)
    assert jwk["kid"]
    assert "d" not in jwk
    assert "k" not in jwk
    tm = _manager(material, alg)
    assert tm.keys.keys[0].kid == jwk["kid"]
    assert tm.verify_access(tm.issue("u").access_token)["sub"] == "u"


def test_verify_only_ring_cannot_sign(materials: dict[str, str]) -> None:
    signer = _manager(materials["EdDSA"])
    token = signer.issue("u").access_token
    public = signer.keys.keys[0].verifying
    verifier = _manager(public)
    assert verifier.verify_access(token)["sub"] == "u"
    with pytest.raises(ConfigurationError):
        verifier.issue("u")


# -- the attack table ---------------------------------------------------------------------------------------


def _valid_payload(tm: TokenManager, **over: Any) -> dict[str, Any]:
    now = int(tm.clock())
    payload = {
        "iss": ISS,
        "aud": AUD,
        "sub": "admin",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "j" * 22,
        "sid": "s" * 24,
    }
    payload.update(over)
    return payload


def test_alg_none_is_refused(materials: dict[str, str]) -> None:
    tm = _manager(materials["EdDSA"])
    kid = tm.keys.keys[0].kid
    for alg in ("none", "None", "NONE", ""):
        token = _forge({"alg": alg, "typ": "at+jwt", "kid": kid}, _valid_payload(tm))
        with pytest.raises(InvalidToken):
            tm.verify_access(token)
        with pytest.raises(InvalidToken):
            tm.verify_access(token.rstrip(".") + ".")


def test_hs_rs_confusion_is_refused(materials: dict[str, str], rsa_key: rsa.RSAPrivateKey) -> None:
    tm = _manager(materials["RS256"], "RS256")
    kid = tm.keys.keys[0].kid
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
    unsigned = _forge(header, _valid_payload(tm)).rsplit(".", 1)[0]
    sig = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="algorithm"):
        tm.verify_access(f"{unsigned}.{_b64(sig)}")


def test_an_algorithm_outside_the_allow_list_is_refused(materials: dict[str, str]) -> None:
    tm = _manager(materials["HS256"], "HS256")
    kid = tm.keys.keys[0].kid
    token = jwt.encode(_valid_payload(tm), materials["HS512"], algorithm="HS512", headers={"kid": kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        tm.verify_access(token)


@pytest.mark.parametrize("kid", ["../../../../dev/null", "' OR 1=1 --", "http://evil/key", "", 7, None, ["a"]])
def test_kid_injection_is_refused(kid: Any, materials: dict[str, str]) -> None:
    tm = _manager(materials["HS256"], "HS256")
    token = jwt.encode(_valid_payload(tm), materials["HS256"], algorithm="HS256", headers={"typ": "at+jwt"})
    _head, rest = token.split(".", 1)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
    with pytest.raises(InvalidToken):
        tm.verify_access(_b64(json.dumps(header).encode()) + "." + rest)


@pytest.mark.parametrize(
    "extra",
    [{"crit": ["exp"]}, {"crit": ["b64"], "b64": False}, {"jku": "https://evil/jwks"}, {"x5u": "https://evil"}],
)
def test_unknown_header_parameters_are_refused(extra: dict[str, Any], materials: dict[str, str]) -> None:
    tm = _manager(materials["EdDSA"])
    key = tm.keys.keys[0]
    headers = {"kid": key.kid, "typ": "at+jwt", **extra}
    token = jwt.encode(_valid_payload(tm), key.signing, algorithm="EdDSA", headers=headers)
    with pytest.raises(InvalidToken):
        tm.verify_access(token)


def test_embedded_jwk_is_never_trusted(materials: dict[str, str]) -> None:
    tm = _manager(materials["EdDSA"])
    attacker = ed25519.Ed25519PrivateKey.generate()
    attacker_key = SigningKey.load(attacker, "EdDSA")
    headers = {"kid": tm.keys.keys[0].kid, "typ": "at+jwt", "jwk": attacker_key.public_jwk()}
    with pytest.raises(InvalidToken):
        tm.verify_access(jwt.encode(_valid_payload(tm), attacker, algorithm="EdDSA", headers=headers))
    headers.pop("jwk")
    with pytest.raises(InvalidToken):
        tm.verify_access(jwt.encode(_valid_payload(tm), attacker, algorithm="EdDSA", headers=headers))


def test_expired_and_not_yet_valid(materials: dict[str, str]) -> None:
    clock = FrozenClock()
    tm = _manager(materials["EdDSA"], clock=clock, leeway=5)
    token = tm.issue("u").access_token
    clock.advance(900 + 4)
    assert tm.verify_access(token)["sub"] == "u"  # inside the leeway
    clock.advance(1)
    with pytest.raises(TokenExpired):
        tm.verify_access(token)
    future = _manager(materials["EdDSA"], clock=FrozenClock(clock.now + 60))
    with pytest.raises(InvalidToken, match="not valid yet"):
        tm.verify_access(future.issue("u").access_token)


def test_expired_is_a_401_problem_with_bearer_challenge(materials: dict[str, str]) -> None:
    clock = FrozenClock()
    tm = _manager(materials["EdDSA"], clock=clock)
    token = tm.issue("u").access_token
    clock.advance(10_000)
    with pytest.raises(InvalidToken) as info:
        tm.verify_access(token)
    status, headers, body = problem_response(info.value)
    assert status == 401
    assert ("www-authenticate", 'Bearer error="invalid_token"') in [(k.lower(), v) for k, v in headers]
    assert token.encode() not in body


def test_wrong_audience_and_issuer_are_refused(materials: dict[str, str]) -> None:
    tm = _manager(materials["EdDSA"])
    for other in (
        _manager(materials["EdDSA"], audience="https://other.example"),
        _manager(materials["EdDSA"], audience=AUD + "/"),
        _manager(materials["EdDSA"], issuer="https://a.evil"),
        _manager(materials["EdDSA"], issuer="https://"),
    ):
        with pytest.raises(InvalidToken):
            tm.verify_access(other.issue("u").access_token)
    evil = _manager(materials["EdDSA"], issuer="https://a.evil")
    with pytest.raises(InvalidToken):
        evil.verify_access(tm.issue("u").access_token)
    key = tm.keys.keys[0]
    as_list = jwt.encode(
        _valid_payload(tm, aud=[AUD, "x"]), key.signing, algorithm="EdDSA", headers={"kid": key.kid, "typ": "at+jwt"}
    )
    with pytest.raises(InvalidToken):
        tm.verify_access(as_list)


def test_tampered_payload_and_truncation_are_refused(materials: dict[str, str]) -> None:
    tm = _manager(materials["ES256"], "ES256")
    token = tm.issue("alice").access_token
    head, body, sig = token.split(".")
    _, payload = _parts(token)
    payload["sub"] = "admin"
    tampered = f"{head}.{_b64(json.dumps(payload).encode())}.{sig}"
    for bad in (tampered, token[:-3], token[: len(token) // 2], f"{head}.{body}", f"{head}.{body}.", head, "."):
        with pytest.raises(InvalidToken):
            tm.verify_access(bad)


def test_swapped_kinds_are_refused(materials: dict[str, str]) -> None:
    tm = _manager(materials["EdDSA"])
    pair = tm.issue("u")
    with pytest.raises(InvalidToken, match="kind"):
        tm.verify_access(pair.refresh_token)
    with pytest.raises(InvalidToken, match="kind"):
        tm.rotate(pair.access_token)
    key = tm.keys.keys[0]
    plain = jwt.encode(_valid_payload(tm), key.signing, algorithm="EdDSA", headers={"kid": key.kid})  # typ JWT
    with pytest.raises(InvalidToken):
        tm.verify_access(plain)


@pytest.mark.parametrize("missing", ["iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid"])
def test_every_claim_is_required(missing: str, materials: dict[str, str]) -> None:
    tm = _manager(materials["EdDSA"])
    key = tm.keys.keys[0]
    payload = _valid_payload(tm)
    del payload[missing]
    token = jwt.encode(payload, key.signing, algorithm="EdDSA", headers={"kid": key.kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        tm.verify_access(token)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_malformed_time_claims_are_refused(claim: str, materials: dict[str, str]) -> None:
    tm = _manager(materials["EdDSA"])
    key = tm.keys.keys[0]
    for value in ("soon", True, None, [1]):
        token = jwt.encode(
            _valid_payload(tm, **{claim: value}),
            key.signing,
            algorithm="EdDSA",
            headers={"kid": key.kid, "typ": "at+jwt"},
        )
        with pytest.raises(InvalidToken):
            tm.verify_access(token)


# JSON texts a signed token may carry for a time claim that is no number a clock can be compared with: NaN
# (every comparison false: never expires), infinities (literal or overflowing), integers beyond any date, bool
# and strings. Each is spliced into the payload as raw JSON, then the token is signed with the manager's key.
NON_FINITE_TIME_CLAIMS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1" + "0" * 400,
    "1e300",
    "true",
    "false",
    '"123"',
    "null",
]


def _signed_with_raw_claim(tm: TokenManager, typ: str, claim: str, raw_json: str) -> str:
    """A token of kind ``typ`` signed with ``tm``'s own key whose ``claim`` is the JSON text ``raw_json``."""
    key = tm.keys.keys[0]
    payload = _valid_payload(tm)
    marker = "__raw_claim__"
    payload[claim] = marker
    body = json.dumps(payload).replace(json.dumps(marker), raw_json)
    head = _b64(json.dumps({"alg": key.algorithm, "kid": key.kid, "typ": typ}).encode())
    signing_input = f"{head}.{_b64(body.encode())}"
    algorithm = jwt.algorithms.get_default_algorithms()[key.algorithm]
    signature = algorithm.sign(signing_input.encode(), algorithm.prepare_key(key.signing))
    return f"{signing_input}.{_b64(signature)}"


@pytest.mark.parametrize("raw_json", NON_FINITE_TIME_CLAIMS, ids=lambda v: v if len(v) < 20 else "int-of-401-digits")
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("alg", ["EdDSA", "HS256"])
def test_non_finite_or_non_numeric_time_claims_in_a_correctly_signed_access_token_are_invalid_token(
    alg: str, claim: str, raw_json: str, materials: dict[str, str]
) -> None:
    tm = _manager(materials[alg], alg)
    token = _signed_with_raw_claim(tm, "at+jwt", claim, raw_json)
    with pytest.raises(InvalidToken) as caught:
        tm.verify_access(token)
    assert type(caught.value) is InvalidToken  # not TokenExpired, not an OverflowError or ValueError
    assert problem_response(caught.value)[0] == 401


def test_the_raw_claim_helper_makes_tokens_that_verify(materials: dict[str, str]) -> None:
    tm = _manager(materials["EdDSA"])
    token = _signed_with_raw_claim(tm, "at+jwt", "exp", str(int(tm.clock()) + 60))
    assert tm.verify_access(token)["sub"] == "admin"


def test_over_long_and_malformed_tokens(materials: dict[str, str]) -> None:
    tm = _manager(materials["HS256"], "HS256")
    with pytest.raises(InvalidToken, match="too long"):
        tm.verify_access("a" * 10_000)
    garbage = [
        "",
        "abc",
        "!!!.@@@.###",
        _b64(b"not json") + ".e30.",
        _b64(b"[1, 2]") + ".e30.",
        _b64(b'{"alg": "HS256"') + ".e30.",
        "e30.e30.e30",
        "\u00e9\u00e9.\u00e9.\u00e9",
        b"\xff\xfe.a.b",
    ]
    for bad in garbage:
        with pytest.raises(InvalidToken):
            tm.verify_access(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        tm.verify_access(12345)  # type: ignore[arg-type]


# -- property tests -----------------------------------------------------------------------------------------


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=20))
_claims = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(
        lambda k: k not in {"iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "ext", "typ", "scope"}
    ),
    st.one_of(_json_leaf, st.lists(_json_leaf, max_size=3)),
    max_size=5,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=st.text(min_size=1, max_size=40), claims=_claims)
def test_round_trip_property(subject: str, claims: dict[str, Any], materials: dict[str, str]) -> None:
    tm = _manager(materials["HS256"], "HS256")
    pair = tm.issue(subject, claims)
    verified = tm.verify_access(pair.access_token)
    assert verified["sub"] == subject
    for name, value in claims.items():
        assert verified[name] == value


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_garbage_is_always_invalid_token(token: Any, materials: dict[str, str]) -> None:
    tm = _manager(materials["HS256"], "HS256")
    with pytest.raises(InvalidToken):
        tm.verify_access(token)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_character_change_is_refused(data: st.DataObject, materials: dict[str, str]) -> None:
    tm = _manager(materials["HS256"], "HS256")
    token = tm.issue("u").access_token
    i = data.draw(st.integers(0, len(token) - 1))
    ch = data.draw(st.sampled_from("ABCxyz019-_.=+/"))
    mutated = token[:i] + ch + token[i + 1 :]
    # Base64url has a few spare low bits in the last character of a segment: those flips decode identically
    # and PyJWT refuses them as non-canonical, so every real change must fail.
    if mutated != token:
        with pytest.raises(InvalidToken):
            tm.verify_access(mutated)


# -- require_auth on routes ---------------------------------------------------------------------------------


def test_require_auth_fastapi(materials: dict[str, str]) -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    tm = TokenManager(materials["EdDSA"], issuer=ISS, audience=AUD)
    app = FastAPI()

    # No ``request`` parameter: FastAPI fills only one Request-typed parameter per route (see the report).
    @app.get("/admin")
    @tm.require_auth(scopes=["admin"])
    async def admin() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/me")
    def me(claims: dict[str, Any] = Depends(tm.dependency(scopes="read"))) -> dict[str, Any]:  # noqa: B008
        return {"sub": claims["sub"]}

    admin_token = tm.issue("root", {"scope": "admin read"}).access_token
    reader_token = tm.issue("reader", {"scope": "read"}).access_token
    with TestClient(app) as client:
        ok = client.get("/admin", headers={"Authorization": f"Bearer {admin_token}"})
        assert ok.status_code == 200
        assert ok.json() == {"ok": True}
        missing = client.get("/admin")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        bad = client.get("/admin", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        assert bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert bad.headers["content-type"].startswith("application/problem+json")
        forbidden = client.get("/admin", headers={"Authorization": f"Bearer {reader_token}"})
        assert forbidden.status_code == 403
        assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
        assert client.get("/me", headers={"Authorization": f"bearer {reader_token}"}).json() == {"sub": "reader"}
        assert client.get("/me").status_code == 401
        assert "bg_request__" not in str(client.get("/openapi.json").json())

    @tm.require_auth(scopes="admin")
    async def starlette_admin(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.auth["sub"]})

    from starlette.applications import Starlette

    with TestClient(Starlette(routes=[Route("/s", starlette_admin)])) as client:
        assert client.get("/s", headers={"Authorization": f"Bearer {admin_token}"}).json() == {"sub": "root"}
        assert client.get("/s", headers={"Authorization": f"Bearer {reader_token}"}).status_code == 403


def test_require_auth_flask(materials: dict[str, str]) -> None:
    import flask

    tm = TokenManager(materials["HS256"], "HS256", issuer=ISS, audience=AUD)
    app = flask.Flask(__name__)

    @app.get("/me")
    @tm.require_auth()
    def me() -> dict[str, Any]:
        return {"sub": flask.g.auth["sub"]}

    token = tm.issue("alice").access_token
    client = app.test_client()
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).get_json() == {"sub": "alice"}
    refused = client.get("/me", headers={"Authorization": f"Bearer {tm.issue('x').refresh_token}"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
