"""Success-path cost of ErrorEnvelopeMiddleware (ASGI) beside pure-ASGI passthrough middlewares.

Each variant wraps the same tiny ASGI app (one ``http.response.start``, one body) and is called directly on
one event loop (no server, no network), so the numbers are the middleware's own cost. Rounds are interleaved
in a shuffled order (see ``_harness.py``) and medians reported, with the overhead over the bare passthrough in
µs and the ratio to it. Budget: ErrorEnvelopeMiddleware <= 1 µs over the bare passthrough.
RequestIdMiddleware is measured too (it makes an id and sets a header, so it has real work to do).

    python benchmarks/bench_errors.py            # full run
    python benchmarks/bench_errors.py --quick    # a few seconds (smoke mode)
Writes benchmarks/results/errors.json (and errors.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, save, table

from backend_guard.asgi._errors import ErrorEnvelopeMiddleware
from backend_guard.asgi._request_id import RequestIdMiddleware

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
BUDGET_US = 1.0


async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


class Passthrough:
    """The floor: a pure-ASGI middleware that forwards the call unchanged."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, send)


class WrappingPassthrough(Passthrough):
    """A passthrough that wraps ``send`` (what any middleware watching the response must do)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Any) -> None:
            await send(message)

        await self.app(scope, receive, wrapped)


def _case(app: App) -> Callable[[], Awaitable[None]]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    headers = [(b"accept", b"application/json"), (b"host", b"example.com")]

    async def call() -> None:
        scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
        await app(scope, receive, send)

    return call


def _check(app: App) -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send))
    assert sent[0]["status"] == 200, sent
    assert sent[1]["body"] == b"{}", sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    rounds, calls = (5, 500) if args.quick else (21, 20000)
    variants: dict[str, App] = {
        "passthrough": Passthrough(inner),
        "passthrough (wraps send)": WrappingPassthrough(inner),
        "ErrorEnvelopeMiddleware": ErrorEnvelopeMiddleware(inner),
        "RequestIdMiddleware": RequestIdMiddleware(inner),
    }
    for app in variants.values():
        _check(app)
    results = compare(
        {name: _case(app) for name, app in variants.items()},
        "passthrough",
        rounds=rounds,
        calls=calls,
        is_async=True,
    )
    md = table(results, "passthrough", "Error envelope: success path (ASGI, direct calls)")
    over = results["ErrorEnvelopeMiddleware"].overhead_us
    verdict = "within" if over <= BUDGET_US else "OVER"
    md += f"\nErrorEnvelopeMiddleware overhead: {over:+.3f} µs ({verdict} the {BUDGET_US} µs budget).\n"
    path = save(
        "errors" if not args.quick else "errors-quick",
        {"quick": args.quick, "budget_us": BUDGET_US, "baseline": "passthrough", "results": results},
        md,
    )
    print(md)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
