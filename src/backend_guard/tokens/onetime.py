"""Single-use signed tokens for links sent by mail: password reset, email verification, magic login.

What lives here: the shape and checks of a one-time token. Signing and the timestamp are itsdangerous's
(HMAC-SHA256, a salt per purpose, a list of secrets oldest to newest: sign with the newest, verify with all);
"single use" is one atomic store step that marks the token's nonce as consumed until it could no longer
verify anyway, so the store prunes itself.

Binding to user state: with ``fingerprint=``, the token carries a short keyed MAC of a value of the user's
current state (typically the password hash). When that state changes (the password was reset), every
outstanding token dies, and the readable payload never holds any hash material.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from .._check import check_callable, check_float, check_int, optional
from ..exceptions import ConfigurationError, InvalidToken, TokenExpired
from ..storage import Store, StoreLike, open_store
from . import _scripts as scripts

__all__ = ["OneTimePayload", "OneTimeTokens"]

MIN_SECRET_BYTES = 32

FingerprintValue = str | bytes | None
Fingerprint = Callable[[str], FingerprintValue | Awaitable[FingerprintValue]]


@dataclass(frozen=True)
class OneTimePayload:
    """What a consumed one-time token carried: its subject, the caller's data and when it was made (epoch s).

    Example::

        payload = ot.consume(token)
        user = users.get(payload.subject)
    """

    subject: str
    data: Any
    issued_at: float


def _secret_list(secret_keys: object) -> list[Any]:
    """One secret or a list of them, as a non-empty list of str or bytes."""
    if isinstance(secret_keys, Mapping) or not isinstance(secret_keys, (str, bytes, Iterable)):
        raise ConfigurationError(
            f"secret_keys must be a secret (str or bytes) or a list of them, not a {type(secret_keys).__name__}."
        )
    keys = [secret_keys] if isinstance(secret_keys, (str, bytes)) else list(secret_keys)
    if not keys:
        raise ConfigurationError("secret_keys: OneTimeTokens needs at least one secret key.")
    if not all(isinstance(k, (str, bytes, bytearray)) for k in keys):
        raise ConfigurationError("secret_keys must hold only secrets (str or bytes).")
    return keys


def _secret_bytes(secret_keys: object) -> list[bytes]:
    """The secrets, oldest to newest, as bytes: one secret or a list, each at least ``MIN_SECRET_BYTES``."""
    raw_keys = [k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in _secret_list(secret_keys)]
    if any(len(k) < MIN_SECRET_BYTES for k in raw_keys):
        raise ConfigurationError(f"secret_keys: one-time token secrets must be at least {MIN_SECRET_BYTES} bytes.")
    return raw_keys


def _check_purpose_and_age(purpose: object, max_age: float) -> None:
    if not isinstance(purpose, str) or not purpose:
        raise ConfigurationError("purpose must be a non-empty string.")
    if not 0 < max_age <= 30 * 86400:
        raise ConfigurationError("max_age must be positive and at most 30 days.")


def _token_text(token: Any, max_length: int) -> str:
    """``token`` (str or ASCII bytes) as text of at most ``max_length`` characters; InvalidToken otherwise."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken("The token is malformed.") from None
    if not isinstance(token, str) or not token or len(token) > max_length:
        raise InvalidToken("The token is malformed.")
    return token


def _well_formed(payload: Any) -> bool:
    """The payload this class signs: a dict with a string subject ``s`` and a string nonce ``n``."""
    return isinstance(payload, dict) and isinstance(payload.get("s"), str) and isinstance(payload.get("n"), str)


class _ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer on a replaceable clock."""

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class OneTimeTokens:
    """Makes and consumes single-use, expiring tokens bound to one ``purpose``.

    ``secret_keys`` is one secret or a list, oldest to newest (each at least 32 bytes): new tokens are signed
    with the newest, and tokens signed with any listed secret still verify, which is how secrets rotate.
    ``max_age`` is the lifetime in seconds. ``store`` records consumed tokens (a URL or a store object;
    share Redis between processes, or a token could be used once per process). ``fingerprint`` optionally
    maps a subject to a value of its current state (sync, or async for :meth:`aconsume`); a token dies when
    that value changes.

    Example::

        resets = OneTimeTokens([os.environ["RESET_SECRET"]], purpose="password-reset", max_age=3600,
                               store="redis://127.0.0.1:6379/0",
                               fingerprint=lambda user_id: users.get(user_id).password_hash)
        link = f"https://app.example/reset?token={resets.create(user.id)}"
        payload = resets.consume(token)      # raises InvalidToken when used twice, TokenExpired when late
    """

    def __init__(
        self,
        secret_keys: str | bytes | Sequence[str | bytes],
        *,
        purpose: str,
        max_age: float = 3600.0,
        store: StoreLike = None,
        fingerprint: Fingerprint | None = None,
        max_token_length: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        raw_keys = _secret_bytes(secret_keys)
        check_float("max_age", max_age, positive=True)
        optional(check_callable, "fingerprint", fingerprint)
        check_int("max_token_length", max_token_length, min=1)
        check_callable("clock", clock)
        _check_purpose_and_age(purpose, max_age)
        self.purpose = purpose
        self.max_age = int(max_age)
        self.store: Store = open_store(store)
        self.fingerprint = fingerprint
        self.max_token_length = max_token_length
        self.clock = clock
        self._serializer = URLSafeTimedSerializer(
            raw_keys,
            salt=f"backend_guard.tokens.onetime:{purpose}",
            signer=_ClockedSigner,
            signer_kwargs={"clock": clock, "digest_method": hashlib.sha256},
        )
        # Fingerprint MAC keys, newest first, derived per secret so that secret rotation keeps tokens valid.
        self._mac_keys = [
            hmac.new(k, b"backend_guard.tokens.onetime.fingerprint:" + purpose.encode("utf-8"), hashlib.sha256).digest()
            for k in reversed(raw_keys)
        ]

    def __repr__(self) -> str:
        return f"OneTimeTokens(purpose={self.purpose!r}, max_age={self.max_age})"

    def _tag(self, mac_key: bytes, subject: str, state: FingerprintValue) -> str:
        value = state.encode("utf-8") if isinstance(state, str) else (state or b"")
        msg = subject.encode("utf-8") + b"\x00" + value
        return hmac.new(mac_key, msg, hashlib.sha256).hexdigest()[:32]

    def _build(self, subject: str, data: Any, state: FingerprintValue) -> str:
        if not isinstance(subject, str) or not subject:
            raise ConfigurationError("subject must be a non-empty string.")
        payload: dict[str, Any] = {"s": subject, "n": secrets.token_urlsafe(16)}
        if data is not None:
            payload["d"] = data
        if self.fingerprint is not None:
            payload["f"] = self._tag(self._mac_keys[0], subject, state)
        token = self._serializer.dumps(payload)
        if len(token) > self.max_token_length:
            raise ConfigurationError("The one-time token would be too long: keep its data small.")
        return token

    def _fingerprint_sync(self, subject: str) -> FingerprintValue:
        assert self.fingerprint is not None
        value = self.fingerprint(subject)
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()  # never awaited on this path: close it rather than leak a warning
            raise ConfigurationError("An async fingerprint needs acreate()/aconsume().")
        return value

    async def _fingerprint_async(self, subject: str) -> FingerprintValue:
        assert self.fingerprint is not None
        value = self.fingerprint(subject)
        return await value if inspect.isawaitable(value) else value

    def create(self, subject: str, data: Any = None) -> str:
        """A new URL-safe token for ``subject`` carrying ``data`` (small, JSON-serialisable, readable by the user).

        Example::

            token = ot.create("user-42", {"email": "a@example.com"})
        """
        state = self._fingerprint_sync(subject) if self.fingerprint is not None else None
        return self._build(subject, data, state)

    async def acreate(self, subject: str, data: Any = None) -> str:
        """Async twin of :meth:`create` (awaits an async ``fingerprint``).

        Example::

            token = await ot.acreate("user-42")
        """
        state = await self._fingerprint_async(subject) if self.fingerprint is not None else None
        return self._build(subject, data, state)

    def _verify(self, token: Any) -> tuple[dict[str, Any], float]:
        text = _token_text(token, self.max_token_length)
        try:
            payload, signed_at = self._serializer.loads(text, max_age=self.max_age, return_timestamp=True)
        except SignatureExpired as exc:
            raise TokenExpired("The link has expired.") from exc
        except (BadData, ValueError, TypeError, OverflowError) as exc:
            raise InvalidToken("The token is invalid.") from exc
        if not _well_formed(payload):
            raise InvalidToken("The token is invalid.")
        return payload, signed_at.timestamp()

    def _check_fingerprint(self, payload: dict[str, Any], state: FingerprintValue) -> None:
        tag = payload.get("f")
        if not isinstance(tag, str):
            raise InvalidToken("The token is invalid.")
        ok = False
        for mac_key in self._mac_keys:
            ok |= hmac.compare_digest(self._tag(mac_key, payload["s"], state), tag)
        if not ok:
            raise InvalidToken("The token is no longer valid.")

    def _once_args(self, payload: dict[str, Any]) -> tuple[list[str], list[Any]]:
        key = self.store.key("ot", self.purpose, payload["n"])
        # Remembered until the token could no longer verify, plus a margin: the store prunes itself.
        return [key], [(self.max_age + 60) * 1000]

    def _result(self, payload: dict[str, Any], issued_at: float, fresh: Any) -> OneTimePayload:
        if not int(fresh):
            raise InvalidToken("The token was already used.")
        return OneTimePayload(subject=payload["s"], data=payload.get("d"), issued_at=issued_at)

    def _checked(self, token: Any) -> tuple[dict[str, Any], float, list[str], list[Any]]:
        """The verified payload, its signing time, and the store keys and arguments of its single-use marker."""
        payload, issued_at = self._verify(token)
        if self.fingerprint is not None:
            self._check_fingerprint(payload, self._fingerprint_sync(payload["s"]))
        return payload, issued_at, *self._once_args(payload)

    async def _achecked(self, token: Any) -> tuple[dict[str, Any], float, list[str], list[Any]]:
        """Async twin of :meth:`_checked` (awaits an async ``fingerprint``)."""
        payload, issued_at = self._verify(token)
        if self.fingerprint is not None:
            self._check_fingerprint(payload, await self._fingerprint_async(payload["s"]))
        return payload, issued_at, *self._once_args(payload)

    def consume(self, token: str | bytes) -> OneTimePayload:
        """Check ``token`` and mark it used, atomically; the second call with the same token raises InvalidToken.

        Raises TokenExpired after ``max_age``, InvalidToken when tampered with, of another purpose, already
        used, or (with ``fingerprint``) when the subject's state changed since it was made.

        Example::

            payload = ot.consume(request.args["token"])
            users.set_password(payload.subject, new_password)
        """
        payload, issued_at, keys, args = self._checked(token)
        return self._result(payload, issued_at, self.store.run(scripts.CONSUME_ONCE, keys, args))

    async def aconsume(self, token: str | bytes) -> OneTimePayload:
        """Async twin of :meth:`consume` (awaits an async ``fingerprint``).

        Example::

            payload = await ot.aconsume(token)
        """
        payload, issued_at, keys, args = await self._achecked(token)
        return self._result(payload, issued_at, await self.store.arun(scripts.CONSUME_ONCE, keys, args))

    def peek(self, token: str | bytes) -> OneTimePayload:
        """Check ``token`` exactly as :meth:`consume` does, without using it up.

        For the page a mailed link opens: check the link before showing the form (a used, expired or
        tampered link gets its error page at once, and the user types no new password into a dead link),
        then :meth:`consume` when the form is sent. Only ``consume`` is atomic: two tabs may both peek at
        one token, but only one can consume it. Raises the same errors as ``consume``.

        Example::

            payload = resets.peek(request.args["token"])   # GET: show the form, or the error
            payload = resets.consume(request.form["token"])  # POST: set the password
        """
        payload, issued_at, keys, args = self._checked(token)
        return self._result(payload, issued_at, self.store.run(scripts.NOT_CONSUMED, keys, args))

    async def apeek(self, token: str | bytes) -> OneTimePayload:
        """Async twin of :meth:`peek` (awaits an async ``fingerprint``).

        Example::

            payload = await resets.apeek(token)
        """
        payload, issued_at, keys, args = await self._achecked(token)
        return self._result(payload, issued_at, await self.store.arun(scripts.NOT_CONSUMED, keys, args))
