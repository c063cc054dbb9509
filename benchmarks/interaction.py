"""What code costs inside a framework's request loop against what it costs alone: ``python benchmarks/interaction.py``.

Issue #24 measures the route decorators against their peers in CPU time, and there the ratios part from the
instruction counts (``decorator_instructions.py``, which are additive and steady). This script shows why: on the
machines these figures come from, a request path's CPU time is not the sum of its parts. Each piece runs alone, then
right after a bare Flask request in the same loop; what it adds there is compared with what it costs alone:

- ``ours: WSGI RateLimitMiddleware`` around a trivial WSGI app (the whole decision: key, plan, store, fields);
- ``ours: the memory store's decision`` and ``ours: the RateLimit fields`` (the limiter's pieces);
- ``stdlib filler``: code that is not ours at all (``urlsplit``, ``parse_qsl``, ``formatdate``, ``ip_address``,
  ``json.dumps``, ``isoformat``, ``Template``, ``shorten``), so the effect cannot be blamed on our code.

CPU time (``time.process_time``), the collector frozen and off, rounds interleaved; medians. Needs Flask.
"""

from __future__ import annotations

import argparse
import datetime
import email.utils
import gc
import ipaddress
import json
import statistics
import string
import sys
import textwrap
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_decorators import BIG, flask_ratelimit_cases  # noqa: E402  (beside this file)

from backend_guard.ratelimit import RateLimiter  # noqa: E402
from backend_guard.ratelimit._keys import Charge  # noqa: E402
from backend_guard.ratelimit._rates import parse_limits  # noqa: E402
from backend_guard.storage import MemoryStore  # noqa: E402
from backend_guard.wsgi import RateLimitMiddleware  # noqa: E402

ENVIRON = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/users/42",
    "QUERY_STRING": "",
    "SERVER_NAME": "api.example.com",
    "SERVER_PORT": "80",
    "REMOTE_ADDR": "203.0.113.9",
    "HTTP_HOST": "api.example.com",
    "wsgi.url_scheme": "http",
}


def _trivial_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


def pieces() -> dict[str, Callable[[], Any]]:
    """Each piece, callable with no argument."""
    middleware = RateLimitMiddleware(_trivial_app, limiter=RateLimiter(MemoryStore()), limits=BIG)

    def decision() -> None:
        for _ in middleware(dict(ENVIRON), _start_response):
            pass

    limiter = RateLimiter(MemoryStore())
    rates = tuple(parse_limits([BIG]))
    plan = limiter.cached_plan(("interaction", "k"), lambda: [Charge("203.0.113.9", rates, 1, "GET /users/{id}")])
    assert plan is not None
    reply = limiter.run_plan(plan)

    def store() -> None:
        limiter.run_plan(plan)

    def fields() -> None:
        plan.str_fields(reply)  # type: ignore[arg-type]
        plan.raw_fields(reply)  # type: ignore[arg-type]

    def filler() -> None:
        urllib.parse.urlsplit("https://api.example.com/users/42?x=1&y=2#frag")
        urllib.parse.parse_qsl("a=1&b=2&c=3&d=4")
        email.utils.formatdate(1e9, usegmt=True)
        _ = ipaddress.ip_address("203.0.113.9").is_private
        json.dumps({"a": [1, 2, 3], "b": {"c": "d"}})
        datetime.datetime(2020, 1, 2, 3, 4, 5).isoformat()
        string.Template("$a-$b").substitute(a=1, b=2)
        textwrap.shorten("hello world this is a test of things", 20)

    return {
        "ours: WSGI RateLimitMiddleware": decision,
        "ours: the memory store's decision": store,
        "ours: the RateLimit fields": fields,
        "stdlib filler": filler,
    }


def measure(rounds: int, calls: int) -> dict[str, float]:
    """Median µs per call of the bare Flask route, of each piece alone, of each piece after a bare request, and
    (``added by <piece>``) the median over rounds of what the piece added to that round's bare request."""
    bare = flask_ratelimit_cases()["bare route"]
    runs: dict[str, Callable[[], Any]] = {"bare Flask route": bare}
    for name, piece in pieces().items():
        runs[name] = piece
        runs[f"bare Flask route + {name}"] = (lambda p: lambda: (bare(), p()))(piece)
    for run in runs.values():  # warm-up: every specialisation and cache settled before the collector is frozen
        for _ in range(300):
            run()
    gc.freeze()
    gc.disable()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    try:
        for _ in range(rounds):
            for name, run in runs.items():
                start = time.process_time()
                for _ in range(calls):
                    run()
                samples[name].append((time.process_time() - start) / calls * 1e6)
    finally:
        gc.enable()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name in pieces():  # what a piece adds after a request: the median of each round's own difference
        paired = zip(samples[f"bare Flask route + {name}"], samples["bare Flask route"], strict=True)
        medians[f"added by {name}"] = statistics.median(both - bare for both, bare in paired)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    medians = measure(args.rounds, args.calls)
    bare = medians["bare Flask route"]
    print(f"bare Flask route: {bare:.2f} µs a request (CPU time, median of {args.rounds} rounds)\n")
    print(f"{'piece':38} {'alone µs':>9} {'after a request µs':>19} {'ratio':>6}")
    for name in pieces():
        alone, added = medians[name], medians[f"added by {name}"]
        print(f"{name:38} {alone:9.2f} {added:19.2f} {added / alone:5.1f}x")


if __name__ == "__main__":
    main()
