"""Instructions per request through ``asgi.Guard`` (or, ``--shell wsgi``, Flask with ``wsgi.Guard``) in-process,
counted by valgrind's callgrind (load-independent).

CPU time on a shared 2-core machine swings with other work; instruction counts do not. For each settings
configuration and each source tree, this script runs itself under ``valgrind --tool=callgrind`` twice, driving
``--low`` and then ``--high`` GET requests through a ``Guard`` around a tiny ASGI app (one event loop, a cross-origin
GET with six request headers, a JSON 200), and reports ``(high run - low run) / (high - low)``: the instructions of
one request, start-up left out. ``PYTHONHASHSEED=0`` in every run.

Configurations: ``default`` (``GuardSettings()``), ``cors``, ``rl`` (a memory rate limit never reached) and
``cors_rl`` (both: ``bench_stack.guard_settings()``'s policy, the one the server benchmarks use); ASGI only,
``proxied``: ``cors_rl`` behind a trusted proxy (the peer is a ``10.0.0.0/8`` address and the client comes in
``X-Forwarded-For``; the app checks it sees the forwarded client).

``--shell wsgi``: the same configurations as ``wsgi.Guard`` around bench_stack.py's Flask app (``flask_app``: one
JSON route; ``cors_rl`` is its ``flask_app("ours")``), driven by its ``wsgi_case`` (the same cross-origin GET as an
environ), beside two cases of no configuration: ``bare`` (the Flask app alone) and ``peer`` (``flask_app("peer")``:
flask-cors + flask-talisman + Flask-Limiter on memory, the same policy). Then the heap is frozen after the warm-up
(``gc.freeze()``: no full collection lands in one run and not another), and the table adds each case's overhead
over ``bare`` and, per tree, ``cors_rl``'s overhead as a multiple of ``peer``'s (issue #24's WSGI stack).

``--tree DIR`` (repeatable) measures another checkout's ``src`` too (e.g. an older commit checked out with
``git worktree add /tmp/old <commit>``), in the same run, so ratios between trees are read side by side: this is
how issue #23's "within 5% of before" was judged (before = 7af614c, the Guard that read other layers' members).

Usage::

    python benchmarks/stack_instructions.py                                   # every configuration, this tree
    python benchmarks/stack_instructions.py --configs default cors_rl --tree /tmp/old
    python benchmarks/stack_instructions.py --drive cors_rl 1000              # the driver alone (no valgrind)
    python benchmarks/stack_instructions.py --shell wsgi --configs bare cors_rl peer --tree /work/main

Needs valgrind; about a minute per configuration and tree. No figure is judged against a threshold here.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))  # bench_stack, beside this file

from _harness import callgrind_instructions  # noqa: E402  (beside this file)

SRC = HERE.parent.parent / "src"
CONFIGS = ("default", "cors", "rl", "cors_rl")
#: ``--shell wsgi``'s cases: Flask alone, the Guard's configurations, the peer extensions.
WSGI_CASES = ("bare", *CONFIGS, "peer")
#: ``--shell asgi``'s: ``proxied`` is ``cors_rl`` behind a trusted proxy (``10.0.0.0/8``): the peer is the proxy and
#: the client comes in ``X-Forwarded-For``, as behind a load balancer.
ASGI_CONFIGS = (*CONFIGS, "proxied")
PROXY, FORWARDED_CLIENT = "10.0.0.5", b"198.51.100.7"


def settings(config: str) -> Any:
    """The ``GuardSettings`` of one configuration (imported here: the tree under test is on ``sys.path``)."""
    from bench_stack import ALLOW_HEADERS, LIMIT, METHODS, ORIGINS  # the server benchmarks' policy

    import backend_guard as bg

    parts: dict[str, Any] = {}
    if "cors" in config:
        parts["cors"] = {"allow_origins": ORIGINS, "allow_methods": METHODS, "allow_headers": ALLOW_HEADERS}
    if config in ("rl", "cors_rl", "proxied"):
        parts["rate_limit"] = {"default_limits": LIMIT}  # never reached: the decision and its headers are measured
    if config == "proxied":
        parts["cors"] = {"allow_origins": ORIGINS, "allow_methods": METHODS, "allow_headers": ALLOW_HEADERS}
        parts["trusted_proxies"] = ["10.0.0.0/8"]
    return bg.GuardSettings(**parts)


def drive(config: str, n: int) -> None:
    """Send ``n`` requests (after 20 to warm up) through a Guard built from ``config``; check every answer."""
    from bench_stack import asgi_scope  # a cross-origin GET over https with six request headers

    from backend_guard.asgi import Guard

    statuses: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if config == "proxied" and scope["client"][0] != FORWARDED_CLIENT.decode():
            raise SystemExit(f"proxied: the app saw the client {scope['client']}")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"items":[1,2,3]}'})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run(guard: Any, count: int) -> None:
        for _ in range(count):
            scope = asgi_scope()
            if config == "proxied":
                scope["client"] = (PROXY, 40000)
                scope["headers"] = [*scope["headers"], (b"x-forwarded-for", FORWARDED_CLIENT)]
            await guard(scope, receive, send)

    guard = Guard(app, settings=settings(config))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(guard, 20))
    loop.run_until_complete(run(guard, n))
    loop.close()
    if statuses != [200] * (n + 20):
        raise SystemExit(f"{config}: unexpected statuses {sorted(set(statuses))}")


def flask_case(case: str) -> Any:
    """The Flask app of one ``--shell wsgi`` case (bench_stack.py's builders)."""
    from bench_stack import flask_app

    from backend_guard.wsgi import Guard

    if case in ("bare", "peer"):
        return flask_app(case)
    if case == "cors_rl":
        return flask_app("ours")  # bench_stack.guard_settings(): the server benchmarks' Guard
    app = flask_app("bare")
    app.wsgi_app = Guard(app.wsgi_app, settings(case))
    return app


def drive_wsgi(case: str, n: int) -> None:
    """Send ``n`` requests (after 20 to warm up, then the heap frozen) through one Flask case; check every answer."""
    from bench_stack import BODY, wsgi_case

    sink: list[Any] = ["", [], b""]
    call = wsgi_case(flask_case(case), sink)
    for _ in range(20):
        call()
    gc.freeze()
    bad = 0
    for _ in range(n):
        call()
        bad += not sink[0].startswith("200") or sink[2] != BODY
    if bad:
        raise SystemExit(f"{case}: {bad} answers were not a 200 with the body (last: {sink[0]})")


def count(src: Path, shell: str, config: str, n: int, out: Path) -> int:
    """The instructions callgrind counts for one run of the driver with ``src`` first on the path."""
    return callgrind_instructions([str(HERE), "--shell", shell, "--drive", config, str(n)], src, out)


def wsgi_summary(rows: dict[str, list[int]], trees: list[tuple[str, Path]]) -> None:
    """Per tree: each case's overhead over ``bare``, and ``cors_rl``'s as a multiple of ``peer``'s."""
    if "bare" not in rows:
        return
    print(f"\n| overhead over bare | {' | '.join(name for name, _ in trees)} |")
    print(f"|---|{'---:|' * len(trees)}")
    for case, row in rows.items():
        if case != "bare":
            print(f"| {case} | {' | '.join(f'{v - b:+,}' for v, b in zip(row, rows['bare'], strict=True))} |")
    if "cors_rl" in rows and "peer" in rows:
        ratios = [
            f"{(o - b) / (p - b):.3f}x" for o, p, b in zip(rows["cors_rl"], rows["peer"], rows["bare"], strict=True)
        ]
        print(f"| cors_rl / peer | {' | '.join(ratios)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shell", choices=("asgi", "wsgi"), default="asgi")
    parser.add_argument(
        "--configs", nargs="+", choices=(*WSGI_CASES, "proxied"), help="default: every one of the shell's"
    )
    parser.add_argument("--tree", action="append", default=[], help="another checkout to measure (its src/)")
    parser.add_argument("--low", type=int, default=200)
    parser.add_argument("--high", type=int, default=2200)
    parser.add_argument("--drive", nargs=2, metavar=("CONFIG", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        (drive_wsgi if args.shell == "wsgi" else drive)(args.drive[0], int(args.drive[1]))
        return
    cases = WSGI_CASES if args.shell == "wsgi" else ASGI_CONFIGS
    configs = args.configs or list(cases)
    if not set(configs) <= set(cases):
        parser.error(f"--shell {args.shell} measures {', '.join(cases)}")
    trees = [("this tree", SRC)] + [(tree, Path(tree).resolve() / "src") for tree in args.tree]
    print(f"| configuration | {' | '.join(name for name, _ in trees)} |")
    print(f"|---|{'---:|' * len(trees)}")
    rows: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            row = rows[config] = []
            for i, (_, src) in enumerate(trees):
                low = count(src, args.shell, config, args.low, Path(tmp) / f"{i}-{config}-low.out")
                high = count(src, args.shell, config, args.high, Path(tmp) / f"{i}-{config}-high.out")
                row.append((high - low) // (args.high - args.low))
            # beside another tree's count: this tree's count as a multiple of it
            ratios = [f"{row[0]:,}"] + [f"{value:,} (this tree {row[0] / value:.3f}x)" for value in row[1:]]
            print(f"| {config} | {' | '.join(ratios)} |", flush=True)
    if args.shell == "wsgi":
        wsgi_summary(rows, trees)


if __name__ == "__main__":
    main()
