"""The benchmark method shared by every benchmark here.

Each case and its baseline run in the same process, in rounds; within a round the cases run in a shuffled
order (A B A B ... with the order drawn anew), each for a fixed number of calls. Per round we keep the time per
call and the ratio to the baseline of that same round; we report medians. Absolute times are printed for
context, but only ratios and differences against a baseline measured side by side are claimed.

Before timing, each case runs once through a ``check`` callable that asserts it really did the work (status,
headers), so a benchmark can never measure a short-circuit.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class CaseResult:
    name: str
    median_us: float
    overhead_us: float  # median over rounds of (case - baseline) per call
    ratio: float  # median over rounds of case / baseline
    rounds: int
    calls_per_round: int
    samples_us: list[float] = field(default_factory=list)


def _time_sync(fn: Callable[[], Any], n: int, clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    for _ in range(n):
        fn()
    return (clock() - start) / n * 1e6


def _time_async(
    loop: asyncio.AbstractEventLoop,
    fn: Callable[[], Awaitable[Any]],
    n: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    async def run() -> float:
        start = clock()
        for _ in range(n):
            await fn()
        return (clock() - start) / n * 1e6

    return loop.run_until_complete(run())


def compare(
    cases: dict[str, Callable[[], Any]],
    baseline: str,
    *,
    rounds: int = 15,
    calls: int = 2000,
    is_async: bool = False,
    seed: int = 1234,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, CaseResult]:
    """Run every case in shuffled interleaved rounds; return per-case medians, overheads and ratios.

    ``clock``: wall time by default; ``time.process_time`` counts only this process's CPU time (steadier on a
    machine other processes load)."""
    rng = random.Random(seed)
    names = list(cases)
    loop = asyncio.new_event_loop() if is_async else None
    per_round: dict[str, list[float]] = {name: [] for name in names}
    try:
        for name in names:  # warm-up
            if loop is not None:
                _time_async(loop, cases[name], max(10, calls // 10), clock)
            else:
                _time_sync(cases[name], max(10, calls // 10), clock)
        for _ in range(rounds):
            order = names[:]
            rng.shuffle(order)
            for name in order:
                if loop is not None:
                    per_round[name].append(_time_async(loop, cases[name], calls, clock))
                else:
                    per_round[name].append(_time_sync(cases[name], calls, clock))
    finally:
        if loop is not None:
            loop.close()
    base = per_round[baseline]
    out: dict[str, CaseResult] = {}
    for name in names:
        samples = per_round[name]
        out[name] = CaseResult(
            name=name,
            median_us=round(statistics.median(samples), 3),
            overhead_us=round(statistics.median(s - b for s, b in zip(samples, base, strict=True)), 3),
            ratio=round(statistics.median(s / b for s, b in zip(samples, base, strict=True)), 3),
            rounds=rounds,
            calls_per_round=calls,
            samples_us=[round(s, 3) for s in samples],
        )
    return out


def environment() -> dict[str, Any]:
    """Where the figures come from."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def table(results: dict[str, CaseResult], baseline: str, title: str) -> str:
    """A markdown table of a comparison."""
    lines = [
        f"### {title}",
        "",
        f"Baseline: `{baseline}`. Median of {next(iter(results.values())).rounds} interleaved rounds.",
        "",
        "| case | µs/call | overhead vs baseline (µs) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for r in results.values():
        lines.append(f"| {r.name} | {r.median_us:.2f} | {r.overhead_us:+.2f} | {r.ratio:.2f}x |")
    return "\n".join(lines) + "\n"


def save(name: str, payload: dict[str, Any], markdown: str | None = None) -> Path:
    """Write ``results/<name>.json`` (and ``.md``); return the JSON path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"

    def default(obj: Any) -> Any:
        if isinstance(obj, CaseResult):
            return asdict(obj)
        raise TypeError(type(obj).__name__)

    path.write_text(json.dumps({"environment": environment(), **payload}, indent=2, default=default) + "\n")
    if markdown is not None:
        (RESULTS / f"{name}.md").write_text(markdown)
    return path


def callgrind_instructions(command: list[str], src: Path, out: Path) -> int:
    """The instructions valgrind's callgrind counts for one run of ``command`` (a Python script and its arguments,
    run with this interpreter) with ``src`` first on the path and ``PYTHONHASHSEED=0``."""
    import re
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0")
    valgrind = ["valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={out}", sys.executable]
    subprocess.run([*valgrind, *command], env=env, check=True, capture_output=True, timeout=1800)
    summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
    if summary is None:
        raise SystemExit(f"no summary line in {out}")
    return int(summary.group(1))
