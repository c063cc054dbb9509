"""Instructions a rate-limited request costs when its client is new (its first request) and when it is not,
counted by valgrind's callgrind (load-independent).

A flood of distinct clients (or a busy site's new visitors) meets the first-request path: the client's key, its
plan (store keys, arguments, the ``RateLimit`` field texts), the bounded caches' inserts and a new counter. Three
shells, each with one memory rate limit that is never reached:

- ``guard``: ``asgi.Guard`` with ``GuardSettings(rate_limit={"default_limits": ...})`` around a tiny ASGI app;
- ``wsgi``: ``wsgi.RateLimitMiddleware`` around a tiny WSGI app;
- ``decorator``: a Starlette app whose one route is decorated with ``@limiter.limit``.

Each case is driven ``--low`` and then ``--high`` requests after 3,000 to warm up (the caches then full, so a new
client also evicts an old one, as in a flood), the heap frozen after the warm-up; the figure is
``(high run - low run) / (high - low)``: one request, start-up left out (``PYTHONHASHSEED=0``). ``new`` sends every
request from another IPv4 address; ``repeat`` sends them all from one; ``new-path`` sends them all from one
address, each to another path (``/users/<n>``: a visitor browsing, a crawler).

Usage::

    python benchmarks/first_request_instructions.py                       # every case, this tree
    python benchmarks/first_request_instructions.py --tree /tmp/old       # and another checkout, side by side
    python benchmarks/first_request_instructions.py --drive guard new 100 # the driver alone (no valgrind)

Needs valgrind; about ten seconds per case and tree.
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
SRC = HERE.parent.parent / "src"

from _harness import callgrind_instructions  # noqa: E402  (beside this file)

LIMIT = "1000000000/hour"  # never reached: every request is the full decision
WARM_UP = 3000
SHELLS = ("guard", "wsgi", "decorator")
CLIENTS = ("new", "repeat", "new-path")


def _address(i: int) -> str:
    return f"198.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _scope(client: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api.example.com"), (b"accept", b"application/json")],
        "client": (client, 50000),
        "server": ("127.0.0.1", 8000),
    }


def _asgi_step(app: Any) -> Callable[[str, str], None]:
    """One request through ``app`` from ``client`` to ``path`` (the memory store never awaits: one ``send`` runs it
    all)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    def step(client: str, path: str) -> None:
        coroutine = app(_scope(client, path), receive, send)
        try:
            coroutine.send(None)
        except StopIteration:
            return
        raise RuntimeError("the app awaited something: not the memory store's path")

    return step


async def _json_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def _guard() -> Callable[[str, str], None]:
    import backend_guard as bg
    from backend_guard.asgi import Guard

    return _asgi_step(Guard(_json_app, bg.GuardSettings(rate_limit={"default_limits": LIMIT})))


def _wsgi() -> Callable[[str, str], None]:
    from backend_guard import MemoryStore, RateLimiter
    from backend_guard.wsgi import RateLimitMiddleware

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    middleware = RateLimitMiddleware(app, limiter=RateLimiter(MemoryStore()), limits=LIMIT)

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        pass

    def step(client: str, path: str) -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "api.example.com",
            "SERVER_PORT": "443",
            "REMOTE_ADDR": client,
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(b""),
        }
        for _ in middleware(environ, start_response):
            pass

    return step


def _decorator() -> Callable[[str, str], None]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from backend_guard import MemoryStore, RateLimiter

    limiter = RateLimiter(MemoryStore())

    @limiter.limit(LIMIT)
    async def user(request: Request) -> JSONResponse:
        return JSONResponse({})

    return _asgi_step(Starlette(routes=[Route("/users/{id}", user)]))


def drive(shell: str, clients: str, n: int) -> None:
    """Send ``n`` requests through one shell after the warm-up: each from a new client, all from one, or all from
    one to a new path each."""
    step = {"guard": _guard, "wsgi": _wsgi, "decorator": _decorator}[shell]()
    for i in range(WARM_UP):
        step(_address(i), f"/users/{i}")
    gc.collect()
    gc.freeze()
    for i in range(WARM_UP, WARM_UP + n):
        step(
            _address(i) if clients == "new" else "203.0.113.7", f"/users/{i}" if clients == "new-path" else "/users/42"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shells", nargs="+", choices=SHELLS, default=list(SHELLS))
    parser.add_argument("--tree", action="append", default=[], help="another checkout to measure (its src/)")
    parser.add_argument("--low", type=int, default=1000)
    parser.add_argument("--high", type=int, default=3000)
    parser.add_argument("--drive", nargs=3, metavar=("SHELL", "CLIENTS", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.drive[0], args.drive[1], int(args.drive[2]))
        return
    trees = [("this tree", SRC)] + [(tree, Path(tree).resolve() / "src") for tree in args.tree]
    print(f"| shell, requests | {' | '.join(name for name, _ in trees)} |")
    print(f"|---|{'---:|' * len(trees)}")
    with tempfile.TemporaryDirectory() as tmp:
        for shell in args.shells:
            for clients in CLIENTS:
                row = []
                for i, (_, src) in enumerate(trees):
                    counts = [
                        callgrind_instructions(
                            [str(HERE), "--drive", shell, clients, str(n)], src, Path(tmp) / f"{i}-{shell}-{n}.out"
                        )
                        for n in (args.low, args.high)
                    ]
                    row.append((counts[1] - counts[0]) // (args.high - args.low))
                cells = [f"{row[0]:,}"] + [f"{value:,} (this tree {row[0] / value:.3f}x)" for value in row[1:]]
                print(f"| {shell}, {clients} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
