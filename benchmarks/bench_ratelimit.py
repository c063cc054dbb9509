"""Benchmark the rate limiter: the middleware in memory mode, ``limits`` used directly, Redis vs one PING.

1. Memory mode through the ASGI middleware vs a bare ASGI app (the per-request cost of a decision + headers).
2. ``limits`` used directly (``MemoryStorage`` and ``RedisStorage`` with its fixed-window and sliding-window
   limiters, ``hit`` + ``get_window_stats`` for the header numbers) vs our ``RateLimiter.hit`` (which returns
   the header numbers in the same call).
3. One Redis decision (our ``hit``, two limits) vs one Redis ``PING`` on the same server.
4. Round trips per decision, counted from the server's ``INFO commandstats`` (delta of calls of every
   command, minus the INFO calls themselves) for ours and for ``limits``. The server may be shared with other
   clients, so the lowest delta of a few tries is kept.
5. slowapi, when importable (skipped gracefully otherwise).

Interleaved shuffled rounds, medians and ratios (see _harness.py).

Usage::

    python benchmarks/bench_ratelimit.py            # full run
    python benchmarks/bench_ratelimit.py --quick    # smoke run
    REDIS_URL=redis://127.0.0.1:6379/0 python benchmarks/bench_ratelimit.py

Results are printed and written to benchmarks/results/ratelimit.json (and ratelimit.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, save, table

from backend_guard.asgi import RateLimitMiddleware
from backend_guard.ratelimit import RateLimiter, RateLimitRule
from backend_guard.storage import MemoryStore, RedisStore

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
BIG = "1000000000/hour"  # never refuses during a run: every call does the full decision
HEADERS = [(b"host", b"api.example.com"), (b"user-agent", b"bench"), (b"accept", b"application/json")]


async def bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


def asgi_case(app: Any, sink: list[Any]) -> Callable[[], Any]:
    async def send(message: dict[str, Any]) -> None:
        sink.append(message)

    async def call() -> None:
        sink.clear()
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/users/42",
            "headers": HEADERS,
            "client": ("203.0.113.9", 40000),
            "scheme": "http",
            "query_string": b"",
        }
        await app(scope, _receive, send)

    return call


def bench_middleware(rounds: int, calls: int) -> tuple[dict[str, Any], str]:
    sink: list[Any] = []
    limiter = RateLimiter(MemoryStore())
    mw = RateLimitMiddleware(bare_asgi, limiter=limiter, limits=BIG)
    mw_rule = RateLimitMiddleware(
        bare_asgi,
        limiter=RateLimiter(MemoryStore()),
        limits=BIG,
        rules=[RateLimitRule("/users/{id}", BIG)],
    )
    mw_noheaders = RateLimitMiddleware(bare_asgi, limiter=RateLimiter(MemoryStore(), headers=False), limits=BIG)
    cases = {
        "bare ASGI app": asgi_case(bare_asgi, sink),
        "RateLimitMiddleware (memory, 1 limit, headers)": asgi_case(mw, sink),
        "RateLimitMiddleware (memory, 1 limit, no headers)": asgi_case(mw_noheaders, sink),
        "RateLimitMiddleware (memory, global + route rule)": asgi_case(mw_rule, sink),
    }
    import asyncio

    loop = asyncio.new_event_loop()
    loop.run_until_complete(cases["RateLimitMiddleware (memory, 1 limit, headers)"]())
    assert sink[0]["status"] == 200
    assert any(k == b"ratelimit" for k, _ in sink[0]["headers"]), "the middleware did not decide"
    loop.close()
    results = compare(cases, "bare ASGI app", rounds=rounds, calls=calls, is_async=True)
    return {"middleware_memory": results}, table(results, "bare ASGI app", "ASGI middleware, memory store")


def bench_core_memory(rounds: int, calls: int) -> tuple[dict[str, Any], str]:
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

    item = parse(BIG)
    lim_fw = FixedWindowRateLimiter(MemoryStorage())
    lim_sw = SlidingWindowCounterRateLimiter(MemoryStorage())
    ours_fw = RateLimiter(MemoryStore(), strategy="fixed-window")
    ours_sw = RateLimiter(MemoryStore())

    def limits_fw() -> Any:
        lim_fw.hit(item, "bench", "ip")
        return lim_fw.get_window_stats(item, "bench", "ip")

    def limits_sw() -> Any:
        lim_sw.hit(item, "bench", "ip")
        return lim_sw.get_window_stats(item, "bench", "ip")

    cases = {
        "limits fixed-window hit + stats (memory)": limits_fw,
        "limits sliding-window hit + stats (memory)": limits_sw,
        "ours fixed-window hit (memory)": lambda: ours_fw.hit("ip", BIG),
        "ours sliding-window-counter hit (memory)": lambda: ours_sw.hit("ip", BIG),
    }
    assert ours_sw.hit("ip", BIG).allowed
    base = "limits fixed-window hit + stats (memory)"
    results = compare(cases, base, rounds=rounds, calls=calls)
    return {"core_memory": results}, table(results, base, "Core decision, memory: limits vs ours")


def _top_level(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k: int(v["calls"]) for k, v in stats.items()}


def round_trips(client: Any, fn: Callable[[], Any], n: int = 200, tries: int = 3) -> dict[str, float]:
    """Per call of ``fn``: server-side calls (INFO commandstats deltas, lowest of a few tries) of EVALSHA/EVAL/
    PING and of every command (including those run inside scripts), and the round trips counted client-side
    (packed commands sent on redis-py connections; a pipeline is one)."""
    from redis.connection import Connection

    sent = [0]
    original = Connection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        original(self, command, check_health)

    best: dict[str, float] = {}
    for _ in range(tries):
        before = _top_level(client)
        sent[0] = 0
        Connection.send_packed_command = counting  # type: ignore[method-assign]
        try:
            for _ in range(n):
                fn()
        finally:
            Connection.send_packed_command = original  # type: ignore[method-assign]
        trips = sent[0]
        after = _top_level(client)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        delta["cmdstat_info"] = delta.get("cmdstat_info", 0) - 1  # the first INFO is counted by the second
        row = {
            "evalsha+eval": (delta.get("cmdstat_evalsha", 0) + delta.get("cmdstat_eval", 0)) / n,
            "ping": delta.get("cmdstat_ping", 0) / n,
            "all_commands": sum(v for k, v in delta.items() if k != "cmdstat_info") / n,
            "round_trips_client_side": trips / n,
        }
        if not best or row["all_commands"] < best["all_commands"]:
            best = {k: round(v, 3) for k, v in row.items()}
    return best


def bench_redis(rounds: int, calls: int) -> tuple[dict[str, Any], str]:
    import redis
    from limits import parse
    from limits.storage import RedisStorage
    from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

    prefix = f"bgbench:{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL)
    store = RedisStore(REDIS_URL, prefix=prefix)
    ours = RateLimiter(store)
    ours_two = RateLimiter(store, key_prefix="two")
    ours_fw = RateLimiter(store, strategy="fixed-window")
    item = parse(BIG)
    storage = RedisStorage(REDIS_URL, key_prefix=prefix + ":limits")
    lim_fw = FixedWindowRateLimiter(storage)
    lim_sw = SlidingWindowCounterRateLimiter(storage)

    def limits_fw() -> Any:
        lim_fw.hit(item, "bench")
        return lim_fw.get_window_stats(item, "bench")

    def limits_sw() -> Any:
        lim_sw.hit(item, "bench")
        return lim_sw.get_window_stats(item, "bench")

    try:
        cases = {
            "redis PING": client.ping,
            "ours sliding-window-counter hit (1 limit)": lambda: ours.hit("ip", BIG),
            "ours sliding-window-counter hit (2 limits)": lambda: ours_two.hit("ip", BIG, "2000000000/day"),
            "ours fixed-window hit (1 limit)": lambda: ours_fw.hit("ip", BIG),
            "limits fixed-window hit + stats": limits_fw,
            "limits sliding-window hit + stats": limits_sw,
        }
        assert ours.hit("ip", BIG).allowed
        trips = {
            "redis PING": round_trips(client, client.ping),
            "ours sliding-window-counter hit (2 limits)": round_trips(
                client, lambda: ours_two.hit("ip", BIG, "2000000000/day")
            ),
            "ours fixed-window hit (1 limit)": round_trips(client, lambda: ours_fw.hit("ip", BIG)),
            "limits fixed-window hit + stats": round_trips(client, limits_fw),
            "limits sliding-window hit + stats": round_trips(client, limits_sw),
        }
        results = compare(cases, "redis PING", rounds=rounds, calls=calls)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        keys += list(client.scan_iter(match=f"*{prefix}:limits*", count=1000))
        if keys:
            client.delete(*keys)
        store.close()
        client.close()
    md = table(results, "redis PING", "Redis: one decision vs one PING (sync, same connection kind)")
    md += (
        "\n### Per call: INFO commandstats deltas and client-side round trips\n\n"
        "| case | EVALSHA+EVAL | PING | all commands (incl. inside scripts) | round trips |\n"
        "|---|---:|---:|---:|---:|\n"
    )
    md += "".join(
        f"| {k} | {v['evalsha+eval']} | {v['ping']} | {v['all_commands']} | {v['round_trips_client_side']} |\n"
        for k, v in trips.items()
    )
    return {"redis": results, "redis_commands_per_call": trips}, md


def bench_slowapi() -> tuple[dict[str, Any], str]:
    try:
        import slowapi  # noqa: F401
    except ImportError:
        return {"slowapi": "not installed: skipped"}, "\nslowapi: not installed, skipped.\n"
    return {"slowapi": "installed, comparison not implemented"}, "\nslowapi: comparison not implemented.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with few rounds")
    args = parser.parse_args()
    rounds, calls, redis_calls = (3, 300, 100) if args.quick else (15, 3000, 500)
    payload: dict[str, Any] = {"quick": args.quick}
    parts: list[str] = []
    for fn in (bench_middleware, bench_core_memory):
        data, md = fn(rounds, calls)
        payload.update(data)
        parts.append(md)
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except Exception as exc:  # no server: skip that part, say so
        payload["redis"] = f"skipped: {type(exc).__name__}"
        parts.append(f"\nRedis part skipped: {type(exc).__name__}\n")
    else:
        data, md = bench_redis(rounds, redis_calls)
        payload.update(data)
        parts.append(md)
    data, md = bench_slowapi()
    payload.update(data)
    parts.append(md)
    markdown = "\n".join(parts)
    print(markdown)
    print("written:", save("ratelimit", payload, markdown))


if __name__ == "__main__":
    main()
