"""Per-request cost of SecureHeadersMiddleware (ASGI), beside a pure-ASGI passthrough and the `secure` package.

Each variant wraps the same tiny ASGI app (one ``http.response.start`` with a few headers, one body) and is
called directly on one event loop (no server, no network), so the numbers are the middleware's own cost.
Rounds are interleaved (every variant once per round) and medians reported, with the overhead over the
passthrough in µs and the ratio to it. Budgets: <= 2 µs a request without a nonce, <= 4 µs with one.

    python benchmarks/bench_headers.py            # full run
    python benchmarks/bench_headers.py --quick    # a few seconds
Writes benchmarks/results/headers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from backend_guard.asgi._headers import SecureHeadersMiddleware
from backend_guard.headers import SecureHeaders, csp_nonce

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

APP_HEADERS = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"2"), (b"etag", b'"abc"')]


async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": list(APP_HEADERS)})
    await send({"type": "http.response.body", "body": b"ok"})


async def inner_nonce(scope: dict[str, Any], receive: Any, send: Any) -> None:
    csp_nonce(scope)
    await inner(scope, receive, send)


class Passthrough:
    """A pure-ASGI middleware that wraps ``send`` and changes nothing: the floor for any header middleware."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, wrapped)


def secure_variant(app: App) -> App | None:
    """The `secure` package's default headers applied per response the way its docs suggest, if installed."""
    try:
        import secure  # type: ignore[import-not-found]
        from starlette.datastructures import MutableHeaders
    except ImportError:
        return None
    policy = secure.Secure.with_default_headers()

    class _Resp:
        def __init__(self, headers: MutableHeaders) -> None:
            self.headers = headers

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                policy.set_headers(_Resp(MutableHeaders(scope=message)))
            await send(message)

        await app(scope, receive, wrapped)

    return middleware


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "https",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "headers": [(b"host", b"example.com"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 5000),
    "server": ("127.0.0.1", 8000),
}


async def run_batch(app: App, n: int) -> float:
    """Seconds per request over ``n`` requests (a fresh scope and state each, as a server gives)."""
    scope_template = SCOPE
    start = time.perf_counter()
    for _ in range(n):
        scope = dict(scope_template)
        scope["state"] = {}
        await app(scope, _receive, _send)
    return (time.perf_counter() - start) / n


def check_output() -> None:
    """The variants really add the headers they claim (a benchmark of a broken middleware is worthless)."""
    got: list[Any] = []

    async def capture(message: Any) -> None:
        got.append(message)

    async def one(app: App) -> list[tuple[bytes, bytes]]:
        got.clear()
        await app({**SCOPE, "state": {}}, _receive, capture)
        return list(got[0]["headers"])

    ours = asyncio.run(one(SecureHeadersMiddleware(inner, policy=SecureHeaders(preset="web"))))
    assert any(k == b"strict-transport-security" for k, _ in ours)
    nonce = asyncio.run(one(SecureHeadersMiddleware(inner_nonce, policy=SecureHeaders(preset="web"))))
    assert any(k == b"content-security-policy" and b"'nonce-" in v for k, v in nonce)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a few seconds)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "headers.json"))
    args = parser.parse_args()
    rounds, n = (7, 3_000) if args.quick else (21, 20_000)
    check_output()

    web = SecureHeaders(preset="web")
    variants: dict[str, App] = {
        "asgi_passthrough": Passthrough(inner),
        "backend_guard_api": SecureHeadersMiddleware(inner),
        "backend_guard_web_no_nonce": SecureHeadersMiddleware(inner, policy=web),
        "passthrough_app_nonce": Passthrough(inner_nonce),
        "backend_guard_web_nonce": SecureHeadersMiddleware(inner_nonce, policy=web),
    }
    sec = secure_variant(inner)
    if sec is not None:
        variants["secure_package"] = sec
    else:
        print("`secure` is not installed (pip install -e '.[bench]'): its row is skipped")

    samples: dict[str, list[float]] = {name: [] for name in variants}

    async def measure() -> None:
        for app in variants.values():  # warm up
            await run_batch(app, n // 10)
        for _ in range(rounds):
            for name, app in variants.items():
                samples[name].append(await run_batch(app, n))

    asyncio.run(measure())
    med = {name: statistics.median(v) for name, v in samples.items()}
    base, base_nonce = med["asgi_passthrough"], med["passthrough_app_nonce"]
    results: dict[str, Any] = {}
    for name, value in med.items():
        floor = base_nonce if name == "backend_guard_web_nonce" else base
        results[name] = {
            "median_us": round(value * 1e6, 3),
            "overhead_us": round((value - floor) * 1e6, 3),
            "ratio_to_passthrough": round(value / floor, 3),
        }
    budgets = {
        "no_nonce_overhead_us": max(
            results["backend_guard_api"]["overhead_us"], results["backend_guard_web_no_nonce"]["overhead_us"]
        ),
        "no_nonce_budget_us": 2.0,
        # the middleware's cost for a response that used a nonce (the app made it in both rows) ...
        "nonce_middleware_overhead_us": results["backend_guard_web_nonce"]["overhead_us"],
        # ... and everything a nonce costs over a plain passthrough, making the nonce included
        "nonce_total_overhead_us": round((med["backend_guard_web_nonce"] - base) * 1e6, 3),
        "nonce_budget_us": 4.0,
    }
    budgets["within_budget"] = budgets["no_nonce_overhead_us"] <= 2.0 and budgets["nonce_total_overhead_us"] <= 4.0
    report = {
        "benchmark": "headers",
        "quick": args.quick,
        "rounds": rounds,
        "requests_per_round": n,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "note": "backend_guard_web_nonce's overhead is against passthrough_app_nonce (same app, nonce made in both);"
        " budgets.nonce_total_overhead_us is against the plain passthrough, making the nonce included",
        "results": results,
        "budgets": budgets,
        "secure_package": sec is not None,
    }
    print(f"{'variant':30} {'median µs':>10} {'overhead µs':>12} {'ratio':>7}")
    for name, r in results.items():
        print(f"{name:30} {r['median_us']:>10.3f} {r['overhead_us']:>12.3f} {r['ratio_to_passthrough']:>7.2f}")
    print(json.dumps(budgets))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
