"""Run every benchmark in one go and collect the figures: ``python benchmarks/run.py``.

Runs each ``benchmarks/bench_*.py`` in its own subprocess, one after the other (never two at once: they would
skew each other), then gathers the JSON they wrote into ``results/summary.json`` and ``results/summary.md``
(the headline figures against their targets first, then every benchmark's own tables) and draws
``docs/img/benchmarks.png`` when matplotlib is installed.

``--quick`` is the smoke mode CI runs (about half a minute): every script with ``--quick``, in a scratch copy
of this folder (a temporary directory, or ``--out DIR``), so a smoke run never overwrites the committed figures
of a full run. Only a full run writes ``benchmarks/results/`` and the docs plot.

The Redis figures come from private ``redis-server``s that this script starts on a free loopback port and stops
after (``--redis private``, the default when ``redis-server`` is installed and ``REDIS_URL`` is not set): a fresh
server for each benchmark that uses Redis, holding nothing but what that benchmark loads (the benchmarks run
before it on a shared server made the lockout's script calls slower: 1.36x a PING in a full run against 1.20x
alone, 2026-12-07). A shared
server that has run the test suite holds hundreds of cached Lua scripts (one per lockout policy the tests
drew), and Redis's Lua garbage collector then costs every script call microseconds that no production server
pays. ``--redis shared`` uses ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) instead.

A script that needs Redis is skipped when none answers, and ``bench_server.py`` when ``wrk`` is not installed;
``BACKEND_GUARD_REQUIRE_REDIS=1`` / ``BACKEND_GUARD_REQUIRE_WRK=1`` turn those skips into failures. The exit
status is 1 when any script failed.

Usage::

    python benchmarks/run.py                        # full run, about 10 minutes on 2 cores
    python benchmarks/run.py --quick                # smoke run into a temporary directory
    python benchmarks/run.py --quick --out /tmp/b   # smoke run into /tmp/b (results in /tmp/b/results)
    python benchmarks/run.py --only stack server    # some benchmarks only (names without bench_)
    python benchmarks/run.py --redis shared         # Redis figures on REDIS_URL, not a private server
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLOT = ROOT / "docs" / "img" / "benchmarks.png"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
NEEDS_WRK = {"server"}
#: Arguments a script always gets here: the server benchmark runs its ``floor`` server too (bare plus our
#: response headers as constants), the figure its target has to be read against, on every server setup
#: (uvicorn h11, uvicorn[standard] httptools when installed, waitress + Flask).
EXTRA_ARGS: dict[str, tuple[str, ...]] = {"server": ("--floor", "--all-servers")}
NEEDS_REDIS_MARKERS = ("RedisStore", "REDIS_URL")


def scripts(only: list[str] | None) -> dict[str, Path]:
    """The benchmark scripts by short name (``bench_stack.py`` -> ``stack``), in a stable order."""
    found = {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}
    if only:
        unknown = sorted(set(only) - set(found))
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {unknown}; known: {sorted(found)}")
        return {name: found[name] for name in only}
    return found


@contextlib.contextmanager
def private_redis() -> Iterator[str | None]:
    """A fresh ``redis-server`` on a free loopback port for the run, stopped after it (its URL; None when
    ``redis-server`` is not installed or did not answer, and the shared one is used)."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.05)
        else:
            yield None
            return
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def redis_problem() -> str | None:
    """Why the shared Redis cannot be used, or None when it answers."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed"
    try:
        client = redis.Redis.from_url(redis_url(), socket_timeout=1, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"no Redis answers at {redis_url()} ({type(exc).__name__})"
    return None


def redis_url() -> str:
    """The Redis the benchmarks use: the private server's while one runs, else ``REDIS_URL``."""
    return os.environ.get("REDIS_URL", REDIS_URL)


def skip_reason(name: str, path: Path, redis_issue: str | None) -> tuple[str | None, bool]:
    """(reason to skip, whether the skip must count as a failure)."""
    if name in NEEDS_WRK and not (os.environ.get("WRK") or shutil.which("wrk")):
        return "wrk is not installed (apt-get install wrk)", os.environ.get("BACKEND_GUARD_REQUIRE_WRK") == "1"
    if redis_issue and any(marker in path.read_text() for marker in NEEDS_REDIS_MARKERS):
        return redis_issue, os.environ.get("BACKEND_GUARD_REQUIRE_REDIS") == "1"
    return None, False


def snapshot(folder: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in folder.glob("*")} if folder.is_dir() else {}


def run_all(
    selected: dict[str, Path], workdir: Path, quick: bool, timeout: float | None, fresh_redis: bool = False
) -> dict[str, Any]:
    """Run each script from ``workdir``; return per benchmark its status, time and the files it wrote.

    ``fresh_redis``: each script that uses Redis gets a fresh private ``redis-server`` of its own, so no script's
    figures depend on the scripts the server ran before (their cached Lua scripts and Lua heap slow every later
    script call: see the module's docstring)."""
    results_dir = workdir / "results"
    redis_issue = redis_problem()
    env = dict(os.environ)
    # the scripts may import the repository's tests (bench_faults does), wherever they are copied to
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    report: dict[str, Any] = {}
    for name, original in selected.items():
        reason, fatal = skip_reason(name, original, redis_issue)
        if reason:
            status = "failed" if fatal else "skipped"
            print(f"--- {name}: {status}: {reason}", flush=True)
            report[name] = {"status": status, "reason": reason, "files": []}
            continue
        script = workdir / original.name
        cmd = [sys.executable, str(script), *(["--quick"] if quick else []), *EXTRA_ARGS.get(name, ())]
        print(f"--- {name}: {' '.join(cmd[1:])}", flush=True)
        before = snapshot(results_dir)
        start = time.perf_counter()
        needs_redis = any(marker in original.read_text() for marker in NEEDS_REDIS_MARKERS)
        try:
            with private_redis() if fresh_redis and needs_redis else contextlib.nullcontext(None) as url:
                own_env = {**env, "REDIS_URL": url} if url is not None else env
                proc = subprocess.run(cmd, cwd=workdir, env=own_env, timeout=timeout, capture_output=True, text=True)
            code: int | None = proc.returncode
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            code = None
            output = f"timed out after {timeout} s\n" + _text(exc.stdout) + _text(exc.stderr)
        seconds = round(time.perf_counter() - start, 1)
        after = snapshot(results_dir)
        # a script names its files after itself (stack.json, errors-quick.md); others may write meanwhile
        files = sorted(
            f for f, mtime in after.items() if before.get(f) != mtime and f.split(".")[0].split("-")[0] == name
        )
        entry: dict[str, Any] = {"status": "ok" if code == 0 else "failed", "seconds": seconds, "files": files}
        if code != 0:
            entry["reason"] = f"exit status {code}" if code is not None else f"timed out after {timeout} s"
            entry["output_tail"] = output[-3000:]
            print(output[-3000:], file=sys.stderr)
        print(f"    {entry['status']} in {seconds} s, wrote {files}", flush=True)
        report[name] = entry
    return report


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


# --------------------------------------------------------------------------------------------- summary


def load(results_dir: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """The JSON files a benchmark wrote, by file name."""
    out: dict[str, Any] = {}
    for f in entry.get("files", []):
        if f.endswith(".json"):
            try:
                out[f] = json.loads((results_dir / f).read_text())
            except (OSError, ValueError) as exc:
                out[f] = {"unreadable": str(exc)}
    return out


def first(data: dict[str, Any], *names: str) -> dict[str, Any] | None:
    for name in names:
        if name in data and isinstance(data[name], dict):
            return data[name]  # type: ignore[no-any-return]
    return None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _at_most(value: Any, limit: float) -> bool | None:
    return None if value is None else bool(value <= limit)


def _at_least(value: Any, limit: float) -> bool | None:
    return None if value is None else bool(value >= limit)


def headline(data: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The claimed figures against their targets, from whatever results exist (each read defensively)."""
    rows: list[dict[str, Any]] = []

    def row(figure: str, value: Any, target: str, met: Any, unit: str = "") -> None:
        if value is not None:
            rows.append({"figure": figure, "measured": value, "unit": unit, "target": target, "met": met})

    stack = first(data.get("stack", {}), "stack.json", "stack-quick.json")
    if stack:
        t = stack.get("targets", {})
        met = t.get("met", {})
        row(
            "ASGI: our full stack, overhead over bare Starlette",
            t.get("asgi_guard_overhead_us"),
            "<= 15 µs",
            met.get("asgi_overhead"),
            "µs",
        )
        row(
            "ASGI: peer stack (Starlette CORS + secure + slowapi), overhead",
            t.get("asgi_peer_overhead_us"),
            "",
            None,
            "µs",
        )
        row("ASGI: our overhead / peer stack's", t.get("asgi_ours_over_peer"), "<= 0.25x", met.get("asgi_ratio"), "x")
        row(
            "WSGI: our overhead / Flask peer stack's",
            t.get("wsgi_ours_over_peer"),
            "<= 0.25x",
            met.get("wsgi_ratio"),
            "x",
        )
    server = first(data.get("server", {}), "server.json", "server-quick.json")
    if server:
        t = server.get("targets", {})
        row(
            "uvicorn + wrk: our requests/s / bare Starlette's",
            t.get("ours_rps_ratio_to_bare"),
            "(old target, replaced by the floor's)",
            None,
            "x",
        )
        row(
            "uvicorn + wrk: peer requests/s / bare Starlette's",
            _get(server, "results", "peer", "rps_ratio_to_bare"),
            "",
            None,
            "x",
        )
        row(
            "uvicorn + wrk: floor (bare + our headers as constants) / bare Starlette's",
            _get(server, "results", "floor", "rps_ratio_to_bare"),
            "",
            None,
            "x",
        )
        server_rows(server, row)
    imports = first(data.get("imports", {}), "imports.json", "imports-quick.json")
    if imports:
        import_rows(imports.get("targets", {}), row)
    errors = first(data.get("errors", {}), "errors.json", "errors-quick.json")
    if errors:
        value = _get(errors, "results", "ErrorEnvelopeMiddleware", "overhead_us")
        budget = errors.get("budget_us")
        row(
            "ErrorEnvelopeMiddleware, success path, over a passthrough",
            value,
            f"<= {budget} µs",
            None if value is None or budget is None else value <= budget,
            "µs",
        )
    headers = first(data.get("headers", {}), "headers.json")
    if headers:
        b = headers.get("budgets", {})
        value = b.get("no_nonce_overhead_us")
        row(
            "SecureHeadersMiddleware (no nonce), over a passthrough",
            value,
            "<= 2 µs",
            None if value is None else value <= b.get("no_nonce_budget_us", 2.0),
            "µs",
        )
        value = b.get("nonce_total_overhead_us")
        row(
            "SecureHeadersMiddleware with a CSP nonce, over a passthrough",
            value,
            "<= 4 µs",
            None if value is None else value <= b.get("nonce_budget_us", 4.0),
            "µs",
        )
    cors = first(data.get("cors", {}), "cors.json")
    if cors:
        row(
            "CORS simple request: ours, over a bare ASGI app",
            _get(cors, "asgi_simple", "ours", "overhead_us"),
            "",
            None,
            "µs",
        )
        row(
            "CORS simple request: Starlette's, over a bare ASGI app",
            _get(cors, "asgi_simple", "starlette", "overhead_us"),
            "",
            None,
            "µs",
        )
    csrf = first(data.get("csrf", {}), "csrf.json", "csrf-quick.json")
    if csrf:
        t = csrf.get("targets", {})
        row(
            "CSRF protection on the ASGI stack (passing requests, Origin-only included; layer step and middleware)",
            t.get("asgi_us"),
            f"<= {t.get('budget_us', 2.0)} µs",
            t.get("met_asgi"),
            "µs",
        )
    passwords = first(data.get("passwords", {}), "passwords.json")
    if passwords:
        row(
            "PasswordHasher.verify / raw argon2-cffi",
            _get(passwords, "overhead", "verify", "ratio_vs_argon2_cffi", "backend_guard"),
            "",
            None,
            "x",
        )
        row(
            "event loop: max lateness with 8 concurrent averify",
            _get(passwords, "event_loop", "averify", "max_late_ms"),
            f"<= {_get(passwords, 'event_loop', 'limit_ms')} ms",
            _get(passwords, "event_loop", "within_limit"),
            "ms",
        )
    policy = first(data.get("password_policy", {}), "password_policy.json", "password_policy-quick.json")
    if policy:
        row(
            "PasswordPolicy: blocklist check per password",
            _get(policy, "targets", "blocklist_us"),
            f"<= {_get(policy, 'targets', 'budget_us')} µs",
            _get(policy, "targets", "met"),
            "µs",
        )
    tokens = first(data.get("tokens", {}), "tokens.json")
    if tokens:
        for alg, cases in (tokens.get("verify_access") or {}).items():
            row(
                f"verify_access / jwt.decode, {alg}",
                _get(cases, "verify_access", "ratio"),
                "<= 1.10x",
                None if _get(cases, "verify_access", "ratio") is None else cases["verify_access"]["ratio"] <= 1.10,
                "x",
            )
        row(
            "rotate: Redis script calls per rotation",
            _get(tokens, "rotate_redis", "script_calls_per_rotation"),
            "1",
            None,
        )
    ratelimit = first(data.get("ratelimit", {}), "ratelimit.json", "ratelimit-quick.json")
    if ratelimit:
        value = _get(ratelimit, "middleware_memory", "RateLimitMiddleware (memory, 1 limit, headers)", "overhead_us")
        row(
            "rate limit, memory: a decision through RateLimitMiddleware (headers on)",
            value,
            "<= 5 µs",
            None if value is None else value <= 5.0,
            "µs",
        )
        for case in (
            "ours sliding-window-counter hit (1 limit)",
            "ours sliding-window-counter hit (2 limits)",
            "ours fixed-window hit (1 limit)",
        ):
            value = _get(ratelimit, "redis", case, "ratio")
            row(f"rate limit, Redis: {case[5:]} / redis-py PING", value, "<= 1.2x", _at_most(value, 1.2), "x")
        row(
            "rate limit, Redis: round trips per decision (2 limits)",
            _get(ratelimit, "redis_commands_per_call", "ours sliding-window-counter hit (2 limits)", "evalsha+eval"),
            "1",
            None,
        )
    decorators = first(data.get("decorators", {}), "decorators.json", "decorators-quick.json")
    if decorators:
        decorator_rows(decorators.get("targets", {}), row)
    lockout = first(data.get("lockout", {}), "lockout.json", "lockout-quick.json")
    if lockout:
        value = _get(lockout, "redis", "check+reserve (record_failure)", "ratio")
        row("lockout, Redis: check-and-reserve / redis-py PING", value, "<= 1.2x", _at_most(value, 1.2), "x")
        row("lockout check-and-reserve: Redis round trips", lockout.get("script_round_trips_per_reserve"), "1", None)
    return rows


def server_rows(server: dict[str, Any], row: Any) -> None:
    """Issue #24's real-server rows, per setup (uvicorn h11, uvicorn[standard] httptools, waitress + Flask): ours
    against the floor server and the peer stack (median of per-round ratios, with the lowest and highest round),
    by requests/s and by the server's CPU time per request, our latency p99 and the machine's load average; a
    setup not measured says why."""
    setups = server.get("setups") or {"uvicorn": server}
    for label, setup in setups.items():
        t = setup.get("floor_targets") or {}
        met = t.get("met") or {}
        spread = t.get("spread") or {}
        cpu_floor, cpu_peer = t.get("ours_cpu_ratio_to_floor"), t.get("ours_cpu_ratio_to_peer")
        for figure, value, target, ok, key in (
            ("our requests/s / the floor's", t.get("ours_rps_ratio_to_floor"), 0.95, met.get("floor"), "rps_to_floor"),
            ("our requests/s / the peer stack's", t.get("ours_rps_ratio_to_peer"), 1.8, met.get("peer"), "rps_to_peer"),
            (
                "by server CPU time per request: our capacity / the floor's",
                cpu_floor,
                0.95,
                _at_least(cpu_floor, 0.95),
                "cpu_to_floor",
            ),
            (
                "by server CPU time per request: our capacity / the peer stack's",
                cpu_peer,
                1.8,
                _at_least(cpu_peer, 1.8),
                "cpu_to_peer",
            ),
        ):
            low_high = spread.get(key)
            rounds = f" (rounds {low_high[0]:.3f}-{low_high[1]:.3f}x)" if low_high else ""
            row(f"{label} + wrk: {figure}{rounds}", value, f">= {target}x", ok, "x")
        ceiling = _ratio(_get(setup, "results", "floor", "rps"), _get(setup, "results", "peer", "rps"))
        if ceiling is not None:  # a stack costing nothing serves as the floor does: the most any stack can reach
            row(
                f"{label} + wrk: the floor's requests/s / the peer stack's (the most any stack can reach)",
                ceiling,
                "",
                None,
                "x",
            )
        load = (t.get("load_average") or {}).get("before")
        row(
            f"{label} + wrk: our latency p99 (peer's {t.get('peer_latency_p99_ms')} ms"
            + (f"; load average {load[0]:.2f} on {os.cpu_count()} cores)" if load else ")"),
            t.get("ours_latency_p99_ms"),
            "",
            None,
            "ms",
        )
    for label, reason in (server.get("skipped_setups") or {}).items():
        row(f"{label} + wrk: not measured", reason, ">= 0.95x floor, >= 1.8x peer", None)


def _ratio(numerator: Any, denominator: Any) -> float | None:
    """``numerator / denominator`` rounded to 3 places, None unless both are positive numbers."""
    if isinstance(numerator, (int, float)) and isinstance(denominator, (int, float)) and numerator > 0 < denominator:
        return round(numerator / denominator, 3)
    return None


def import_rows(targets: dict[str, Any], row: Any) -> None:
    """Issue #24's import rows: ``import backend_guard`` against ``import starlette.applications`` (best of N fresh
    interpreters, same run), and whether any public module imports a heavy dependency its part does not need
    (the offenders named)."""
    row(
        "import backend_guard / import starlette.applications (best of N fresh interpreters)",
        targets.get("ours_over_starlette"),
        "<= 0.5x",
        _get(targets, "met", "ratio"),
        "x",
    )
    parts = targets.get("parts") or {}
    if parts:
        over = [f"{module} ({', '.join(p.get('extra') or [])})" for module, p in parts.items() if not p.get("met")]
        row(
            f"import of each public module ({len(parts)}): heavy dependencies beyond its part's needs",
            "; ".join(over) or "none",
            "none",
            not over,
        )


def decorator_rows(targets: dict[str, Any], row: Any) -> None:
    """The route decorators' rows: each decorator's overhead over the same decision through the middleware (or
    made by hand in the route), and the rate limit decorators' over the peers' decorators."""
    for part, t in targets.items():
        framework, _, kind = part.partition("_")
        row(
            f"{framework} {kind} decorator overhead / {t.get('reference')}'s",
            t.get("over_reference"),
            "<= 1.5x",
            t.get("met_reference"),
            "x",
        )
        if "over_reference_beyond_floor" in t:
            row(
                f"{framework} {kind} decorator overhead beyond the framework's own cost of its two fields "
                f"(the floor case) / {t.get('reference')}'s",
                t["over_reference_beyond_floor"],
                "(<= 1.5x)",
                t.get("met_reference_beyond_floor"),
                "x",
            )
        if t.get("peer"):
            limit = t.get("max_over_peer")
            row(
                f"{framework} {kind} decorator overhead / {t['peer']}'s",
                t.get("over_peer"),
                f"<= {limit}x" if limit else "",
                t.get("met_peer"),
                "x",
            )


def _fmt(value: Any, unit: str) -> str:
    if isinstance(value, float):
        return f"{value:.3f}{unit}" if unit == "x" else f"{value:.2f} {unit}".strip()
    return f"{value} {unit}".strip()


def summary_markdown(summary: dict[str, Any], results_dir: Path) -> str:
    env = summary["environment"]
    lines = [
        "# Benchmark summary",
        "",
        f"{'Quick (smoke) run: few rounds, figures are not meaningful.' if summary['quick'] else 'Full run.'}"
        f" Python {env.get('python')}, {env.get('cpus')} CPUs, {env.get('platform')}, {env.get('when')}.",
        f" Load average before/after: {summary['load_avg_before']} / {summary['load_avg_after']}.",
        f" Redis: {summary.get('redis', 'REDIS_URL')}.",
        "",
        "## Headline figures",
        "",
        "| figure | measured | target | met |",
        "|---|---:|---:|:---:|",
    ]
    for r in summary["headline"]:
        met = {True: "yes", False: "**no**", None: ""}.get(r["met"], str(r["met"]))
        lines.append(f"| {r['figure']} | {_fmt(r['measured'], r['unit'])} | {r['target']} | {met} |")
    lines += ["", "## Runs", "", "| benchmark | status | seconds | files |", "|---|---|---:|---|"]
    for name, entry in summary["benchmarks"].items():
        status = entry["status"] + (f" ({entry['reason']})" if entry.get("reason") else "")
        lines.append(f"| {name} | {status} | {entry.get('seconds', '')} | {', '.join(entry['files'])} |")
    for name, entry in summary["benchmarks"].items():
        tables = [f for f in entry["files"] if f.endswith(".md")]
        jsons = [f for f in entry["files"] if f.endswith(".json")]
        if not tables and not jsons:
            continue
        lines += ["", f"## {name}", ""]
        if tables:
            for f in tables:
                lines.append(_demote((results_dir / f).read_text()).rstrip())
                lines.append("")
        else:
            for f in jsons:
                lines += [f"Figures from `{f}`:", "", "```", *_flatten(summary["data"][name].get(f, {})), "```"]
    return "\n".join(lines).rstrip() + "\n"


def _demote(text: str) -> str:
    """Nest a benchmark's own markdown under its section (headings one level down, at least ###)."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            line = "#" * max(3, level + 1) + line[level:]
        out.append(line)
    return "\n".join(out)


def _flatten(data: Any, prefix: str = "") -> list[str]:
    """Numeric and boolean leaves as ``path = value`` lines (lists of samples left out)."""
    lines: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in {"environment", "samples_us"}:
                continue
            lines += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, (int, float, bool)) or data is None:
        lines.append(f"{prefix} = {data}")
    return lines


# --------------------------------------------------------------------------------------------- plot


def plot(data: dict[str, dict[str, Any]], path: Path) -> bool:
    """Draw the in-process overheads and the server requests/s; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    stack = first(data.get("stack", {}), "stack.json", "stack-quick.json")
    server = first(data.get("server", {}), "server.json", "server-quick.json")
    panels = [p for p in (stack and "asgi", stack and "wsgi", server and "server") if p]
    if not panels:
        return False
    ratios = [11 if p == "asgi" else 3 for p in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, 1.2 + 0.45 * sum(ratios)), squeeze=False, gridspec_kw={"height_ratios": ratios}
    )

    def colour(name: str) -> str:
        if name.startswith(("ours", "flask_ours")) or name == "ours":
            return "#2a9d8f"
        if name.startswith(("peer", "flask_peer")) or name == "peer":
            return "#e76f51"
        return "#8d99ae"

    for ax, panel in zip(axes[:, 0], panels, strict=True):
        if panel in ("asgi", "wsgi") and stack:
            part = stack[panel]
            rows = [(n, r["overhead_us"]) for n, r in part["results"].items() if n != part["baseline"]]
            rows.reverse()
            names = [n for n, _ in rows]
            values = [max(v, 0.0) for _, v in rows]
            ax.barh(names, values, color=[colour(n) for n in names])
            if panel == "asgi":
                ax.set_xscale("log")
            scale = " (log scale)" if panel == "asgi" else ""
            ax.set_xlabel(f"µs added per request over {part['baseline']}{scale}, median of interleaved rounds")
            ax.set_title(f"{panel.upper()} in-process: overhead per request")
            for i, v in enumerate(values):
                ax.text(v, i, f" {v:.1f}", va="center", fontsize=8)
        elif panel == "server" and server:
            res = server["results"]
            names = list(res)[::-1]
            values = [res[n]["rps"] for n in names]
            ax.barh(names, values, color=[colour(n) for n in names])
            ax.set_xlabel("requests/s (uvicorn, one worker, wrk on loopback; higher is better)")
            ax.set_title("Real server")
            for i, n in enumerate(names):
                ax.text(values[i], i, f" {values[i]:.0f} ({res[n]['rps_ratio_to_bare']:.2f}x)", va="center", fontsize=8)
        ax.margins(x=0.15)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run of every script, in a scratch directory")
    parser.add_argument("--out", type=Path, help="scratch directory for --quick (default: a temporary one)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (e.g. stack server)")
    parser.add_argument("--timeout", type=float, help="seconds allowed per script (default: 180 quick, none full)")
    parser.add_argument(
        "--redis",
        choices=("private", "shared"),
        help="Redis for the Redis figures: a fresh private redis-server (default when it is installed and "
        "REDIS_URL is not set) or REDIS_URL's",
    )
    args = parser.parse_args()
    if args.out and not args.quick:
        parser.error("--out is for --quick runs (a full run writes benchmarks/results/)")
    selected = scripts(args.only)

    if args.quick:
        workdir = args.out if args.out else Path(tempfile.mkdtemp(prefix="backend-guard-bench-"))
        workdir.mkdir(parents=True, exist_ok=True)
        for p in [*HERE.glob("*.py")]:
            shutil.copy2(p, workdir / p.name)
        plot_path = workdir / "results" / "benchmarks.png"
    else:
        workdir = HERE
        plot_path = PLOT
    results_dir = workdir / "results"
    timeout = args.timeout if args.timeout else (180.0 if args.quick else None)

    sys.path.insert(0, str(workdir))
    from _harness import environment

    mode = args.redis or ("shared" if "REDIS_URL" in os.environ else "private")
    load_before = round(os.getloadavg()[0], 2)
    with private_redis() if mode == "private" else contextlib.nullcontext(None) as url:
        if url is not None:
            os.environ["REDIS_URL"] = url  # the scripts read it; run_all passes the environment on
        redis_used = "a fresh private redis-server for each benchmark" if url is not None else redis_url()
        print(f"Redis: {redis_used}", flush=True)
        report = run_all(selected, workdir, args.quick, timeout, fresh_redis=url is not None)
    if args.only and not args.quick:
        # A partial full run: the benchmarks not run now keep their committed figures in the summary, marked
        # as from an earlier run (their own JSON says when).
        for name in scripts(None):
            if name not in report and (results_dir / f"{name}.json").exists():
                files = [f for f in (f"{name}.json", f"{name}.md") if (results_dir / f).exists()]
                report[name] = {"status": "earlier run", "files": files}
    data = {name: load(results_dir, entry) for name, entry in report.items()}
    summary: dict[str, Any] = {
        "environment": environment(),
        "quick": args.quick,
        "load_avg_before": load_before,
        "load_avg_after": round(os.getloadavg()[0], 2),
        "redis": redis_used,
        "benchmarks": report,
        "headline": headline(data),
        "data": data,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    summary["plot"] = str(plot_path) if plot(data, plot_path) else None
    (results_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    markdown = summary_markdown(summary, results_dir)
    (results_dir / "summary.md").write_text(markdown)
    print()
    print(markdown.split("## Runs")[0].rstrip())
    print()
    print(f"summary: {results_dir / 'summary.json'} and summary.md; plot: {summary['plot'] or 'not drawn'}")
    failed = [name for name, entry in report.items() if entry["status"] == "failed"]
    if failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
