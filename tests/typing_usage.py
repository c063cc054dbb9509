"""Typed user code: every ASGI middleware and ``Guard`` added the Starlette ways, and the parts FastAPI's install
returns used as the README does, checked by ``mypy --strict``.

Not a test module (no ``test_`` prefix): ``tests/test_typing.py`` runs mypy on it. It is also importable.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware

import backend_guard as bg
import backend_guard.fastapi
from backend_guard.asgi import (
    CORSMiddleware,
    ErrorEnvelopeMiddleware,
    Guard,
    RateLimitMiddleware,
    RequestIdMiddleware,
    SecureHeadersMiddleware,
)
from backend_guard.errors import ErrorPolicy

policy = bg.CORSPolicy(allow_origins=["https://app.example.com"])
limiter = bg.RateLimiter("memory://")

app = Starlette()
app.add_middleware(CORSMiddleware, policy=policy)
app.add_middleware(CORSMiddleware, allow_origins=["https://app.example.com"])
app.add_middleware(ErrorEnvelopeMiddleware)
app.add_middleware(ErrorEnvelopeMiddleware, policy=ErrorPolicy())
app.add_middleware(SecureHeadersMiddleware)
app.add_middleware(SecureHeadersMiddleware, policy=bg.SecureHeaders(preset="web"))
app.add_middleware(RateLimitMiddleware, limiter=limiter, limits="100/minute")
app.add_middleware(RequestIdMiddleware)
app.add_middleware(RequestIdMiddleware, trust_incoming=False)
app.add_middleware(Guard, settings=bg.GuardSettings())

middleware = [
    Middleware(RequestIdMiddleware),
    Middleware(SecureHeadersMiddleware, policy=bg.SecureHeaders()),
    Middleware(CORSMiddleware, policy=policy),
    Middleware(ErrorEnvelopeMiddleware),
    Middleware(RateLimitMiddleware, limiter=limiter, limits="100/minute"),
    Middleware(Guard, settings=bg.GuardSettings()),
]
other = Starlette(middleware=middleware)

# The README's FastAPI quickstart: install() with default settings, then the stack's limiter on a route; the
# limiter is a RateLimiter (never Optional), so no `or` and no assert are needed to use it.
api = FastAPI()
guard = backend_guard.fastapi.install(api)
stack_limiter: bg.RateLimiter = guard.limiter
lock: bg.Lockout = guard.lockout()
hasher: bg.PasswordHasher = guard.passwords()


@api.get("/search")
@guard.limiter.limit("5/minute")
async def search(q: str) -> dict[str, str]:
    return {"q": q}
