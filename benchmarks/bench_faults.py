"""How long each part takes to answer while Redis is stopped, stalled or cut (through a real server).

Runs the fault scenarios of tests/test_faults_parts.py (a private redis-server behind a TCP proxy, never the
shared one) several times and records, per fault and route, the status and the time of every answer. The
store's socket timeout is 200 ms: the claim to check is "within the timeout plus 50 ms" for the first call
of an outage, and "fast" (the circuit breaker) for the calls after it.

Usage::

    python benchmarks/bench_faults.py            # 5 repetitions of each scenario
    python benchmarks/bench_faults.py --quick    # 1 repetition

Results are printed and written to benchmarks/results/faults.json (and faults.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from _harness import save

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_faults_parts import SCENARIOS, SOCKET_TIMEOUT, fault_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    repeats = 1 if options.quick else 5
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    statuses: dict[tuple[str, str], set[int]] = defaultdict(set)
    for _ in range(repeats):
        for scenario in SCENARIOS.values():
            with fault_run() as run:
                scenario(run)
                for t in run.timings:
                    key = (t["fault"], t["route"])
                    samples[key].append(t["seconds"] * 1000)
                    statuses[key].add(t["status"])
    rows: list[dict[str, Any]] = []
    for (fault, route), values in sorted(samples.items()):
        rows.append(
            {
                "fault": fault,
                "route": route,
                "statuses": sorted(statuses[(fault, route)]),
                "n": len(values),
                "median_ms": round(statistics.median(values), 2),
                "max_ms": round(max(values), 2),
            }
        )
    budget_ms = SOCKET_TIMEOUT * 1000 + 50
    lines = [
        "### Answers under Redis faults (through uvicorn + Guard)",
        "",
        f"Store socket timeout {SOCKET_TIMEOUT * 1000:.0f} ms; budget claimed: timeout + 50 ms = {budget_ms:.0f} ms.",
        "",
        "| fault | route | statuses | n | median ms | max ms |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['fault']} | {r['route']} | {r['statuses']} | {r['n']} | {r['median_ms']:.1f} | {r['max_ms']:.1f} |"
        )
    over = [r for r in rows if r["max_ms"] > budget_ms and not r["fault"].endswith("recovering")]
    lines += ["", f"Answers over the budget: {len(over)} of {len(rows)} (fault, route) pairs."]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    save(
        "faults",
        {"socket_timeout_ms": SOCKET_TIMEOUT * 1000, "budget_ms": budget_ms, "repeats": repeats, "rows": rows},
        markdown,
    )


if __name__ == "__main__":
    main()
