"""Why a stack costs more behind a real server than in a hot loop: the same calls, warm and cache-cold.

``bench_stack.py`` times the stack back to back on one event loop: every function, dict and code object the
stack touches stays in the CPU's caches and branch predictors from one request to the next. Behind a server,
the server's own work (uvicorn's protocol, h11 or httptools, asyncio's loop, the socket calls) runs between
two requests and evicts them, so the very same instructions take longer. This script runs ``ours`` (``Guard``)
and ``floor`` (bare + our headers as constants, the servers of ``bench_server.py``) on a uvicorn-shaped scope
(plain HTTP, loopback client, wrk's two request headers), first back to back, then with a server's worth of
other Python between two requests: an ``h11`` connection parsing a request and writing an 18-header response
(``--between`` times). CPU time (``time.process_time``), interleaved rounds, medians.

The extra cost of ``ours`` over ``floor`` grows with the work in between although neither the stack nor its
configuration changed: that is the gap between the in-process figure and the real server's (2026-12-06:
9 µs back to back, 20 µs with one h11 exchange between requests, 27 µs with three).

Usage::

    python benchmarks/cold_stack.py              # 9 rounds of 1,000 requests per case
    python benchmarks/cold_stack.py --rounds 3   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server

SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "scheme": "http",
    "method": "GET",
    "root_path": "",
    "path": "/items",
    "raw_path": b"/items",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"origin", b"https://app.example.com")],
}
RAW_REQUEST = b"GET /items HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nOrigin: https://app.example.com\r\n\r\n"
#: As many response headers as ours and the floor send (18), so h11 does the work it does for them.
RESPONSE_HEADERS = [(b"content-length", b"17"), (b"content-type", b"application/json")] * 9


def server_work(times: int) -> None:
    """What a server runs between two requests (none of our code): h11 parses one request, writes one response."""
    import h11

    for _ in range(times):
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(RAW_REQUEST)
        conn.next_event()
        conn.send(h11.Response(status_code=200, headers=RESPONSE_HEADERS))
        conn.send(h11.Data(data=b"x" * 17))
        conn.send(h11.EndOfMessage())


async def requests(app: Any, n: int, between: int) -> float:
    """CPU µs per request of ``n`` requests through ``app``, with ``between`` h11 exchanges after each."""
    message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> Any:
        return message

    async def send(message: Any) -> None:
        return None

    start = time.process_time()
    for _ in range(n):
        scope = dict(SCOPE)
        scope["state"] = {}
        await app(scope, receive, send)
        server_work(between)
    return (time.process_time() - start) / n * 1e6


async def measure(apps: dict[str, Any], rounds: int, n: int, betweens: list[int]) -> dict[int, dict[str, float]]:
    times: dict[tuple[int, str], list[float]] = {(b, v): [] for b in betweens for v in apps}
    for _ in range(rounds):
        for between in betweens:
            for variant, app in apps.items():
                times[between, variant].append(await requests(app, n, between))
    return {b: {v: statistics.median(times[b, v]) for v in apps} for b in betweens}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--between", type=int, nargs="+", default=[0, 1, 3], help="h11 exchanges between requests")
    args = parser.parse_args()
    apps = {variant: bench_server.build_app(variant) for variant in ("floor", "ours")}  # outside the loop: the
    # floor's builder runs ours once on its own event loop to learn its headers
    results = asyncio.run(measure(apps, args.rounds, args.requests, args.between))
    print("| h11 exchanges between requests | floor µs | ours µs | ours - floor µs |")
    print("|---:|---:|---:|---:|")
    for between, r in results.items():
        print(f"| {between} | {r['floor']:.1f} | {r['ours']:.1f} | {r['ours'] - r['floor']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
