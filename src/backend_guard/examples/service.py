"""The framework-free heart of the example apps: register, login, refresh, logout everywhere.

It shows how the parts combine: the lockout reserves an attempt before the password is checked; unknown
accounts cost the same work as wrong passwords (``dummy_verify``); a correct password under weaker parameters is
rehashed; tokens rotate with reuse detection. The web shells only translate HTTP to these calls.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._keys import generate_key
from ..exceptions import GuardError
from ..lockout import Lockout
from ..passwords import TEST, PasswordHasher
from ..ratelimit import RateLimiter
from ..storage import Store, open_store
from ..tokens import TokenManager, TokenPair

__all__ = ["AuthService", "BadRequest", "EmailTaken"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>backend_guard demo</title></head>
<body>
<h1>backend_guard demo</h1>
<p id="status">The inline script below carries this response's CSP nonce.</p>
<script nonce="{nonce}">document.getElementById("status").textContent = "nonce script ran";</script>
<script>document.getElementById("status").textContent = "UNSAFE: a script without the nonce ran";</script>
</body></html>
"""


class EmailTaken(GuardError):
    """409: the email is already registered.

    Example::

        raise EmailTaken()
    """

    status = 409
    code = "email-taken"
    title = "Email Already Registered"


class BadRequest(GuardError):
    """400: the request body is not what the route expects.

    Example::

        raise BadRequest("email and password are required.")
    """

    status = 400
    code = "bad-request"
    title = "Bad Request"


@dataclass
class AuthService:
    """Users in memory, passwords hashed, logins locked out and rate limited, tokens rotated.

    ``BACKEND_GUARD_DEMO_FAST_HASH=1`` uses a cheap argon2 profile (tests only: it is far below OWASP's minimum).

    Example::

        service = AuthService.create()
        service.register("a@example.com", "correct horse battery staple")
        pair = service.login("a@example.com", "correct horse battery staple", "203.0.113.7")
    """

    hasher: PasswordHasher
    lockout: Lockout
    tokens: TokenManager
    limiter: RateLimiter
    users: dict[str, str]
    lock: threading.Lock
    #: email -> user id: the tokens' subject (an e-mail there would be in the store's keys and the logs' digests)
    ids: dict[str, str] = field(default_factory=dict)

    LOGIN_LIMIT: ClassVar[str] = "10/minute"

    @classmethod
    def create(cls, store: Store | str | None = None) -> AuthService:
        """A service on ``store`` (``BACKEND_GUARD_DEMO_STORE`` or the memory default)."""
        shared = open_store(store if store is not None else os.environ.get("BACKEND_GUARD_DEMO_STORE", "memory://"))
        fast = os.environ.get("BACKEND_GUARD_DEMO_FAST_HASH") == "1"
        hasher = PasswordHasher(TEST, allow_weak=True) if fast else PasswordHasher()
        private_key, _jwk = generate_key("EdDSA")
        return cls(
            hasher=hasher,
            lockout=Lockout(shared, max_failures=5, generic=True),
            tokens=TokenManager(private_key, "EdDSA", issuer="backend-guard-demo", audience="demo", store=shared),
            limiter=RateLimiter(shared),
            users={},
            lock=threading.Lock(),
        )

    @staticmethod
    def credentials(body: Any) -> tuple[str, str]:
        """``(email, password)`` from a parsed JSON body, or BadRequest."""
        if not isinstance(body, dict):
            raise BadRequest("Send a JSON object with email and password.")
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
            raise BadRequest("email and password are required strings.")
        return email.strip().lower(), password

    def register(self, body: Any) -> dict[str, str]:
        """Create an account; the password is hashed (argon2id) before it is kept."""
        email, password = self.credentials(body)
        hashed = self.hasher.hash(password)
        with self.lock:
            if email in self.users:
                raise EmailTaken()
            self.users[email] = hashed
            self.ids[email] = secrets.token_hex(8)
        return {"email": email}

    def login(self, body: Any, address: str) -> TokenPair:
        """Check a password under the lockout; a token pair on success, ``InvalidCredentials`` otherwise."""
        email, password = self.credentials(body)
        with self.lockout.attempt(email, address) as attempt:
            stored = self.users.get(email)
            if stored is None:
                self.hasher.dummy_verify(password)  # the same work as a real check: no account enumeration
                raise self.lockout.invalid_credentials()
            ok, new_hash = self.hasher.verify_and_update(stored, password)
            if not ok:
                raise self.lockout.invalid_credentials()
            if new_hash is not None:
                with self.lock:
                    self.users[email] = new_hash
            attempt.succeeded()
        return self.tokens.issue(self.ids[email])

    def refresh(self, body: Any) -> TokenPair:
        """Rotate a refresh token (a reused one revokes its whole family)."""
        token = body.get("refresh_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadRequest("refresh_token is required.")
        return self.tokens.rotate(token)

    def logout_all(self, claims: dict[str, Any]) -> None:
        """Revoke every refresh token of the caller (log out everywhere)."""
        self.tokens.revoke_subject(str(claims["sub"]))

    @staticmethod
    def pair_json(pair: TokenPair) -> dict[str, Any]:
        """A token pair as the JSON body of a response."""
        return {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": pair.token_type,
            "expires_in": pair.expires_in,
        }
