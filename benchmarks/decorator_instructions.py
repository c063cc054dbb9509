"""Instructions per request of the Starlette and Flask route decorator cases, counted by valgrind's callgrind.

The cases are bench_decorators.py's (``starlette_ratelimit_cases`` and ``starlette_lockout_cases``: the bare route,
slowapi's ``@limit``, our ``RateLimitMiddleware`` and ``@limiter.limit``; the lockout by hand and
``@lock.protect()``; with ``--framework flask`` the ``flask_*_cases``: Flask-Limiter and the WSGI middleware;
with ``--framework django`` the ``django_*_cases``: django-ratelimit and the WSGI middleware).
Each case runs under ``valgrind --tool=callgrind`` twice, ``--low`` and then ``--high`` requests in one process,
and the figure is ``(high run - low run) / (high - low)``: one request, start-up left out (``PYTHONHASHSEED=0``).
The overhead of a case is its figure minus the bare route's; the ratios are the ones bench_decorators.py judges,
in instructions instead of noisy CPU time. A rate limit part also counts the floor case (the bare route with the
decorator's two fields set by hand) and prints the decorator's overhead beyond it over the middleware's.

Usage::

    python benchmarks/decorator_instructions.py                       # both parts, this tree
    python benchmarks/decorator_instructions.py --part lockout --tree /tmp/old
    python benchmarks/decorator_instructions.py --framework flask                # Flask's cases
    python benchmarks/decorator_instructions.py --framework django --low 50 --high 1050
    python benchmarks/decorator_instructions.py --drive starlette ratelimit "bare route" 1000   # the driver alone

Needs valgrind; about half a minute per case and tree.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))  # bench_decorators, beside this file
SRC = HERE.parent.parent / "src"

from _harness import callgrind_instructions  # noqa: E402  (beside this file)
from bench_decorators import FLOOR  # noqa: E402  (beside this file)

#: part: (the decorator's case, the reference case, the peer's case)
PARTS = {
    "starlette": {
        "ratelimit": ("ours: @limiter.limit", "ours: RateLimitMiddleware", "peer: slowapi @limit"),
        "lockout": ("ours: @lock.protect()", "ours: lock.aattempt by hand", None),
    },
    "flask": {
        "ratelimit": ("ours: @limiter.limit", "ours: WSGI RateLimitMiddleware", "peer: Flask-Limiter @limit"),
        "lockout": ("ours: @lock.protect()", "ours: lock.attempt by hand", None),
    },
    "django": {
        "ratelimit": ("ours: @limiter.limit", "ours: WSGI RateLimitMiddleware", "peer: django-ratelimit @ratelimit"),
        "lockout": ("ours: @lock.protect()", "ours: lock.attempt by hand", None),
    },
}


def drive(framework: str, part: str, case: str, n: int) -> None:
    """Send ``n`` requests (after 50 to warm up, then the heap frozen) to one case (each answer was checked
    when the cases were built)."""
    import bench_decorators

    call = getattr(bench_decorators, f"{framework}_{part}_cases")()[case]
    if framework != "starlette":  # a WSGI call (Flask, Django)
        for _ in range(50):
            call()
        gc.freeze()
        for _ in range(n):
            call()
        return

    async def run(count: int) -> None:
        for _ in range(count):
            await call()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(50))
    gc.freeze()  # what start-up made is never traversed again: no full collection lands in one run and not another
    loop.run_until_complete(run(n))
    loop.close()


def count(src: Path, framework: str, part: str, case: str, n: int, out: Path) -> int:
    """The instructions callgrind counts for one run of the driver with ``src`` first on the path."""
    return callgrind_instructions([str(HERE), "--drive", framework, part, case, str(n)], src, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=list(PARTS), default="starlette")
    parser.add_argument("--part", nargs="+", choices=["ratelimit", "lockout"], default=["ratelimit", "lockout"])
    parser.add_argument("--tree", action="append", default=[], help="another checkout to measure (its src/)")
    parser.add_argument("--low", type=int, default=200)
    parser.add_argument("--high", type=int, default=1200)
    parser.add_argument("--drive", nargs=4, metavar=("FRAMEWORK", "PART", "CASE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.drive[0], args.drive[1], args.drive[2], int(args.drive[3]))
        return
    trees = [("this tree", SRC)] + [(tree, Path(tree).resolve() / "src") for tree in args.tree]
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.part:
            decorator, reference, peer = PARTS[args.framework][part]
            floor = [FLOOR] if part == "ratelimit" else []  # the framework's own cost of the two fields
            cases = ["bare route", *floor, reference, decorator] + ([peer] if peer else [])
            for name, src in trees:
                per_call = {}
                for i, case in enumerate(cases):
                    low = count(src, args.framework, part, case, args.low, Path(tmp) / f"{i}-low.out")
                    high = count(src, args.framework, part, case, args.high, Path(tmp) / f"{i}-high.out")
                    per_call[case] = (high - low) // (args.high - args.low)
                bare = per_call["bare route"]
                print(f"\n{args.framework} {part}, {name}: instructions per request (overhead over the bare route)")
                for case, value in per_call.items():
                    print(f"  {case:32} {value:>10,}  {value - bare:>+10,}")
                over = per_call[decorator] - bare
                print(f"  decorator / {reference}: {over / (per_call[reference] - bare):.3f}x", end="")
                if floor:
                    beyond = (per_call[decorator] - per_call[FLOOR]) / (per_call[reference] - bare)
                    print(f"; beyond the floor / {reference}: {beyond:.3f}x", end="")
                if peer:
                    print(f"; / {peer}: {over / (per_call[peer] - bare):.3f}x", end="")
                print(flush=True)


if __name__ == "__main__":
    main()
