"""JWT access tokens and rotating refresh tokens with reuse detection, on PyJWT.

What lives here: the decisions about tokens (which claims, which header, which key, when a refresh token may
rotate). Signing and signature checks are PyJWT's; keys are :mod:`backend_guard._keys`; the one atomic step of
rotation is a store script (:mod:`backend_guard.tokens._scripts`). No framework is imported.

Access tokens (``typ: at+jwt``, RFC 9068) and refresh tokens (``typ: rt+jwt``) are both JWTs signed by the
manager's key ring, and each kind is only accepted where it belongs. Every token carries ``iss``, ``aud``,
``sub``, ``exp``, ``iat``, ``nbf``, ``jti`` and ``sid`` (the id of the login, the *family* of refresh tokens).
The store keeps only SHA-256 digests of refresh tokens, per family, with a TTL at the family's absolute expiry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import json
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._cache import BoundedCache
from .._check import check_bool, check_callable, check_float, check_int, check_str, optional
from .._keys import KeyRing, SigningKey
from .._routes import RouteCall, RouteHooks, fastapi_dependency, guard_route
from ..exceptions import (
    AuthenticationError,
    ConfigurationError,
    Forbidden,
    InvalidToken,
    StorageError,
    TokenExpired,
    TokenReused,
)
from ..storage import Store, StoreLike, open_store
from . import _scripts as scripts

log = logging.getLogger("backend_guard.tokens")

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = ["ACCESS_TOKEN_TYPE", "REFRESH_TOKEN_TYPE", "TokenManager", "TokenPair"]

#: ``typ`` header of access tokens (RFC 9068).
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
#: ``typ`` header of refresh tokens: never accepted as an access token, and the reverse.
REFRESH_TOKEN_TYPE = "rt+jwt"  # noqa: S105 - a media type, not a secret

_REQUIRED = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti"]
_RESERVED = frozenset({*_REQUIRED, "sid", "ext", "typ"})
_HEADER_KEYS = frozenset({"alg", "typ", "kid"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_SID = re.compile(r"[A-Za-z0-9_-]{16,64}")
# A compact JWS exactly as this manager writes it: three unpadded base64url segments, nothing else.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# The last character of a canonical unpadded base64url segment, by ``len % 4``: its unused low bits are zero.
_LAST_CHAR = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_SEAL_SALT = b"backend_guard refresh grace seal"
_SEAL_INFO = b"backend_guard refresh grace seal v2"
_HEAD_CACHE_SIZE = 256
_HEAD_CACHE_BYTES = 256 << 10  # a JWT header is a few dozen bytes; a client may send any
#: Bound on a time claim's magnitude in seconds (2**53: the integers a float holds exactly, year ~285 million).
_MAX_TIME_CLAIM = 2**53
_MAX_LEEWAY = 300.0
_MAX_GRACE = 300.0
# An OAuth scope-token (RFC 6749 section 3.3): printable ASCII except space, double quote and backslash.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(frozen=True)
class TokenPair:
    """What a login or a refresh returns: an access token, a refresh token, ``Bearer`` and seconds to live.

    The tokens are left out of ``repr`` so a pair never ends up in a log by accident; :meth:`as_dict` is the
    OAuth 2.0 token response body (RFC 6749 section 5.1).

    Example::

        pair = tm.issue("user-42")
        return JSONResponse(pair.as_dict())
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The token response body: ``access_token``, ``refresh_token``, ``token_type``, ``expires_in``.

        Example::

            body = pair.as_dict()
        """
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }


@dataclass(frozen=True)
class _Head:
    """A verified-shape header: its kind and the key (and allow list) it names."""

    typ: str
    key: SigningKey
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class _RotatePlan:
    keys: list[str]
    args: list[Any]
    pair: TokenPair
    old_token: bytes
    sid: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _number(value: Any) -> float:
    """A time claim (``exp``, ``nbf``, ``iat``) as a float; InvalidToken unless it is a plain, finite number.

    JSON lets a signed token carry ``NaN``, ``Infinity`` or ``1e400`` (read as infinity) and integers of any
    size: every comparison with NaN is false (a token that never expires) and ``int(inf)`` raises, so only
    ints and finite floats within +-2**53 seconds (far beyond any real date) are time claims. bool is refused.
    """
    kind = type(value)
    if kind is int:
        if -_MAX_TIME_CLAIM <= value <= _MAX_TIME_CLAIM:
            return float(value)
    elif kind is float and math.isfinite(value) and -_MAX_TIME_CLAIM <= value <= _MAX_TIME_CLAIM:
        return float(value)
    raise InvalidToken("The token has a malformed time claim.")


def _subject(subject: Any) -> str:
    """The ``sub`` claim for a subject given as a string or an integer primary key (``42`` -> ``"42"``)."""
    if isinstance(subject, bool) or not isinstance(subject, (str, int)):
        raise ConfigurationError(f"subject must be a str or an int (a user id), not {type(subject).__name__}.")
    text = str(int(subject)) if isinstance(subject, int) else subject
    if not text:
        raise ConfigurationError("subject must be a non-empty string.")
    return text


def _extra_claims(claims: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The caller's extra claims, checked: no registered claim, and ``scope`` as one space-separated string.

    ``scope`` may be given as a string (``"read write"``) or a list of scope strings (``["read", "write"]``);
    tokens always carry the RFC 9068 form, one space-separated string, which :meth:`TokenManager.require_auth`
    reads.
    """
    if not claims:
        return None
    clash = _RESERVED.intersection(claims)
    if clash:
        raise ConfigurationError(f"Reserved claims cannot be set by the caller: {', '.join(sorted(clash))}.")
    extra = dict(claims)
    scope = extra.get("scope")
    if scope is not None and not isinstance(scope, str):
        if isinstance(scope, (bytes, bytearray, Mapping)) or not isinstance(scope, (Sequence, set, frozenset)):
            raise ConfigurationError("The scope claim must be a string or a list of scope strings.")
        items = sorted(scope) if isinstance(scope, (set, frozenset)) else list(scope)
        for item in items:
            if not isinstance(item, str) or not _SCOPE_TOKEN.fullmatch(item):
                raise ConfigurationError(
                    "Each scope in a scope list must be a non-empty string without spaces, quotes or backslashes."
                )
        extra["scope"] = " ".join(dict.fromkeys(items))
    return extra


def _digest(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


def _canonical(token: str) -> bool:
    """True when ``token`` is three canonical unpadded base64url segments (one spelling per token)."""
    if not _COMPACT.fullmatch(token):
        return False
    for segment in token.split("."):
        rest = len(segment) % 4
        if rest == 1 or (rest and segment[-1] not in _LAST_CHAR[rest]):
            return False
    return True


def _seal_key(old_token: bytes, sid: str) -> bytes:
    # Derived from the presented token itself, with the token as HKDF *input* keying material under a fixed
    # salt: only a holder of the old token can open the successor kept for the grace window. (Never the token
    # as an HMAC *key*: HMAC first hashes keys longer than a block, so HMAC(token, info) equals
    # HMAC(SHA-256(token), info), and SHA-256(token) is exactly the digest the store keeps.)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SEAL_SALT, info=_SEAL_INFO + b":" + sid.encode("ascii"))
    return hkdf.derive(old_token)


class TokenManager:
    """Issues, verifies, rotates and revokes JWT access/refresh token pairs for one issuer and audience.

    ``key`` is an HMAC secret, a PEM private (or public, verify-only) key, a ``cryptography`` key object, a
    :class:`~backend_guard._keys.SigningKey` or a :class:`~backend_guard._keys.KeyRing`; ``algorithm`` is
    one of ``EdDSA`` (default), ``ES256``, ``RS256``, ``HS256``, ``HS384``, ``HS512``. One manager holds one
    algorithm family: HMAC and asymmetric keys are never mixed.

    ``access_ttl`` and ``refresh_ttl`` are seconds; ``refresh_ttl`` is the *absolute* lifetime of a login
    (a family of refresh tokens): rotation never extends it. ``grace_window`` (seconds) lets the immediately
    previous refresh token, presented again shortly after a rotation (a lost response, two tabs), get the
    same successor back once. ``refresh_idle`` (seconds, optional) ends a login whose refresh token was not used
    for that long (the store's clock; rotation raises :class:`~backend_guard.exceptions.TokenExpired` and drops the
    family), however far its absolute expiry is. ``leeway`` (seconds) absorbs clock skew on
    ``exp``/``nbf``/``iat``.
    ``check_revocation=True`` makes :meth:`verify_access` ask the store whether the token's login is still
    alive (one store round trip per verification) so logout and reuse detection also end access tokens at
    once; otherwise they live until their short ``exp``. ``revocation_on_storage_error`` says what that check
    does when the store cannot answer: ``"deny"`` (the default: :class:`~backend_guard.exceptions.StorageError`,
    a 503) or ``"allow"`` (the token is accepted on its signature and ``exp`` alone, as without the check; logged
    once per outage). Issuing, rotating and revoking never fail open. ``clock`` returns seconds (tests freeze it).

    Example::

        tm = TokenManager(pem, "EdDSA", issuer="https://auth.example", audience="https://api.example",
                          store="redis://127.0.0.1:6379/0")
        pair = tm.issue("user-42", {"scope": "read write"})
        claims = tm.verify_access(pair.access_token)
        pair = tm.rotate(pair.refresh_token)
    """

    def __init__(
        self,
        key: Any,
        algorithm: str = "EdDSA",
        *,
        issuer: str,
        audience: str,
        store: StoreLike = None,
        access_ttl: float = 900.0,
        refresh_ttl: float = 14 * 86400.0,
        leeway: float = 30.0,
        grace_window: float = 10.0,
        refresh_idle: float | None = None,
        check_revocation: bool = False,
        revocation_on_storage_error: Literal["deny", "allow"] = "deny",
        max_token_length: int = 8192,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_str("algorithm", algorithm)
        if isinstance(key, (bool, int, float, Mapping)) or key is None:
            raise ConfigurationError(
                f"key must be a secret (str or bytes), a PEM key, a SigningKey or a KeyRing, not {type(key).__name__}."
            )
        for ttl_name, ttl in (("access_ttl", access_ttl), ("refresh_ttl", refresh_ttl)):
            check_float(ttl_name, ttl, positive=True)
        check_float("leeway", leeway, min=0)
        check_float("grace_window", grace_window, min=0)
        optional(check_float, "refresh_idle", refresh_idle, positive=True)
        check_bool("check_revocation", check_revocation)
        check_int("max_token_length", max_token_length)
        check_callable("clock", clock)
        if isinstance(key, KeyRing):
            ring = key
        elif isinstance(key, SigningKey):
            ring = KeyRing([key])
        else:
            try:
                ring = KeyRing([SigningKey.load(key, algorithm)])
            except ConfigurationError as exc:
                raise ConfigurationError(f"key: {exc.detail}") from None
        for name, value in (("issuer", issuer), ("audience", audience)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"{name} must be a non-empty string.")
        if not 0 < access_ttl <= refresh_ttl:
            raise ConfigurationError("access_ttl must be positive and not longer than refresh_ttl.")
        if not 0 <= leeway <= _MAX_LEEWAY:
            raise ConfigurationError(f"leeway must be between 0 and {_MAX_LEEWAY:g} seconds.")
        if not 0 <= grace_window <= _MAX_GRACE:
            raise ConfigurationError(f"grace_window must be between 0 and {_MAX_GRACE:g} seconds.")
        if refresh_idle is not None and not access_ttl <= refresh_idle <= refresh_ttl:
            raise ConfigurationError("refresh_idle must be between access_ttl and refresh_ttl (seconds).")
        if revocation_on_storage_error not in ("deny", "allow"):
            raise ConfigurationError("revocation_on_storage_error must be 'deny' or 'allow'.")
        if not 512 <= max_token_length <= 65536:
            raise ConfigurationError("max_token_length must be between 512 and 65536 characters.")
        self.keys = ring
        self.issuer = issuer
        self.audience = audience
        self.store: Store = open_store(store)
        self.access_ttl = int(access_ttl)
        self.refresh_ttl = int(refresh_ttl)
        self.leeway = float(leeway)
        self.grace_window = float(grace_window)
        self.refresh_idle = float(refresh_idle) if refresh_idle is not None else None
        self.check_revocation = check_revocation
        self.revocation_on_storage_error = revocation_on_storage_error
        self._revocation_outage = False
        self.max_token_length = max_token_length
        self.clock = clock
        # Time claims are checked here with ``clock``; PyJWT checks signature, aud (exact), iss (exact), presence.
        self._jwt = jwt.PyJWT(
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": list(_REQUIRED),
                "strict_aud": True,
            }
        )
        self._heads: BoundedCache[str, _Head] = BoundedCache(
            "tokens.heads", max_entries=_HEAD_CACHE_SIZE, max_bytes=_HEAD_CACHE_BYTES
        )

    def __repr__(self) -> str:
        return f"TokenManager(keys={self.keys!r}, issuer={self.issuer!r}, audience={self.audience!r})"

    # -- issuing ----------------------------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any], typ: str) -> str:
        key = self.keys.signing_key
        if key is None:
            raise ConfigurationError("This key ring has no active private key: it can verify but not sign.")
        return jwt.encode(claims, key.signing, algorithm=key.algorithm, headers={"kid": key.kid, "typ": typ})

    def _make_pair(
        self, subject: str, sid: str, family_exp: int, extra: Mapping[str, Any] | None, now: int
    ) -> tuple[TokenPair, int]:
        base = {"iss": self.issuer, "aud": self.audience, "sub": subject, "iat": now, "nbf": now, "sid": sid}
        access_exp = min(now + self.access_ttl, family_exp)
        access: dict[str, Any] = dict(extra or {})
        access.update(base)
        access.update(exp=access_exp, jti=secrets.token_urlsafe(16))
        refresh = dict(base, exp=family_exp, jti=secrets.token_urlsafe(16))
        if extra:
            refresh["ext"] = dict(extra)
        pair = TokenPair(
            access_token=self._sign(access, ACCESS_TOKEN_TYPE),
            refresh_token=self._sign(refresh, REFRESH_TOKEN_TYPE),
            expires_in=max(0, access_exp - now),
        )
        return pair, access_exp

    def _family_keys(self, subject: str, sid: str) -> tuple[str, str, str]:
        fam_prefix = self.store.key("tok", "fam", tag=subject) + ":"
        return fam_prefix + sid, self.store.key("tok", "sub", tag=subject), fam_prefix

    def _plan_issue(
        self, subject: str | int, claims: Mapping[str, Any] | None
    ) -> tuple[TokenPair, list[str], list[Any]]:
        subject = _subject(subject)
        extra = _extra_claims(claims)
        now = int(self.clock())
        sid = secrets.token_urlsafe(18)
        pair, _ = self._make_pair(subject, sid, now + self.refresh_ttl, extra, now)
        fam_key, sub_key, fam_prefix = self._family_keys(subject, sid)
        args: list[Any] = [_digest(pair.refresh_token.encode("ascii")), self.refresh_ttl * 1000, sid, fam_prefix]
        return pair, [fam_key, sub_key], args

    def issue(self, subject: str | int, claims: Mapping[str, Any] | None = None) -> TokenPair:
        """Start a login for ``subject``: a new token family, an access token and its first refresh token.

        ``subject`` is a string or an integer primary key; the ``sub`` claim is always its string form
        (``42`` -> ``"42"``, RFC 7519), and anything else (``True``, ``None``, a UUID object) is a
        ConfigurationError. ``claims`` (for example ``{"scope": "read write"}``) go into every access token
        of this login; ``scope`` may also be a list of scope strings (``["read", "write"]``), stored as the
        space-separated string of RFC 9068. The registered claims are set by the manager and cannot be
        overridden.

        Example::

            pair = tm.issue(42, {"scope": ["read", "write"]})
            tm.verify_access(pair.access_token)["sub"]   # "42"
        """
        pair, keys, args = self._plan_issue(subject, claims)
        self.store.run(scripts.ISSUE, keys, args)
        return pair

    async def aissue(self, subject: str | int, claims: Mapping[str, Any] | None = None) -> TokenPair:
        """Async twin of :meth:`issue`.

        Example::

            pair = await tm.aissue("user-42")
        """
        pair, keys, args = self._plan_issue(subject, claims)
        await self.store.arun(scripts.ISSUE, keys, args)
        return pair

    # -- verifying ----------------------------------------------------------------------------------------------

    def _parse_head(self, head: str) -> _Head:
        try:
            header = json.loads(_b64url_decode(head))
        except (ValueError, RecursionError, binascii.Error) as exc:
            raise InvalidToken("The token is malformed.") from exc
        if not isinstance(header, dict) or not _HEADER_KEYS.issuperset(header):
            # Refuses crit, jku, jwk, x5u, x5c, b64...: this manager issues none of them and fetches nothing.
            raise InvalidToken("The token header is not accepted.")
        typ, kid, alg = header.get("typ"), header.get("kid"), header.get("alg")
        if not isinstance(typ, str) or typ.lower() not in (ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE):
            raise InvalidToken("The token type is not accepted.")
        if not isinstance(kid, str) or not isinstance(alg, str):
            raise InvalidToken("The token header is not accepted.")
        key = self.keys._by_kid.get(kid)
        if key is None:
            raise InvalidToken("The token was signed by an unknown key.")
        if alg != key.algorithm:
            raise InvalidToken("The token algorithm is not allowed.")
        return _Head(typ.lower(), key, (key.algorithm,))

    def _decode(self, token: Any, typ: str, *, verify_exp: bool = True) -> dict[str, Any]:
        """Check one token of kind ``typ`` completely and return its claims; InvalidToken/TokenExpired otherwise."""
        if isinstance(token, bytes):
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                raise InvalidToken("The token is malformed.") from None
        if not isinstance(token, str) or not token:
            raise InvalidToken("The token is malformed.")
        if len(token) > self.max_token_length:
            raise InvalidToken("The token is too long.")
        if not _canonical(token):
            # One spelling per token: padding, junk or non-canonical trailing bits that a lenient base64
            # decoder ignores would give one signed token many digests (and non-ASCII ones a crash).
            raise InvalidToken("The token is malformed.")
        head = token.partition(".")[0]
        parsed = self._heads.get(head)
        if parsed is None:
            parsed = self._parse_head(head)
            self._heads.put(head, parsed)
        if parsed.typ != typ:
            raise InvalidToken("The token is not of the expected kind.")
        key = parsed.key
        now = self.clock()
        if key.verify_until is not None and now >= key.verify_until:
            raise InvalidToken("The token was signed by an unknown key.")
        try:
            claims: dict[str, Any] = self._jwt.decode(
                token, key.verifying, algorithms=parsed.algorithms, audience=self.audience, issuer=self.issuer
            )
        except Exception as exc:  # every failure of untrusted input is a 401, never a 500
            raise InvalidToken("The token is invalid.") from exc
        leeway = self.leeway
        # Every time claim is checked for shape, also where its value is not compared (revoke): a malformed
        # claim is a malformed token, never a later error.
        exp, nbf, iat = _number(claims["exp"]), _number(claims["nbf"]), _number(claims["iat"])
        if verify_exp and exp <= now - leeway:
            raise TokenExpired("The token has expired.")
        if nbf > now + leeway or iat > now + leeway:
            raise InvalidToken("The token is not valid yet.")
        sid = claims.get("sid")
        if not isinstance(sid, str) or not _SID.fullmatch(sid):
            raise InvalidToken("The token is invalid.")
        return claims

    def verify_access(self, token: str | bytes) -> dict[str, Any]:
        """The claims of a valid access token; InvalidToken (or TokenExpired) otherwise, never another error.

        Checked: length (before any decoding), header shape (``alg``/``typ``/``kid`` only), ``typ`` is
        ``at+jwt``, ``kid`` names a key of the ring whose algorithm is the header's ``alg``, the signature,
        exact ``iss`` and ``aud``, every required claim, ``exp``/``nbf``/``iat`` with the leeway, and with
        ``check_revocation`` that the login was not ended.

        Example::

            claims = tm.verify_access(bearer_token)
            user_id = claims["sub"]
        """
        claims = self._decode(token, ACCESS_TOKEN_TYPE)
        if self.check_revocation:
            fam_key = self._family_keys(claims["sub"], claims["sid"])[0]
            try:
                alive = self.store.run(scripts.ALIVE, [fam_key], [])
            except StorageError as exc:
                alive = self._revocation_unknown(exc)
            else:
                if self._revocation_outage:
                    self._revocation_recovered()
            if not alive:
                raise InvalidToken("The session of this token has ended.")
        return claims

    async def averify_access(self, token: str | bytes) -> dict[str, Any]:
        """Async twin of :meth:`verify_access` (the revocation check, when on, does not block the loop).

        Example::

            claims = await tm.averify_access(bearer_token)
        """
        claims = self._decode(token, ACCESS_TOKEN_TYPE)
        if self.check_revocation:
            fam_key = self._family_keys(claims["sub"], claims["sid"])[0]
            try:
                alive = await self.store.arun(scripts.ALIVE, [fam_key], [])
            except StorageError as exc:
                alive = self._revocation_unknown(exc)
            else:
                if self._revocation_outage:
                    self._revocation_recovered()
            if not alive:
                raise InvalidToken("The session of this token has ended.")
        return claims

    def _revocation_unknown(self, exc: StorageError) -> bool:
        """The revocation check could not ask the store: raise (``deny``) or accept the token (``allow``)."""
        if self.revocation_on_storage_error == "deny":
            raise exc
        if not self._revocation_outage:
            self._revocation_outage = True
            log.warning(
                "Token store unavailable: access tokens are accepted without the revocation check "
                "(revocation_on_storage_error='allow') until it recovers (%s)",
                exc.detail,
            )
        return True

    def _revocation_recovered(self) -> None:
        self._revocation_outage = False
        log.warning("Token store available again: access tokens are checked for revocation")

    # -- rotating -----------------------------------------------------------------------------------------------

    def _plan_rotate(self, refresh_token: str | bytes, claims: Mapping[str, Any] | None) -> _RotatePlan:
        old = self._decode(refresh_token, REFRESH_TOKEN_TYPE)
        raw = refresh_token.encode("ascii") if isinstance(refresh_token, str) else bytes(refresh_token)
        subject, sid, family_exp = old["sub"], old["sid"], int(_number(old["exp"]))
        extra = _extra_claims(claims) if claims is not None else old.get("ext")
        if extra is not None and not isinstance(extra, Mapping):
            raise InvalidToken("The token is invalid.")
        now = int(self.clock())
        pair, access_exp = self._make_pair(subject, sid, family_exp, extra, now)
        sealed = ""
        if self.grace_window > 0:
            nonce = os.urandom(12)
            body = json.dumps({"a": pair.access_token, "r": pair.refresh_token, "e": access_exp}).encode("utf-8")
            sealed = _b64url(nonce + AESGCM(_seal_key(raw, sid)).encrypt(nonce, body, sid.encode("ascii")))
        fam_key, sub_key, _ = self._family_keys(subject, sid)
        args: list[Any] = [
            _digest(raw),
            _digest(pair.refresh_token.encode("ascii")),
            sealed,
            int(self.grace_window * 1000),
            sid,
            int(self.refresh_idle * 1000) if self.refresh_idle else 0,
        ]
        return _RotatePlan([fam_key, sub_key], args, pair, raw, sid)

    def _finish_rotate(self, plan: _RotatePlan, result: scripts.RotateReply) -> TokenPair:
        outcome = result.outcome
        if outcome == 1:
            return plan.pair
        if outcome == 2:
            try:
                blob = _b64url_decode(scripts.text(result.sealed))
                body = AESGCM(_seal_key(plan.old_token, plan.sid)).decrypt(
                    blob[:12], blob[12:], plan.sid.encode("ascii")
                )
                data = json.loads(body)
                return TokenPair(
                    access_token=data["a"],
                    refresh_token=data["r"],
                    expires_in=max(0, int(data["e"]) - int(self.clock())),
                )
            except (ValueError, KeyError, TypeError, InvalidTag) as exc:
                raise InvalidToken("The refresh token could not be rotated.") from exc
        if outcome == 3:
            raise TokenReused("This refresh token was already used; its session has been revoked.")
        if outcome == 4:
            raise TokenExpired("The session of this refresh token ended after a period of inactivity.")
        raise InvalidToken("The session of this refresh token has ended.")

    def rotate(self, refresh_token: str | bytes, claims: Mapping[str, Any] | None = None) -> TokenPair:
        """Exchange the current refresh token of a login for a new pair, in one atomic store step.

        Only the family's current token rotates. Its immediate predecessor, presented again within
        ``grace_window``, gets the same successor back, once. Any other refresh token of the family raises
        :class:`~backend_guard.exceptions.TokenReused` and revokes the whole family (and, with
        ``check_revocation``, its access tokens). The new refresh token expires with the family: rotation never
        extends a login. ``claims`` replaces the extra access-token claims (default: those of the login).

        Example::

            try:
                pair = tm.rotate(request_body["refresh_token"])
            except bg.TokenReused:
                alert_security_team()
                raise
        """
        plan = self._plan_rotate(refresh_token, claims)
        reply = scripts.RotateReply.from_reply(self.store.run(scripts.ROTATE, plan.keys, plan.args))
        return self._finish_rotate(plan, reply)

    async def arotate(self, refresh_token: str | bytes, claims: Mapping[str, Any] | None = None) -> TokenPair:
        """Async twin of :meth:`rotate`.

        Example::

            pair = await tm.arotate(refresh_token)
        """
        plan = self._plan_rotate(refresh_token, claims)
        reply = scripts.RotateReply.from_reply(await self.store.arun(scripts.ROTATE, plan.keys, plan.args))
        return self._finish_rotate(plan, reply)

    # -- revoking -----------------------------------------------------------------------------------------------

    def _plan_revoke(self, refresh_token: str | bytes) -> tuple[list[str], list[Any]]:
        claims = self._decode(refresh_token, REFRESH_TOKEN_TYPE, verify_exp=False)
        fam_key, sub_key, _ = self._family_keys(claims["sub"], claims["sid"])
        return [fam_key, sub_key], [claims["sid"]]

    def revoke(self, refresh_token: str | bytes) -> bool:
        """End the login of ``refresh_token`` (log out): its family can no longer rotate. True if it was alive.

        An expired token is accepted (its login is gone anyway); a forged or malformed one raises InvalidToken.

        Example::

            tm.revoke(refresh_token)
        """
        keys, args = self._plan_revoke(refresh_token)
        return bool(self.store.run(scripts.REVOKE_FAMILY, keys, args))

    async def arevoke(self, refresh_token: str | bytes) -> bool:
        """Async twin of :meth:`revoke`.

        Example::

            await tm.arevoke(refresh_token)
        """
        keys, args = self._plan_revoke(refresh_token)
        return bool(await self.store.arun(scripts.REVOKE_FAMILY, keys, args))

    def _plan_revoke_subject(self, subject: str | int) -> tuple[list[str], list[Any]]:
        _, sub_key, fam_prefix = self._family_keys(_subject(subject), "x")
        return [sub_key], [fam_prefix]

    def revoke_subject(self, subject: str | int) -> int:
        """End every login of ``subject`` (log out everywhere, after a password change); how many ended.

        Example::

            tm.revoke_subject("user-42")
        """
        keys, args = self._plan_revoke_subject(subject)
        return int(self.store.run(scripts.REVOKE_SUBJECT, keys, args))

    async def arevoke_subject(self, subject: str | int) -> int:
        """Async twin of :meth:`revoke_subject`.

        Example::

            await tm.arevoke_subject("user-42")
        """
        keys, args = self._plan_revoke_subject(subject)
        return int(await self.store.arun(scripts.REVOKE_SUBJECT, keys, args))

    # -- routes -------------------------------------------------------------------------------------------------

    def require_auth(self, scopes: str | Sequence[str] = ()) -> Callable[[_F], _F]:
        """A decorator for FastAPI, Starlette, Flask and Django routes: a valid access token with ``scopes``.

        Reads ``Authorization: Bearer <token>``; no or a malformed header is a 401 with ``WWW-Authenticate:
        Bearer``, a bad token a 401 with ``error="invalid_token"``, a missing scope (the space-separated
        ``scope`` claim, RFC 9068) a 403 with ``error="insufficient_scope"``. The claims are offered to the
        route as ``request.state.auth`` (Starlette/FastAPI), ``flask.g.auth`` or ``request.auth`` (Django).
        In FastAPI the route declares the ``bearerAuth`` security scheme (with ``scopes``) in the OpenAPI, so
        ``/docs`` shows an "Authorize" button, and ``backend_guard.fastapi.install`` documents its 401 (and,
        with scopes, 403) problem responses.

        Example::

            @app.get("/admin")
            @tm.require_auth(scopes=["admin"])
            async def admin(request: Request):
                return {"user": request.state.auth["sub"]}
        """
        return guard_route(_AuthHooks(self, scopes))

    def dependency(self, scopes: str | Sequence[str] = ()) -> Callable[..., Any]:
        """The FastAPI dependency twin of :meth:`require_auth`; it returns the claims.

        Its routes declare the ``bearerAuth`` security scheme in the OpenAPI, as with :meth:`require_auth`.

        Example::

            @app.get("/me")
            async def me(claims: dict = Depends(tm.dependency(scopes="read"))):
                return {"user": claims["sub"]}
        """
        from fastapi import Depends
        from starlette.requests import Request

        inner = fastapi_dependency(_AuthHooks(self, scopes))

        async def dependency(request: Request, checked: Any = Depends(inner)) -> dict[str, Any]:  # noqa: B008
            claims: dict[str, Any] = request.state.auth
            return claims

        dependency.__annotations__ = {"request": Request, "checked": Any, "return": dict[str, Any]}
        return dependency

    def jwks(self) -> dict[str, Any]:
        """The JWK Set of this manager's public keys still in their verification window.

        Example::

            @app.get("/.well-known/jwks.json")
            def jwks():
                return tm.jwks()
        """
        return self.keys.jwks(self.clock())


class _AuthHooks(RouteHooks):
    """Route hooks of :meth:`TokenManager.require_auth` (built on the shared ``_routes`` mechanism)."""

    def __init__(self, tm: TokenManager, scopes: str | Sequence[str]) -> None:
        self.tm = tm
        self.scopes = tuple(scopes.split() if isinstance(scopes, str) else scopes)
        self.statuses = (401, 403) if self.scopes else (401,)

    def fastapi_parameters(self) -> list[inspect.Parameter]:
        try:
            from ..integrations._fastapi_security import bearer_parameter
        except ImportError:  # no FastAPI: nothing to declare
            return []
        return [bearer_parameter(self.scopes)]

    def _token(self, call: RouteCall) -> str:
        value = call.view.header("authorization") or ""
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise AuthenticationError("A bearer token is required.")
        return token

    def _grant(self, call: RouteCall, claims: dict[str, Any]) -> None:
        if self.scopes:
            granted = claims.get("scope")
            have = set(granted.split()) if isinstance(granted, str) else set()
            if not have.issuperset(self.scopes):
                raise Forbidden("The token lacks a required scope.", scope=" ".join(self.scopes))
        call.set_attr("auth", claims)

    def before(self, call: RouteCall) -> None:
        self._grant(call, self.tm.verify_access(self._token(call)))

    async def abefore(self, call: RouteCall) -> None:
        self._grant(call, await self.tm.averify_access(self._token(call)))
