"""Per-request cost of SecureHeadersMiddleware (ASGI), beside a pure-ASGI passthrough and the `secure` package.

Each variant wraps the same tiny ASGI app (one ``http.response.start`` with a few headers, one body) and is
called directly on one event loop (no server, no network), so the numbers are the middleware's own cost.
Rounds are interleaved in a shuffled order (``_harness.compare``) and medians reported, with the overhead over
the passthrough in µs and the ratio to it. The nonce generators are compared too (144 bits each).
Budgets: <= 2 µs a request without a nonce, <= 4 µs with one.

    python benchmarks/bench_headers.py            # full run
    python benchmarks/bench_headers.py --quick    # a few seconds
Writes benchmarks/results/headers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, table

from backend_guard.asgi._headers import SecureHeadersMiddleware
from backend_guard.headers import SecureHeaders, _new_nonce, csp_nonce

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


def _case(app: App) -> Callable[[], Awaitable[None]]:
    """One request (a fresh scope and state each, as a server gives)."""
    template = SCOPE

    async def call() -> None:
        scope = dict(template)
        scope["state"] = {}
        await app(scope, _receive, _send)

    return call


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

    timed = compare(
        {name: _case(app) for name, app in variants.items()}, "asgi_passthrough", rounds=rounds, calls=n, is_async=True
    )
    # backend_guard_web_nonce against the passthrough whose app made a nonce too: the same round, the same app
    nonce_mw = compare(
        {
            "passthrough_app_nonce": _case(variants["passthrough_app_nonce"]),
            "backend_guard_web_nonce": _case(variants["backend_guard_web_nonce"]),
        },
        "passthrough_app_nonce",
        rounds=rounds,
        calls=n,
        is_async=True,
        seed=99,
    )["backend_guard_web_nonce"]
    results: dict[str, Any] = {}
    for name, r in timed.items():
        results[name] = {"median_us": r.median_us, "overhead_us": r.overhead_us, "ratio_to_passthrough": r.ratio}
    results["backend_guard_web_nonce"]["overhead_vs_app_nonce_us"] = nonce_mw.overhead_us
    nonce_gen = compare(
        {
            "secrets.token_urlsafe(18)": lambda: secrets.token_urlsafe(18),
            "base64.b64encode(os.urandom(18))": lambda: base64.b64encode(os.urandom(18)).decode(),
            "ours: b2a_base64(urandom(18)) + translate": _new_nonce,
        },
        "secrets.token_urlsafe(18)",
        rounds=rounds,
        calls=n,
    )
    budgets = {
        "no_nonce_overhead_us": max(
            results["backend_guard_api"]["overhead_us"], results["backend_guard_web_no_nonce"]["overhead_us"]
        ),
        "no_nonce_budget_us": 2.0,
        # the middleware's cost for a response that used a nonce (the app made it in both rows) ...
        "nonce_middleware_overhead_us": nonce_mw.overhead_us,
        # ... and everything a nonce costs over a plain passthrough, making the nonce included
        "nonce_total_overhead_us": results["backend_guard_web_nonce"]["overhead_us"],
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
        "note": "overheads are medians over interleaved shuffled rounds of (case - asgi_passthrough) (see"
        " _harness.py); budgets.nonce_middleware_overhead_us is against passthrough_app_nonce (same app, nonce made"
        " in both); budgets.nonce_total_overhead_us is against the plain passthrough, making the nonce included",
        "results": results,
        "nonce_generation": nonce_gen,
        "budgets": budgets,
        "secure_package": sec is not None,
    }
    print(f"{'variant':30} {'median µs':>10} {'overhead µs':>12} {'ratio':>7}")
    for name, r in results.items():
        print(f"{name:30} {r['median_us']:>10.3f} {r['overhead_us']:>12.3f} {r['ratio_to_passthrough']:>7.2f}")
    print(table(nonce_gen, "secrets.token_urlsafe(18)", "Nonce generation (144 bits)"))
    print(json.dumps(budgets))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=lambda o: asdict(o)) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
