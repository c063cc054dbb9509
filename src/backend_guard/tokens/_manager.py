"""JWT access tokens and rotating refresh tokens with reuse detection, on PyJWT: :class:`TokenManager`.

What lives here: the manager's decisions about tokens (which claims a pair carries, which checks a presented
token passes and in what order, when a refresh token may rotate and what each outcome of rotation means). Its
options are checked in ``_options.py``, claims in ``_claims.py``, the compact form and header in
``_header.py``; the grace seal is ``_seal.py``, the route hooks ``_routes.py``, the atomic store steps
``_scripts.py``. Signing and signature checks are PyJWT's, keys :mod:`backend_guard._keys`. No framework is
imported.

Access tokens (``typ: at+jwt``, RFC 9068) and refresh tokens (``typ: rt+jwt``) are both JWTs signed by the
manager's key ring, and each kind is only accepted where it belongs. Every token carries ``iss``, ``aud``,
``sub``, ``exp``, ``iat``, ``nbf``, ``jti`` and ``sid`` (the id of the login, the *family* of refresh tokens).
The store keeps only SHA-256 digests of refresh tokens, per family, with a TTL at the family's absolute expiry.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .. import events
from .._cache import BoundedCache
from .._check import check_instance, optional
from ..errors import ErrorPolicy
from ..exceptions import ConfigurationError, GuardError, InvalidToken, StorageError, TokenExpired, TokenReused
from ..storage import Store, StoreLike, open_store
from . import _scripts as scripts
from ._claims import (
    ACCESS_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    REQUIRED_CLAIMS,
    TokenPair,
    check_claims,
    extra_claims,
    subject_claim,
    time_claim,
)
from ._header import Head, compact_text, digest, parse_head
from ._options import check_option_ranges, check_option_types, key_ring
from ._routes import auth_dependency, require_auth
from ._seal import seal, unseal

log = logging.getLogger("backend_guard.tokens")

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = ["TokenManager"]

_HEAD_CACHE_SIZE = 256
_HEAD_CACHE_BYTES = 256 << 10  # a JWT header is a few dozen bytes; a client may send any
# What the rotate script's refusals mean (outcome 0, the family is gone, and anything else: InvalidToken).
_ROTATE_REFUSALS: dict[int, tuple[type[GuardError], str]] = {
    3: (TokenReused, "This refresh token was already used; its session has been revoked."),
    4: (TokenExpired, "The session of this refresh token ended after a period of inactivity."),
}
_ROTATE_GONE = (InvalidToken, "The session of this refresh token has ended.")


@dataclass(frozen=True)
class _RotatePlan:
    keys: list[str]
    args: list[Any]
    pair: TokenPair
    old_token: bytes
    sid: str
    subject: str


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
    ``errors``: the :class:`~backend_guard.errors.ErrorPolicy` :meth:`require_auth`'s refusals are rendered with
    (a manager of a stack built from settings has the settings' ``errors``; default: problem documents).

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
        errors: ErrorPolicy | None = None,
    ) -> None:
        check_option_types(
            algorithm,
            key,
            access_ttl,
            refresh_ttl,
            leeway,
            grace_window,
            refresh_idle,
            check_revocation,
            max_token_length,
            clock,
        )
        ring = key_ring(key, algorithm)
        check_option_ranges(
            issuer,
            audience,
            access_ttl,
            refresh_ttl,
            leeway,
            grace_window,
            refresh_idle,
            revocation_on_storage_error,
            max_token_length,
        )
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
        #: The policy :meth:`require_auth`'s 401/403 are rendered with (None: problem documents).
        self.errors = optional(check_instance, "errors", errors, ErrorPolicy)
        # PyJWT (and the cryptography it loads) is imported by the first manager, not by ``import
        # backend_guard.tokens`` or the settings. Time claims are checked here with ``clock``; PyJWT checks the
        # signature, aud (exact), iss (exact), presence.
        import jwt

        self._jwt = jwt.PyJWT(
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": list(REQUIRED_CLAIMS),
                "strict_aud": True,
            }
        )
        self._heads: BoundedCache[str, Head] = BoundedCache(
            "tokens.heads", max_entries=_HEAD_CACHE_SIZE, max_bytes=_HEAD_CACHE_BYTES
        )

    def __repr__(self) -> str:
        return f"TokenManager(keys={self.keys!r}, issuer={self.issuer!r}, audience={self.audience!r})"

    # -- issuing ----------------------------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any], typ: str) -> str:
        key = self.keys.signing_key
        if key is None:
            raise ConfigurationError("This key ring has no active private key: it can verify but not sign.")
        return self._jwt.encode(claims, key.signing, algorithm=key.algorithm, headers={"kid": key.kid, "typ": typ})

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
        self._check_length(pair)
        return pair, access_exp

    def _check_length(self, pair: TokenPair) -> None:
        """Refuse (ConfigurationError, before anything is stored) a pair this manager would refuse to verify: a
        token over ``max_token_length`` characters (a long subject, many claims), never one the client gets."""
        longest = max(len(pair.access_token), len(pair.refresh_token))
        if longest > self.max_token_length:
            raise ConfigurationError(
                f"A token of this login would be {longest} characters, over max_token_length="
                f"{self.max_token_length}, and refused by every check: keep the subject and claims short "
                "(an id, not a profile), or raise max_token_length."
            )

    def _family_keys(self, subject: str, sid: str) -> tuple[str, str, str]:
        return scripts.family_keys(self.store, subject, sid)

    def _plan_issue(
        self, subject: str | int, claims: Mapping[str, Any] | None
    ) -> tuple[TokenPair, list[str], list[Any]]:
        subject = subject_claim(subject)
        extra = extra_claims(claims)
        now = int(self.clock())
        # 144 random bits behind a letter: an id a listing prints never starts with "-", which a command line
        # would read as an option (older ids, which may, stay valid: ``--family=ID`` reads them).
        sid = "f" + secrets.token_urlsafe(18)
        pair, _ = self._make_pair(subject, sid, now + self.refresh_ttl, extra, now)
        fam_key, sub_key, fam_prefix = self._family_keys(subject, sid)
        args: list[Any] = [
            digest(pair.refresh_token.encode("ascii")),
            self.refresh_ttl * 1000,
            sid,
            fam_prefix,
            _device(extra),
        ]
        return pair, [fam_key, sub_key], args

    def issue(self, subject: str | int, claims: Mapping[str, Any] | None = None) -> TokenPair:
        """Start a login for ``subject``: a new token family, an access token and its first refresh token.

        ``subject`` is a string or an integer primary key; the ``sub`` claim is always its string form
        (``42`` -> ``"42"``, RFC 7519), and anything else (``True``, ``None``, a UUID object) is a
        ConfigurationError. ``claims`` (for example ``{"scope": "read write"}``) go into every access token
        of this login; ``scope`` may also be a list of scope strings (``["read", "write"]``), stored as the
        space-separated string of RFC 9068. The registered claims are set by the manager and cannot be
        overridden. A string ``device`` (else ``user_agent``) claim is also kept with the login, at most 200
        characters, for operators' listings (``backend-guard tokens list``). A token that would be longer than
        ``max_token_length`` (which every check refuses) is a ConfigurationError, and nothing is stored.

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

    def _head(self, token: str) -> Head:
        """The parsed header of ``token`` (a header not in the cache of recently seen ones), now cached."""
        head = token.partition(".")[0]
        parsed = parse_head(head, self.keys)
        self._heads.put(head, parsed)
        return parsed

    def _signed_claims(self, token: str, head: Head) -> dict[str, Any]:
        """PyJWT's checks (signature with the key's own algorithm, exact ``iss``/``aud``, required claims)."""
        try:
            claims: dict[str, Any] = self._jwt.decode(
                token, head.key.verifying, algorithms=head.algorithms, audience=self.audience, issuer=self.issuer
            )
        except Exception as exc:  # every failure of untrusted input is a 401, never a 500
            raise InvalidToken("The token is invalid.") from exc
        return claims

    def _decode(self, token: Any, typ: str, *, verify_exp: bool = True) -> dict[str, Any]:
        """Check one token of kind ``typ`` completely and return its claims; InvalidToken/TokenExpired otherwise."""
        text = compact_text(token, self.max_token_length)
        head = self._heads.get(text.partition(".")[0]) or self._head(text)
        if head.typ != typ:
            raise InvalidToken("The token is not of the expected kind.")
        now = self.clock()
        key = head.key
        if key.verify_until is not None and now >= key.verify_until:
            raise InvalidToken("The token was signed by an unknown key.")
        claims = self._signed_claims(text, head)
        check_claims(claims, now, self.leeway, verify_exp=verify_exp)
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
                self._revocation_unknown(exc)
            else:
                self._check_alive(alive)
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
                self._revocation_unknown(exc)
            else:
                self._check_alive(alive)
        return claims

    def _check_alive(self, alive: Any) -> None:
        """The store answered the revocation check: end an outage, and refuse a token whose login ended."""
        if self._revocation_outage:
            self._revocation_recovered()
        if not alive:
            raise InvalidToken("The session of this token has ended.")

    def _revocation_unknown(self, exc: StorageError) -> None:
        """The revocation check could not ask the store: raise (``deny``) or accept the token (``allow``)."""
        if self.revocation_on_storage_error == "deny":
            events.emit("tokens", "storage.fail_closed", operation="revocation_check", mode="deny")
            raise exc
        events.emit("tokens", "storage.fail_open", operation="revocation_check", mode="allow")
        if not self._revocation_outage:
            self._revocation_outage = True
            log.warning(
                "Token store unavailable: access tokens are accepted without the revocation check "
                "(revocation_on_storage_error='allow') until it recovers (%s)",
                exc.detail,
            )

    def _revocation_recovered(self) -> None:
        self._revocation_outage = False
        log.warning("Token store available again: access tokens are checked for revocation")

    # -- rotating -----------------------------------------------------------------------------------------------

    def _plan_rotate(self, refresh_token: str | bytes, claims: Mapping[str, Any] | None) -> _RotatePlan:
        old = self._decode(refresh_token, REFRESH_TOKEN_TYPE)
        raw = refresh_token.encode("ascii") if isinstance(refresh_token, str) else bytes(refresh_token)
        subject, sid, family_exp = old["sub"], old["sid"], int(time_claim(old["exp"]))
        extra = extra_claims(claims) if claims is not None else old.get("ext")
        if extra is not None and not isinstance(extra, Mapping):
            raise InvalidToken("The token is invalid.")
        now = int(self.clock())
        pair, access_exp = self._make_pair(subject, sid, family_exp, extra, now)
        sealed = seal(pair, access_exp, raw, sid) if self.grace_window > 0 else ""
        fam_key, sub_key, _ = self._family_keys(subject, sid)
        args: list[Any] = [
            digest(raw),
            digest(pair.refresh_token.encode("ascii")),
            sealed,
            int(self.grace_window * 1000),
            sid,
            int(self.refresh_idle * 1000) if self.refresh_idle else 0,
        ]
        return _RotatePlan([fam_key, sub_key], args, pair, raw, sid, subject)

    def _finish_rotate(self, plan: _RotatePlan, result: scripts.RotateReply) -> TokenPair:
        """What the rotate script's outcome means: 1 the new pair, 2 the sealed one (grace), else the refusal."""
        if result.outcome == 1:
            return plan.pair
        if result.outcome == 2:
            return unseal(result.sealed, plan.old_token, plan.sid, self.clock)
        error, message = _ROTATE_REFUSALS.get(result.outcome, _ROTATE_GONE)
        if error is not InvalidToken:  # reuse or idle: the script dropped the family
            _emit_dropped(error, plan.subject, plan.sid)
        raise error(message)

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

    def _plan_revoke(self, refresh_token: str | bytes) -> tuple[list[str], list[Any], str]:
        claims = self._decode(refresh_token, REFRESH_TOKEN_TYPE, verify_exp=False)
        fam_key, sub_key, _ = self._family_keys(claims["sub"], claims["sid"])
        return [fam_key, sub_key], [claims["sid"]], claims["sub"]

    def revoke(self, refresh_token: str | bytes) -> bool:
        """End the login of ``refresh_token`` (log out): its family can no longer rotate. True if it was alive.

        An expired token is accepted (its login is gone anyway); a forged or malformed one raises InvalidToken.

        Example::

            tm.revoke(refresh_token)
        """
        keys, args, subject = self._plan_revoke(refresh_token)
        return _revoked(bool(self.store.run(scripts.REVOKE_FAMILY, keys, args)), subject, args[0])

    async def arevoke(self, refresh_token: str | bytes) -> bool:
        """Async twin of :meth:`revoke`.

        Example::

            await tm.arevoke(refresh_token)
        """
        keys, args, subject = self._plan_revoke(refresh_token)
        return _revoked(bool(await self.store.arun(scripts.REVOKE_FAMILY, keys, args)), subject, args[0])

    def _plan_revoke_subject(self, subject: str | int) -> tuple[list[str], list[Any], str]:
        sub = subject_claim(subject)
        _, sub_key, fam_prefix = self._family_keys(sub, "x")
        return [sub_key], [fam_prefix], sub

    def revoke_subject(self, subject: str | int) -> int:
        """End every login of ``subject`` (log out everywhere, after a password change); how many ended.

        Example::

            tm.revoke_subject("user-42")
        """
        keys, args, sub = self._plan_revoke_subject(subject)
        return _revoked_all(int(self.store.run(scripts.REVOKE_SUBJECT, keys, args)), sub)

    async def arevoke_subject(self, subject: str | int) -> int:
        """Async twin of :meth:`revoke_subject`.

        Example::

            await tm.arevoke_subject("user-42")
        """
        keys, args, sub = self._plan_revoke_subject(subject)
        return _revoked_all(int(await self.store.arun(scripts.REVOKE_SUBJECT, keys, args)), sub)

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
        return require_auth(self, scopes, errors=self.errors)

    def dependency(self, scopes: str | Sequence[str] = ()) -> Callable[..., Any]:
        """The FastAPI dependency twin of :meth:`require_auth`; it returns the claims.

        Its routes declare the ``bearerAuth`` security scheme in the OpenAPI, as with :meth:`require_auth`.

        Example::

            @app.get("/me")
            async def me(claims: dict = Depends(tm.dependency(scopes="read"))):
                return {"user": claims["sub"]}
        """
        return auth_dependency(self, scopes)

    def jwks(self) -> dict[str, Any]:
        """The JWK Set of this manager's public keys still in their verification window.

        Example::

            @app.get("/.well-known/jwks.json")
            def jwks():
                return tm.jwks()
        """
        return self.keys.jwks(self.clock())


def _device(extra: Mapping[str, Any] | None) -> str:
    """The ``device`` (else ``user_agent``) claim of a login, when it is a string: kept for operators' listings,
    cut to 200 characters, each unprintable one (control characters such as a terminal's escape, bidi overrides,
    lone surrogates that UTF-8 cannot carry to Redis) replaced by ``?``: it is client input an operator reads."""
    if not extra:
        return ""
    found = extra.get("device", extra.get("user_agent"))
    if not isinstance(found, str):
        return ""
    cut = found[:200]
    return cut if cut.isprintable() else "".join(ch if ch.isprintable() else "?" for ch in cut)


def _emit_dropped(error: type[GuardError], subject: str, sid: str) -> None:
    """Publish what a refused rotation did to its family: reuse detected (the family revoked), or the family
    dropped after a period of inactivity."""
    if events.listening("tokens"):
        if error is TokenReused:
            events.emit("tokens", "tokens.reuse_detected", subject_id=events.digest(subject), family=sid)
        else:
            fields = {"subject_id": events.digest(subject), "family": sid, "reason": "idle", "count": 1}
            events.emit("tokens", "tokens.family_revoked", **fields)


def _revoked(alive: bool, subject: str, sid: str) -> bool:
    """``alive``, after publishing ``tokens.family_revoked`` (reason ``logout``) when the family was alive."""
    if alive and events.listening("tokens"):
        fields = {"subject_id": events.digest(subject), "family": sid, "reason": "logout", "count": 1}
        events.emit("tokens", "tokens.family_revoked", **fields)
    return alive


def _revoked_all(count: int, subject: str) -> int:
    """``count``, after publishing ``tokens.family_revoked`` (reason ``logout_all``) when a login ended."""
    if count and events.listening("tokens"):
        fields = {"subject_id": events.digest(subject), "family": None, "reason": "logout_all", "count": count}
        events.emit("tokens", "tokens.family_revoked", **fields)
    return count
