"""Benchmark import time: ``import backend_guard`` and each part's module against the peers', in fresh interpreters.

Each measurement is one fresh ``python -c`` child that times ``importlib.import_module(name)`` with
``time.perf_counter`` around it (interpreter start-up excluded, every import the module pulls in included) and
then reports which heavy dependencies ended up in ``sys.modules``. Rounds are interleaved: in each round every
module runs once, in a shuffled order; we report the best of the rounds per module (start-up noise on a loaded
machine only ever adds time) and the median for context.

Measured: ``backend_guard``, each part's module (``backend_guard.passwords``, ``.tokens``, ``.lockout``,
``.ratelimit``, ``.headers``, ``.cors``, ``.errors``, ``.csrf``, ``.hosts``, ``.clientip``, ``.storage``,
``.events``, ``.config``, ``.operate``, ``.asgi``, ``.wsgi``, ``.fastapi``, ``.flask``, ``.django``) and, in the
same run, ``starlette.applications``, ``fastapi``, ``flask``, ``pwdlib``,
``slowapi`` and ``flask_limiter``.

Targets (issue #24):

- ``import backend_guard`` <= 0.5x ``import starlette.applications`` (best of N, same run);
- every part's module imports only what that part needs: no pydantic, PyJWT (``jwt``), cryptography, argon2,
  limits or redis until a part that needs it is imported. May load: ``passwords`` -> argon2, ``tokens`` -> jwt
  and cryptography, ``config`` and ``operate`` (settings) -> pydantic, ``fastapi`` -> pydantic (FastAPI itself
  imports it); nothing else may load any of them at import time.

Also written: ``python -X importtime -c "import <module>"``'s top entries by cumulative time (each entry the
best of the rounds) for ``backend_guard``, ``.asgi``, ``.fastapi``, ``.flask``, ``.django`` and ``.config``.

Usage::

    python benchmarks/bench_imports.py           # full run: best of 9 rounds
    python benchmarks/bench_imports.py --quick   # smoke run: one round, no untimed first import

Results are printed and written to benchmarks/results/imports.json (and imports.md); ``--quick`` writes
imports-quick.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import save

OURS = "backend_guard"
PARTS = [
    f"{OURS}.{part}"
    for part in (
        "passwords",
        "tokens",
        "lockout",
        "ratelimit",
        "headers",
        "cors",
        "errors",
        "csrf",
        "hosts",
        "clientip",
        "storage",
        "events",
        "config",
        "operate",
        "asgi",
        "wsgi",
        "fastapi",
        "flask",
        "django",
    )
]
REFERENCE = "starlette.applications"
PEERS = [REFERENCE, "fastapi", "flask", "pwdlib", "slowapi", "flask_limiter"]
#: The heavy dependencies watched (import names): pydantic, PyJWT, cryptography, argon2-cffi, limits, redis-py.
HEAVY = ("pydantic", "jwt", "cryptography", "argon2", "limits", "redis")
#: What each of our modules may import among HEAVY: what its part needs (FastAPI imports pydantic itself).
NEEDS: dict[str, tuple[str, ...]] = {
    f"{OURS}.passwords": ("argon2",),
    f"{OURS}.tokens": ("jwt", "cryptography"),
    f"{OURS}.config": ("pydantic",),
    f"{OURS}.operate": ("pydantic",),
    f"{OURS}.fastapi": ("pydantic",),
}
#: The modules whose ``-X importtime`` top entries are written.
IMPORTTIME = [OURS, f"{OURS}.asgi", f"{OURS}.fastapi", f"{OURS}.flask", f"{OURS}.django", f"{OURS}.config"]
TARGET_RATIO = 0.5
#: A child: time the import alone, then say which heavy modules it loaded.
CHILD = """
import importlib, json, sys, time
name, heavy = sys.argv[1], sys.argv[2].split(",")
start = time.perf_counter()
importlib.import_module(name)
ms = (time.perf_counter() - start) * 1e3
print(json.dumps({"ms": ms, "loaded": [h for h in heavy if h in sys.modules], "modules": len(sys.modules)}))
"""


def child_env() -> dict[str, str]:
    """The children's environment, with bytecode caches allowed (CI sets PYTHONDONTWRITEBYTECODE; a deployed
    app has its caches, and the untimed first import of each module writes them)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_import(name: str, env: dict[str, str]) -> dict[str, Any]:
    """One fresh interpreter importing ``name``: {ms, loaded, modules}."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, name, ",".join(HEAVY)], capture_output=True, text=True, env=env, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"import {name} failed: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def measure(modules: list[str], rounds: int, *, warmup: bool = True, seed: int = 1234) -> dict[str, dict[str, Any]]:
    """Interleaved shuffled rounds of fresh imports: per module best and median ms, and what it loaded."""
    env = child_env()
    rng = random.Random(seed)
    samples: dict[str, list[dict[str, Any]]] = {m: [] for m in modules}
    for m in modules if warmup else ():  # one untimed import each: bytecode caches written, files in the page cache
        time_import(m, env)
    for _ in range(rounds):
        order = modules[:]
        rng.shuffle(order)
        for m in order:
            samples[m].append(time_import(m, env))
    out: dict[str, dict[str, Any]] = {}
    for m, runs in samples.items():
        times = [r["ms"] for r in runs]
        out[m] = {
            "best_ms": round(min(times), 2),
            "median_ms": round(statistics.median(times), 2),
            "samples_ms": [round(t, 2) for t in times],
            "loaded": runs[0]["loaded"],
            "modules": runs[0]["modules"],
        }
    return out


def _importtime_run(name: str) -> dict[str, tuple[int, int]]:
    """One ``python -X importtime -c "import name"``: {module: (self µs, cumulative µs)}, start-up left out."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {name}"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    rows: dict[str, tuple[int, int]] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, module = line[len("import time:") :].split("|", 2)
        if module.strip() == "site" and not module.startswith("  "):
            rows = {}  # everything so far was the interpreter's start-up, not the import measured
            continue
        rows[module.strip()] = (int(self_us), int(cumulative_us))
    return rows


def importtime_top(name: str, runs: int, top: int = 10) -> list[dict[str, Any]]:
    """``python -X importtime -c "import name"`` ``runs`` times: the ``top`` entries by cumulative µs, each
    entry's figures the smallest of the runs (load on the machine only ever adds time)."""
    samples = [_importtime_run(name) for _ in range(runs)]
    rows = [
        {
            "module": module,
            "self_us": min(s[module][0] for s in samples if module in s),
            "cumulative_us": min(s[module][1] for s in samples if module in s),
        }
        for module in samples[0]
    ]
    rows.sort(key=lambda r: -r["cumulative_us"])
    return rows[:top]


def parts_check(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per module of ours: the heavy modules it loaded beyond what its part needs, and whether none were."""
    out = {}
    for m in [OURS, *PARTS]:
        extra = [h for h in results[m]["loaded"] if h not in NEEDS.get(m, ())]
        out[m] = {"loaded": results[m]["loaded"], "allowed": list(NEEDS.get(m, ())), "extra": extra, "met": not extra}
    return out


def report(
    results: dict[str, dict[str, Any]], rounds: int, targets: dict[str, Any], tops: dict[str, list[dict[str, Any]]]
) -> str:
    parts = targets["parts"]
    lines = [
        "## Import time: fresh interpreters",
        "",
        f"Each figure: `importlib.import_module(name)` timed inside a fresh `python -c` child (start-up excluded);"
        f" best (and median) of {rounds} interleaved shuffled rounds.",
        "",
        f"| module | best ms | median ms | / {REFERENCE} | heavy modules loaded | only what it needs |",
        "|---|---:|---:|---:|---|:---:|",
    ]
    ref = results[REFERENCE]["best_ms"]
    for m, r in results.items():
        loaded = ", ".join(r["loaded"]) or "-"
        met = "" if m not in parts else ("yes" if parts[m]["met"] else f"**no** ({', '.join(parts[m]['extra'])})")
        lines.append(
            f"| {m} | {r['best_ms']:.1f} | {r['median_ms']:.1f} | {r['best_ms'] / ref:.2f}x | {loaded} | {met} |"
        )
    ratio = targets["ours_over_starlette"]
    unmet = [m for m, p in parts.items() if not p["met"]]
    lines += [
        "",
        f"Target: `import {OURS}` <= {TARGET_RATIO}x `import {REFERENCE}`: {ratio:.3f}x,"
        f" {'met' if targets['met']['ratio'] else 'NOT met'}.",
        f"Target: no heavy module ({', '.join(HEAVY)}) beyond the part's needs:"
        f" {'met for every module' if not unmet else 'NOT met for ' + ', '.join(unmet)}.",
    ]
    for name, top in tops.items():
        lines += [
            "",
            f'`python -X importtime -c "import {name}"`, top entries by cumulative time (best of {rounds} runs):',
            "",
            "| module | self µs | cumulative µs |",
            "|---|---:|---:|",
            *(f"| {r['module']} | {r['self_us']} | {r['cumulative_us']} |" for r in top),
        ]
    return "\n".join([*lines, ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run: one round")
    parser.add_argument("--rounds", type=int, help="rounds (default 9, quick 1)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 9)
    modules = [OURS, *PARTS, *PEERS]
    results = measure(modules, rounds, warmup=not args.quick)  # a smoke run's figures are not read
    ratio = round(results[OURS]["best_ms"] / results[REFERENCE]["best_ms"], 3)
    parts = parts_check(results)
    targets = {
        "ours_ms": results[OURS]["best_ms"],
        "starlette_ms": results[REFERENCE]["best_ms"],
        "ours_over_starlette": ratio,
        "target": TARGET_RATIO,
        "parts": parts,
        "met": {"ratio": ratio <= TARGET_RATIO, "parts": all(p["met"] for p in parts.values())},
    }
    tops = {name: importtime_top(name, rounds) for name in IMPORTTIME}
    text = report(results, rounds, targets, tops)
    print(text)
    payload = {
        "benchmark": "imports",
        "quick": args.quick,
        "rounds": rounds,
        "heavy": list(HEAVY),
        "results": results,
        "targets": targets,
        "importtime_top": tops,
    }
    print("written:", save("imports-quick" if args.quick else "imports", payload, text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
