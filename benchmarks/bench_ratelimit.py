"""Benchmark the rate limiter: the middleware in memory mode, ``limits`` used directly, Redis vs one PING.

1. Memory mode through the ASGI middleware vs a bare ASGI app (the per-request cost of a decision + headers).
2. ``limits`` used directly (``MemoryStorage`` and ``RedisStorage`` with its fixed-window and sliding-window
   limiters, ``hit`` + ``get_window_stats`` for the header numbers) vs our ``RateLimiter.hit`` (which returns
   the header numbers in the same call).
3. One Redis decision (our ``hit``, two limits) vs one Redis ``PING`` on the same server.
4. Round trips per decision, counted from the server's ``INFO commandstats`` (delta of calls of every
   command, minus the INFO calls themselves) for ours and for ``limits``. The server may be shared with other
   clients, so the lowest delta of a few tries is kept.
5. The same Starlette route with slowapi, our middleware and our decorator; the same Flask route with
   Flask-Limiter, our WSGI middleware and our decorator (memory mode, headers on, one limit, in the same run).

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
from backend_guard.storage import MemoryStore, RedisStore, Script

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


def _unused(*args: Any) -> Any:  # the floors only run on Redis
    raise NotImplementedError


def store_call(store: RedisStore) -> Callable[[], Any]:
    """A PING sent the way ``store`` sends its scripts (its own path; redis-py's when the store has none)."""
    store.client  # noqa: B018 - made on first use
    call = store._call  # noqa: SLF001 - the benchmark measures the store's own send path

    def ping() -> Any:
        return call("PING")

    return ping


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

    # The baseline is a PING on our store's own client (same socket timeouts, same retry policy), through
    # redis-py's command path, as an application would send it; a PING on a default redis-py client is listed
    # beside it. Floors: a PING sent the way the store sends its scripts (straight on a pooled connection, no
    # redis-py command machinery: the cost of the round trip itself), then, on that same path, any EVALSHA (an
    # empty script), a script reading the Redis clock and returning four integers, and a script running the very
    # commands of a sliding-window decision (TIME, GET, SET ... PX) with no logic: what a decision must at least
    # cost, to show where its time goes.
    own = store.client
    empty = Script(name="floor-empty", lua="return 1", memory=_unused)
    clock_only = Script(
        name="floor-clock", lua="local t = redis.call('TIME') return {1, tonumber(t[2]), 3, 4}", memory=_unused
    )
    same_commands = Script(
        name="floor-same-commands",
        lua="local t = redis.call('TIME') local v = redis.call('GET', KEYS[1]) "
        "redis.call('SET', KEYS[1], '012345678901234567890123', 'PX', 60000) return {1, tonumber(t[2]), 3, 4}",
        memory=_unused,
    )
    scratch = [f"{prefix}:floor"]
    direct_ping = store_call(store)
    for script in (empty, clock_only, same_commands):
        store.run(script, scratch, [])
    try:
        cases = {
            "redis PING": own.ping,
            "redis PING (default redis-py client)": client.ping,
            "floor: PING on the store's own path": direct_ping,
            "floor: EVALSHA of `return 1`": lambda: store.run(empty, scratch, []),
            "floor: EVALSHA of TIME + 4-integer reply": lambda: store.run(clock_only, scratch, []),
            "floor: EVALSHA of TIME, GET, SET PX (no logic)": lambda: store.run(same_commands, scratch, []),
            "ours sliding-window-counter hit (1 limit)": lambda: ours.hit("ip", BIG),
            "ours sliding-window-counter hit (2 limits)": lambda: ours_two.hit("ip", BIG, "2000000000/day"),
            "ours fixed-window hit (1 limit)": lambda: ours_fw.hit("ip", BIG),
            "limits fixed-window hit + stats": limits_fw,
            "limits sliding-window hit + stats": limits_sw,
        }
        assert ours.hit("ip", BIG).allowed
        trips = {
            "redis PING": round_trips(client, own.ping),
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
    md = table(
        results, "redis PING", "Redis: one decision vs one PING sent through redis-py on the store's client (sync)"
    )
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


def _starlette_app(endpoint: Any, *, middleware: Any = None) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = Starlette(routes=[Route("/users/{id}", endpoint)])
    return middleware(app) if middleware is not None else app


def bench_starlette(rounds: int, calls: int) -> tuple[dict[str, Any], str]:
    """slowapi vs our middleware vs our decorator on the same Starlette route, memory mode, headers on."""
    from slowapi import Limiter, _rate_limit_exceeded_handler
    from slowapi.errors import RateLimitExceeded
    from slowapi.util import get_remote_address
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    async def plain(request: Request) -> JSONResponse:
        return JSONResponse({})

    slow = Limiter(key_func=get_remote_address, storage_uri="memory://", headers_enabled=True)

    @slow.limit(BIG)
    async def with_slowapi(request: Request) -> JSONResponse:
        return JSONResponse({})

    slowapi_app = _starlette_app(with_slowapi)
    slowapi_app.state.limiter = slow
    slowapi_app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)

    ours = RateLimiter(MemoryStore())

    @ours.limit(BIG)
    async def with_decorator(request: Request) -> JSONResponse:
        return JSONResponse({})

    sink: list[Any] = []
    apps = {
        "Starlette app (no limit)": _starlette_app(plain),
        "slowapi @limit (memory)": slowapi_app,
        "ours: RateLimitMiddleware (memory)": _starlette_app(
            plain, middleware=lambda app: RateLimitMiddleware(app, limiter=RateLimiter(MemoryStore()), limits=BIG)
        ),
        "ours: @limiter.limit (memory)": _starlette_app(with_decorator),
    }
    cases = {name: asgi_case(app, sink) for name, app in apps.items()}
    import asyncio

    loop = asyncio.new_event_loop()
    for name in list(apps)[1:]:  # each really decided and said so in its headers
        loop.run_until_complete(cases[name]())
        start = sink[0]
        assert start["status"] == 200, (name, start)
        names = {k.lower() for k, _ in start["headers"]}
        assert names & {b"ratelimit", b"x-ratelimit-remaining"}, (name, names)
    loop.close()
    base = "Starlette app (no limit)"
    results = compare(cases, base, rounds=rounds, calls=calls, is_async=True)
    return {"starlette": results}, table(results, base, "Starlette route, memory store: slowapi vs ours")


def bench_flask(rounds: int, calls: int) -> tuple[dict[str, Any], str]:
    """Flask-Limiter vs our WSGI middleware vs our decorator on the same Flask route, memory mode, headers on."""
    import io

    from flask import Flask
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    from backend_guard.wsgi import RateLimitMiddleware as WSGIRateLimitMiddleware

    def make(name: str) -> Flask:
        app = Flask(name)
        app.logger.disabled = True
        return app

    plain = make("plain")
    plain.add_url_rule("/users/<int:id>", "user", lambda id: {})

    fl_app = make("flask_limiter")
    fl = Limiter(get_remote_address, app=fl_app, storage_uri="memory://", headers_enabled=True)
    fl_app.add_url_rule("/users/<int:id>", "user", fl.limit(BIG)(lambda id: {}))

    mw_app = make("ours_middleware")
    mw_app.add_url_rule("/users/<int:id>", "user", lambda id: {})
    mw_app.wsgi_app = WSGIRateLimitMiddleware(  # type: ignore[method-assign]
        mw_app.wsgi_app, limiter=RateLimiter(MemoryStore()), limits=BIG
    )

    ours = RateLimiter(MemoryStore())
    dec_app = make("ours_decorator")

    @ours.limit(BIG)
    def user(id: int) -> dict[str, Any]:
        return {}

    dec_app.add_url_rule("/users/<int:id>", "user", user)

    base_environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/users/42",
        "QUERY_STRING": "",
        "SERVER_NAME": "api.example.com",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_HOST": "api.example.com",
        "HTTP_ACCEPT": "application/json",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen[:] = [status, headers]

    def wsgi_case(app: Flask) -> Callable[[], Any]:
        def call() -> None:
            environ = dict(base_environ)
            environ["wsgi.input"] = io.BytesIO(b"")
            body = app(environ, start_response)
            for _ in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

        return call

    apps = {
        "Flask app (no limit)": plain,
        "Flask-Limiter @limit (memory)": fl_app,
        "ours: WSGI RateLimitMiddleware (memory)": mw_app,
        "ours: @limiter.limit (memory)": dec_app,
    }
    cases = {name: wsgi_case(app) for name, app in apps.items()}
    for name in list(apps)[1:]:
        cases[name]()
        assert seen[0].startswith("200"), (name, seen)
        names = {k.lower() for k, _ in seen[1]}
        assert names & {"ratelimit", "x-ratelimit-remaining"}, (name, names)
    base = "Flask app (no limit)"
    results = compare(cases, base, rounds=rounds, calls=calls)
    return {"flask": results}, table(results, base, "Flask route, memory store: Flask-Limiter vs ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with few rounds")
    args = parser.parse_args()
    rounds, calls, redis_calls = (3, 300, 100) if args.quick else (15, 3000, 500)
    payload: dict[str, Any] = {"quick": args.quick}
    parts: list[str] = []
    for fn in (bench_middleware, bench_core_memory, bench_starlette, bench_flask):
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
    markdown = "\n".join(parts)
    print(markdown)
    print("written:", save("ratelimit", payload, markdown))


if __name__ == "__main__":
    main()
