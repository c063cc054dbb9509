"""Benchmark backend_guard.PasswordHasher against raw argon2-cffi (and pwdlib when installed).

Measures, at the default parameters (argon2id, m=19456 KiB, t=2, p=1):

1. overhead: hash and verify, ours vs raw ``argon2.PasswordHasher`` with the same parameters, interleaved
   rounds (the order alternates each round), medians and ratios;
2. event-loop lateness: a 1 ms ticker on the same loop while 8 ``averify`` calls run at once (and, for
   contrast, while the same 8 verifications run synchronously on the loop);
3. timing of the failure paths: unknown user (``dummy_verify``), garbage stored hash, wrong password, each
   for an ASCII guess and for a guess that NFKC normalisation changes (the ``fi`` ligature: two verifications
   on every path), with the ratio of the slowest path to the fastest for each guess.

Usage::

    python benchmarks/bench_passwords.py            # full run (about a minute on 2 cores)
    python benchmarks/bench_passwords.py --quick    # smoke run, a few seconds

Results are printed and written to benchmarks/results/passwords.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import platform
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import argon2

from backend_guard.exceptions import InvalidHash
from backend_guard.passwords import DEFAULT_PARAMETERS, PasswordHasher

PASSWORD = "correct horse battery staple"
WRONG = "correct horse battery stapler"
# A wrong guess that NFKC changes ("\ufb01" is the "fi" ligature): tried as normalised and as typed.
WRONG_NFKC = "correct horse battery staple \ufb01"
RESULTS = Path(__file__).resolve().parent / "results" / "passwords.json"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def interleaved(contenders: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median ms of each contender, run in turn every round; the order rotates so drift hits all alike."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        contenders[name]()
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(timed(contenders[name]))
    return {name: round(statistics.median(values), 3) for name, values in samples.items()}


def interleaved_wall_and_cpu(
    contenders: dict[str, Callable[[], object]], rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Like :func:`interleaved`, with the calling thread's CPU time too (medians in ms: wall, CPU).

    At one lane libargon2 works in the calling thread, so its CPU time is the work done, and it is not inflated
    by waiting for a core: on a busy host the wall-clock medians drift by several percent, the CPU ones far less.
    """
    names = list(contenders)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        contenders[name]()
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start_wall, start_cpu = time.perf_counter(), time.thread_time()
            contenders[name]()
            cpu[name].append((time.thread_time() - start_cpu) * 1000.0)
            wall[name].append((time.perf_counter() - start_wall) * 1000.0)

    def medians(samples: dict[str, list[float]]) -> dict[str, float]:
        return {name: round(statistics.median(values), 3) for name, values in samples.items()}

    return medians(wall), medians(cpu)


def pwdlib_contender() -> Any | None:
    try:
        pwdlib = importlib.import_module("pwdlib")
        pwdlib_argon2 = importlib.import_module("pwdlib.hashers.argon2")
    except ImportError:
        return None
    p = DEFAULT_PARAMETERS
    return pwdlib.PasswordHash(
        (pwdlib_argon2.Argon2Hasher(time_cost=p.time_cost, memory_cost=p.memory_cost, parallelism=p.parallelism),)
    )


def bench_overhead(ours: PasswordHasher, rounds: int) -> dict[str, Any]:
    p = DEFAULT_PARAMETERS
    raw = argon2.PasswordHasher(
        time_cost=p.time_cost,
        memory_cost=p.memory_cost,
        parallelism=p.parallelism,
        hash_len=p.hash_len,
        salt_len=p.salt_len,
    )
    ours_hash, raw_hash = ours.hash(PASSWORD), raw.hash(PASSWORD)
    hash_contenders: dict[str, Callable[[], object]] = {
        "backend_guard": lambda: ours.hash(PASSWORD),
        "argon2-cffi": lambda: raw.hash(PASSWORD),
    }
    verify_contenders: dict[str, Callable[[], object]] = {
        "backend_guard": lambda: ours.verify(ours_hash, PASSWORD),
        "argon2-cffi": lambda: raw.verify(raw_hash, PASSWORD),
    }
    pwdlib = pwdlib_contender()
    if pwdlib is not None:
        pwdlib_hash = pwdlib.hash(PASSWORD)
        hash_contenders["pwdlib"] = lambda: pwdlib.hash(PASSWORD)
        verify_contenders["pwdlib"] = lambda: pwdlib.verify(PASSWORD, pwdlib_hash)
    result: dict[str, Any] = {"rounds": rounds, "pwdlib": "measured" if pwdlib is not None else "not installed"}
    for op, contenders in (("hash", hash_contenders), ("verify", verify_contenders)):
        medians = interleaved(contenders, rounds)
        result[op] = {
            "median_ms": medians,
            "ratio_vs_argon2_cffi": {name: round(ms / medians["argon2-cffi"], 4) for name, ms in medians.items()},
        }
    return result


async def _ticker(stop: asyncio.Event, lateness: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        lateness.append((time.perf_counter() - start - 0.001) * 1000.0)


async def _lateness_run(ours: PasswordHasher, stored: str, batches: int, on_loop: bool) -> dict[str, Any]:
    stop = asyncio.Event()
    lateness: list[float] = []
    ticker = asyncio.create_task(_ticker(stop, lateness))
    await asyncio.sleep(0.01)
    lateness.clear()
    for _ in range(batches):
        if on_loop:
            for _ in range(8):
                ours.verify(stored, PASSWORD)  # blocks the loop: the contrast case
            await asyncio.sleep(0)
        else:
            results = await asyncio.gather(*(ours.averify(stored, PASSWORD) for _ in range(8)))
            assert all(results)
    stop.set()
    await ticker
    return {
        "ticks": len(lateness),
        "max_late_ms": round(max(lateness), 3),
        "p99_late_ms": round(statistics.quantiles(lateness, n=100)[98], 3) if len(lateness) >= 100 else None,
        "median_late_ms": round(statistics.median(lateness), 3),
    }


def bench_lateness(ours: PasswordHasher, batches: int) -> dict[str, Any]:
    stored = ours.hash(PASSWORD)
    averify = asyncio.run(_lateness_run(ours, stored, batches, on_loop=False))
    blocking = asyncio.run(_lateness_run(ours, stored, max(1, batches // 4), on_loop=True))
    return {
        "concurrent_calls": 8,
        "batches": batches,
        "pool_threads": ours.max_concurrency,
        "averify": averify,
        "sync_verify_on_loop": blocking,
        "limit_ms": 5.0,
        "within_limit": averify["max_late_ms"] <= 5.0,
    }


def bench_paths(ours: PasswordHasher, rounds: int) -> dict[str, Any]:
    """Unknown user, garbage stored hash and wrong password, for an ASCII guess and an NFKC-changing one."""
    stored = ours.hash(PASSWORD)

    def paths(guess: str) -> dict[str, Callable[[], object]]:
        def garbage() -> None:
            with contextlib.suppress(InvalidHash):
                ours.verify("not-a-hash", guess)

        return {
            "unknown_user": lambda: ours.dummy_verify(guess),
            "garbage_hash": garbage,
            "wrong_password": lambda: ours.verify(stored, guess),
        }

    contenders: dict[str, Callable[[], object]] = {"right_password": lambda: ours.verify(stored, PASSWORD)}
    for kind, guess in (("ascii", WRONG), ("nfkc_changing", WRONG_NFKC)):
        for name, fn in paths(guess).items():
            contenders[f"{kind}/{name}"] = fn
    wall, cpu = interleaved_wall_and_cpu(contenders, rounds)  # all seven interleaved: drift hits every path alike
    result: dict[str, Any] = {"rounds": rounds, "right_password_ms": wall["right_password"], "limit_pct": 1.0}
    for kind, guess in (("ascii", WRONG), ("nfkc_changing", WRONG_NFKC)):
        entry: dict[str, Any] = {"guess_is_nfkc_stable": unicodedata.normalize("NFKC", guess) == guess}
        for clock, medians in (("wall", wall), ("cpu", cpu)):
            of_kind = {name: medians[f"{kind}/{name}"] for name in paths(guess)}
            ratio = max(of_kind.values()) / min(of_kind.values())
            entry[clock] = {
                "median_ms": of_kind,
                "max_over_min": round(ratio, 4),
                "spread_pct": round((ratio - 1.0) * 100.0, 2),
                "within_limit": ratio - 1.0 <= 0.01,
            }
        result[kind] = entry
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run: a few rounds, a few seconds")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    rounds, batches = (8, 3) if args.quick else (60, 20)

    ours = PasswordHasher()
    report: dict[str, Any] = {
        "benchmark": "passwords",
        "quick": args.quick,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
        "argon2_cffi": _version("argon2-cffi"),
        "parameters": {
            "type": "argon2id",
            "memory_cost_kib": DEFAULT_PARAMETERS.memory_cost,
            "time_cost": DEFAULT_PARAMETERS.time_cost,
            "parallelism": DEFAULT_PARAMETERS.parallelism,
        },
    }
    report["overhead"] = bench_overhead(ours, rounds)
    report["event_loop"] = bench_lateness(ours, batches)
    report["failure_paths"] = bench_paths(ours, rounds)
    report["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    ours.close()

    _print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {args.output}")
    return 0


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _print(report: dict[str, Any]) -> None:
    p = report["parameters"]
    print(
        f"argon2id m={p['memory_cost_kib']} KiB t={p['time_cost']} p={p['parallelism']}, {report['cpus']} CPUs, "
        f"load average {report['load_avg_1m_before']} -> {report['load_avg_1m_after']} (other work skews timings)"
    )
    over = report["overhead"]
    print(f"\n[overhead] {over['rounds']} interleaved rounds, medians (pwdlib: {over['pwdlib']})")
    for op in ("hash", "verify"):
        for name, ms in over[op]["median_ms"].items():
            ratio = over[op]["ratio_vs_argon2_cffi"][name]
            print(f"  {op:6} {name:14} {ms:8.2f} ms  x{ratio:.4f}")
    loop = report["event_loop"]
    print(f"\n[event loop] 1 ms ticker, 8 concurrent calls x {loop['batches']} batches, {loop['pool_threads']} threads")
    for name in ("averify", "sync_verify_on_loop"):
        r = loop[name]
        print(
            f"  {name:20} ticks={r['ticks']:5}  max late {r['max_late_ms']:8.2f} ms  "
            f"p99 {r['p99_late_ms']} ms  median {r['median_late_ms']} ms"
        )
    print(f"  averify within {loop['limit_ms']} ms: {loop['within_limit']}")
    paths = report["failure_paths"]
    print(
        f"\n[failure paths] {paths['rounds']} interleaved rounds, medians "
        f"(right password {paths['right_password_ms']} ms)"
    )
    for kind in ("ascii", "nfkc_changing"):
        for clock in ("wall", "cpu"):
            r = paths[kind][clock]
            cells = "  ".join(f"{name} {ms:.2f} ms" for name, ms in r["median_ms"].items())
            print(
                f"  {kind:14} {clock:4} {cells}  max/min x{r['max_over_min']:.4f} "
                f"(limit {paths['limit_pct']}%: {r['within_limit']})"
            )


if __name__ == "__main__":
    raise SystemExit(main())
