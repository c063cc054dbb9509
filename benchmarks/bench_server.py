"""Benchmark a real server: uvicorn on loopback driven by ``wrk``, bare Starlette vs our stack vs the peer stack.

The app is the one of ``bench_stack.py`` (Starlette, one JSON route): ``bare``, ``ours`` (``Guard`` with CORS and
a memory rate limit) and ``peer`` (Starlette's CORSMiddleware + ``secure``'s SecureASGIMiddleware + slowapi's
pure-ASGI middleware). Each server runs alone, in its own subprocess (one uvicorn worker, access log off), and
is checked once (status and headers of one cross-origin GET) before ``wrk`` drives it with an ``Origin``
header for a bounded time. Rounds are interleaved in a shuffled order (a fresh server each time); per round
we keep requests/s, latency percentiles, and the ratio of requests/s to bare's in the same round; we report
medians. Any non-2xx answer or socket error invalidates the run (a short-circuit must never look fast).

``wrk`` and the server share the machine: the figures are for comparison side by side, not capacity planning.
Old target: our stack keeps at least 0.85x bare Starlette's requests/s (it mixed the server's cost of sending
the headers with ours; replaced by the floor target below).

``--floor`` adds a ``floor`` server: bare Starlette behind one pure-ASGI middleware appending, as constants, the
very response headers ``ours`` adds (same names and values). It does no other work, so ``floor`` is the server's
own cost of sending those headers (h11 validates and scans every header), the best any stack adding them can do.

``--all-servers`` (what ``run.py`` runs) measures every variant, floor included, on three setups one after the
other: plain ``uvicorn`` (asyncio, h11), ``uvicorn[standard]`` (uvloop, httptools; skipped and said so when
they are not installed) and ``waitress`` serving the Flask app of ``bench_stack.py`` (bare, our WSGI ``Guard``,
the peer stack flask-cors + flask-talisman + Flask-Limiter, and the floor: bare Flask + our headers as
constants; waitress is told the scheme is https, as behind a TLS proxy, so Talisman does not redirect).
Targets (issue #24), per setup: ours keeps >= 0.95x the floor's requests/s and >= 1.8x the peer stack's (both
medians of per-round ratios); latency p99 reported. Each round also records the server process's own CPU time
per request (user + system, from /proc, all its threads): on a machine other work loads, requests/s swings
with the scheduler while CPU time per request moves far less, so the same two ratios are also reported from it
(the requests/s each server would reach with a core to itself).

Usage::

    python benchmarks/bench_server.py             # full run: 5 rounds of wrk -t2 -c32 -d5s per server
    python benchmarks/bench_server.py --quick     # smoke run: 1 round of -d1s
    python benchmarks/bench_server.py --http h11  # uvicorn's parser: auto (default), h11 or httptools
    python benchmarks/bench_server.py --http both # plain ``uvicorn`` (asyncio, h11) and ``uvicorn[standard]``
                                                  # (uvloop, httptools; both must be installed), one after the other
    python benchmarks/bench_server.py --floor     # with the ``floor`` server
    python benchmarks/bench_server.py --floor --all-servers  # uvicorn h11, uvicorn httptools, waitress + Flask
    WRK=/path/to/wrk python benchmarks/bench_server.py

Needs ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``); without it the script exits with status 2.
Results are printed and written to benchmarks/results/server.json (and server.md); ``--quick`` writes
server-quick.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import save

VARIANTS = ("bare", "ours", "peer")
ALL_VARIANTS = (*VARIANTS, "floor")
#: ``--http both``: (label, uvicorn's http, uvicorn's loop) of a plain ``uvicorn`` and of ``uvicorn[standard]``.
BOTH = (("uvicorn", "h11", "asyncio"), ("uvicorn[standard]", "httptools", "uvloop"))
TARGET_RPS_RATIO = 0.85
TARGET_OVER_FLOOR = 0.95
TARGET_OVER_PEER = 1.8
#: ``--all-servers``: (label, server, uvicorn's http, uvicorn's loop); waitress ignores the last two.
ALL_SERVERS = (
    ("uvicorn (h11)", "uvicorn", "h11", "asyncio"),
    ("uvicorn[standard] (httptools)", "uvicorn", "httptools", "uvloop"),
    ("waitress + Flask", "waitress", "auto", "auto"),
)
MUST = {
    "bare": [],
    "ours": ["x-request-id", "x-content-type-options", "access-control-allow-origin", "ratelimit"],
    "peer": ["x-content-type-options", "access-control-allow-origin", "x-ratelimit-limit"],
    "floor": ["x-request-id", "x-content-type-options", "access-control-allow-origin", "ratelimit"],
}
WRK_SCRIPT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def build_app(variant: str) -> Any:
    """The ASGI app of one variant (the same builders as bench_stack.py)."""
    import bench_stack
    from starlette.middleware import Middleware

    from backend_guard.asgi import Guard

    if variant == "bare":
        return bench_stack.starlette_app([])
    if variant == "ours":
        return bench_stack.starlette_app([Middleware(Guard, settings=bench_stack.guard_settings())])
    if variant == "peer":
        return bench_stack.peer_asgi_app()
    if variant == "floor":
        return bench_stack.starlette_app([Middleware(ConstantHeaders, headers=ours_added_headers())])
    raise SystemExit(f"unknown variant {variant!r}")


def ours_added_headers() -> list[tuple[bytes, bytes]]:
    """The response headers ``ours`` adds to bare's, for a request like wrk's (plain HTTP, an allowed Origin)."""
    return added_headers(build_app("ours"))


def added_headers(app: Any) -> list[tuple[bytes, bytes]]:
    """The response headers ``app`` adds to bare's, for a request like wrk's (plain HTTP, an allowed Origin)."""
    import asyncio

    import bench_stack

    def start(app: Any) -> list[tuple[bytes, bytes]]:
        scope = bench_stack.asgi_scope() | {"scheme": "http", "client": ("127.0.0.1", 50000), "state": {}}
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        asyncio.run(app(scope, receive, send))
        assert sent[0]["status"] == 200, sent[0]
        return list(sent[0]["headers"])

    bare = {k.lower() for k, _ in start(build_app("bare"))}
    return [(k.lower(), v) for k, v in start(app) if k.lower() not in bare]


class ConstantHeaders:
    """A pure-ASGI middleware appending constant headers to every response start (the ``floor`` server)."""

    def __init__(self, app: Any, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = self.headers

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_wsgi_app(variant: str) -> Any:
    """The Flask (WSGI) app of one variant (the builders of bench_stack.py; ``floor``: bare + our headers)."""
    import bench_stack

    if variant == "floor":
        return ConstantHeadersWSGI(bench_stack.flask_app("bare"), ours_added_wsgi_headers())
    return bench_stack.flask_app(variant)


def ours_added_wsgi_headers() -> list[tuple[str, str]]:
    """The response headers our WSGI ``Guard`` adds to bare Flask's, for a request like wrk's (https scheme, as
    waitress is told, and an allowed Origin)."""
    import bench_stack

    def start(variant: str) -> list[tuple[str, str]]:
        sink: list[Any] = [None, None, None]  # status, headers, body
        bench_stack.wsgi_case(bench_stack.flask_app(variant), sink)()
        assert sink[0].startswith("200"), sink[0]
        return list(sink[1])

    bare = {k.lower() for k, _ in start("bare")}
    return [(k, v) for k, v in start("ours") if k.lower() not in bare]


class ConstantHeadersWSGI:
    """A WSGI middleware appending constant headers to every response (the WSGI ``floor`` server)."""

    def __init__(self, app: Any, headers: list[tuple[str, str]]) -> None:
        self.app = app
        self.headers = headers

    def __call__(self, environ: Any, start_response: Any) -> Any:
        def start_with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, *self.headers], exc_info)

        return self.app(environ, start_with_headers)


def serve(variant: str, port: int, http: str, loop: str, server: str = "uvicorn") -> None:
    """Run one server in this process (the parent starts it in a subprocess)."""
    if server == "waitress":
        import waitress

        # https: as behind a TLS-terminating proxy (Talisman would redirect plain http; HSTS is sent by both)
        waitress.serve(build_wsgi_app(variant), host="127.0.0.1", port=port, url_scheme="https", _quiet=True)
        return
    import uvicorn

    uvicorn.run(
        build_app(variant), host="127.0.0.1", port=port, log_level="warning", access_log=False, http=http, loop=loop
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One uvicorn server in a subprocess, up until ``stop``."""

    def __init__(self, variant: str, http: str, loop: str = "auto", server: str = "uvicorn") -> None:
        self.variant = variant
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (open while the server runs)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--serve",
                variant,
                "--port",
                str(self.port),
                "--http",
                http,
                "--loop",
                loop,
                "--server",
                server,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}/items"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.variant} server exited {self.proc.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.variant} server did not listen within {timeout} s: {self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


def check(server: Server, origin: str) -> None:
    """One cross-origin GET: a 200 with the headers this variant must add."""
    request = urllib.request.Request(server.url, headers={"Origin": origin, "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        assert response.status == 200, (server.variant, response.status)
        names = {k.lower(): v for k, v in response.headers.items()}
        response.read()
    missing = [h for h in MUST[server.variant] if h not in names]
    assert not missing, f"{server.variant}: missing response headers {missing}"
    if "access-control-allow-origin" in MUST[server.variant]:
        assert names["access-control-allow-origin"] == origin, (server.variant, names)


def run_wrk(wrk: str, url: str, origin: str, threads: int, connections: int, duration: int, script: str) -> Any:
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-H",
        f"Origin: {origin}",
        "-s",
        script,
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line[len("WRKJSON ") :])
            data["rps"] = round(data["requests"] / (data["duration_us"] / 1e6), 1)
            return data
    raise RuntimeError(f"no summary in wrk output: {out[-2000:]}")


def measure(
    args: argparse.Namespace, wrk: str, http: str, loop: str, variants: tuple[str, ...], server_kind: str = "uvicorn"
) -> dict[str, dict[str, Any]]:
    """Interleaved rounds of every variant on one server setup: {variant: figures and rounds}."""
    import bench_stack

    origin = bench_stack.ORIGIN
    rounds = args.rounds or (1 if args.quick else 5)
    duration = args.duration or (1 if args.quick else 5)
    warmup = 0 if args.quick else 1
    rng = random.Random(1234)
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}

    load_before = load_average()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    try:
        for r in range(rounds):
            order = list(variants)
            rng.shuffle(order)
            for variant in order:
                server = Server(variant, http, loop, server_kind)
                try:
                    server.wait_ready()
                    check(server, origin)
                    if warmup:
                        run_wrk(wrk, server.url, origin, args.threads, args.connections, warmup, script)
                    cpu_before = process_cpu_seconds(server.proc.pid)
                    data = run_wrk(wrk, server.url, origin, args.threads, args.connections, duration, script)
                    cpu = process_cpu_seconds(server.proc.pid) - cpu_before
                    data["server_cpu_us_per_request"] = round(cpu / max(data["requests"], 1) * 1e6, 1)
                finally:
                    server.stop()
                errors = data["errors"]
                if any(errors.values()):
                    raise RuntimeError(f"{variant}: wrk saw errors or non-2xx answers: {errors}")
                samples[variant].append(data)
                lat = data["latency_us"]
                print(
                    f"{server_kind if server_kind != 'uvicorn' else http:9} round {r + 1}/{rounds} {variant:5}"
                    f" {data['rps']:9.1f} req/s  "
                    f"p50 {lat['p50'] / 1000:6.2f} ms  p99 {lat['p99'] / 1000:6.2f} ms"
                    f"  server CPU {data['server_cpu_us_per_request']:6.1f} µs/request"
                )
    finally:
        os.unlink(script)

    results: dict[str, Any] = {}
    for variant in variants:
        runs = samples[variant]
        results[variant] = {
            "rps": round(statistics.median(s["rps"] for s in runs), 1),
            "rps_ratio_to_bare": per_round_ratio(samples[variant], samples["bare"]),
            # server time per request, from requests/s (the server is one process on one core)
            "us_per_request": round(1e6 / statistics.median(s["rps"] for s in runs), 1),
            # the server process's own CPU time per request (/proc): what other load on the machine moves least
            "server_cpu_us_per_request": round(statistics.median(s["server_cpu_us_per_request"] for s in runs), 1),
            "latency_p50_ms": round(statistics.median(s["latency_us"]["p50"] for s in runs) / 1000, 3),
            "latency_p90_ms": round(statistics.median(s["latency_us"]["p90"] for s in runs) / 1000, 3),
            "latency_p99_ms": round(statistics.median(s["latency_us"]["p99"] for s in runs) / 1000, 3),
            "rounds": runs,
        }
    results["ours"]["load_average"] = {"before": load_before, "after": load_average()}
    return results


def load_average() -> list[float] | None:
    """The machine's 1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def per_round_ratio(runs: list[dict[str, Any]], reference: list[dict[str, Any]]) -> float:
    """Median over rounds of one server's requests/s over another's measured in the same round."""
    return round(float(statistics.median(s["rps"] / b["rps"] for s, b in zip(runs, reference, strict=True))), 3)


def round_ratios(runs: list[dict[str, Any]], reference: list[dict[str, Any]], key: str = "rps") -> list[float]:
    """Per round, one server's figure over another's measured in the same round: requests/s (``rps``), or
    server CPU capacity (``cpu``: the reference's CPU time per request over this one's)."""
    if key == "rps":
        return [round(s["rps"] / b["rps"], 3) for s, b in zip(runs, reference, strict=True)]
    pairs = [
        (s["server_cpu_us_per_request"], b["server_cpu_us_per_request"]) for s, b in zip(runs, reference, strict=True)
    ]
    return [round(b / s, 3) for s, b in pairs if s > 0]


def spread(values: list[float]) -> list[float] | None:
    """[lowest, highest] of per-round figures (None without any)."""
    return [min(values), max(values)] if values else None


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used so far, from /proc (0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_capacity_ratio(runs: list[dict[str, Any]], reference: list[dict[str, Any]]) -> float | None:
    """Median over rounds of the reference's server CPU time per request over this one's: the requests/s ratio
    the two would have with a core each to themselves (None without /proc)."""
    pairs = [
        (s["server_cpu_us_per_request"], b["server_cpu_us_per_request"]) for s, b in zip(runs, reference, strict=True)
    ]
    if not all(ours > 0 for ours, _ in pairs):
        return None
    return round(float(statistics.median(b / s for s, b in pairs)), 3)


def floor_targets(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Issue #24's targets of one setup: ours / floor >= 0.95x and ours / peer >= 1.8x requests/s, p99."""
    ours = results["ours"]["rounds"]
    over_floor = per_round_ratio(ours, results["floor"]["rounds"]) if "floor" in results else None
    over_peer = per_round_ratio(ours, results["peer"]["rounds"])
    return {
        "ours_rps_ratio_to_floor": over_floor,
        "ours_rps_ratio_to_peer": over_peer,
        "ours_cpu_ratio_to_floor": cpu_capacity_ratio(ours, results["floor"]["rounds"]) if "floor" in results else None,
        "ours_cpu_ratio_to_peer": cpu_capacity_ratio(ours, results["peer"]["rounds"]),
        "spread": {  # [lowest, highest] per-round ratio: how far one round can be from another on this machine
            "rps_to_floor": spread(round_ratios(ours, results["floor"]["rounds"])) if "floor" in results else None,
            "rps_to_peer": spread(round_ratios(ours, results["peer"]["rounds"])),
            "cpu_to_floor": spread(round_ratios(ours, results["floor"]["rounds"], "cpu"))
            if "floor" in results
            else None,
            "cpu_to_peer": spread(round_ratios(ours, results["peer"]["rounds"], "cpu")),
        },
        "load_average": results["ours"].get("load_average"),
        "ours_latency_p99_ms": results["ours"]["latency_p99_ms"],
        "floor_latency_p99_ms": results["floor"]["latency_p99_ms"] if "floor" in results else None,
        "peer_latency_p99_ms": results["peer"]["latency_p99_ms"],
        "floor_target": TARGET_OVER_FLOOR,
        "peer_target": TARGET_OVER_PEER,
        "met": {
            "floor": None if over_floor is None else over_floor >= TARGET_OVER_FLOOR,
            "peer": over_peer >= TARGET_OVER_PEER,
        },
    }


def report(
    results: dict[str, dict[str, Any]], setup: str, args: argparse.Namespace, title: str = "uvicorn"
) -> tuple[list[str], Any]:
    """Markdown lines and the targets of one setup's results."""
    rounds = args.rounds or (1 if args.quick else 5)
    duration = args.duration or (1 if args.quick else 5)
    ratio = results["ours"]["rps_ratio_to_bare"]
    targets = {"ours_rps_ratio_to_bare": ratio, "target": TARGET_RPS_RATIO, "met": ratio >= TARGET_RPS_RATIO}
    lines = [
        f"## Real server: {title} + wrk on loopback",
        "",
        f"One {'waitress server (4 threads)' if 'waitress' in title else 'uvicorn worker'} ({setup}),"
        f" `wrk -t{args.threads} -c{args.connections} -d{duration}s` with an `Origin` header;"
        f" median of {rounds} interleaved rounds, a fresh server each time.",
        "",
        "| server | requests/s | ratio to bare | µs/request | server CPU µs/request | p50 ms | p90 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, r in results.items():
        lines.append(
            f"| {variant} | {r['rps']:.0f} | {r['rps_ratio_to_bare']:.3f}x | {r['us_per_request']:.1f} |"
            f" {r['server_cpu_us_per_request']:.1f} |"
            f" {r['latency_p50_ms']:.2f} | {r['latency_p90_ms']:.2f} | {r['latency_p99_ms']:.2f} |"
        )
    lines += [
        "",
        f"Old target: ours >= {TARGET_RPS_RATIO}x bare requests/s: {ratio:.3f}x,"
        f" {'met' if targets['met'] else 'NOT met'} (replaced by the floor target).",
    ]
    t = floor_targets(results)
    if t["ours_rps_ratio_to_floor"] is not None:
        lines.append(
            f"Target: ours >= {TARGET_OVER_FLOOR}x the floor's requests/s: {t['ours_rps_ratio_to_floor']:.3f}x,"
            f" {'met' if t['met']['floor'] else 'NOT met'}."
        )
    lines.append(
        f"Target: ours >= {TARGET_OVER_PEER}x the peer stack's requests/s: {t['ours_rps_ratio_to_peer']:.3f}x,"
        f" {'met' if t['met']['peer'] else 'NOT met'}. Latency p99: ours {t['ours_latency_p99_ms']:.2f} ms,"
        f" peer {t['peer_latency_p99_ms']:.2f} ms."
    )
    if t["ours_cpu_ratio_to_peer"] is not None:
        lines.append(
            f"By the server's CPU time per request (what other load moves least): ours has"
            f" {t['ours_cpu_ratio_to_floor'] or 0:.3f}x the floor's capacity and {t['ours_cpu_ratio_to_peer']:.3f}x"
            f" the peer's."
        )
    lines.append(spread_line(t))
    if "floor" in results:
        floor = results["floor"]
        lines.append(
            f"The floor (bare + ours' response headers as constants, no other work) is"
            f" {floor['rps_ratio_to_bare']:.3f}x bare: the server's own cost of those headers."
        )
    lines.append("")
    return lines, targets


def spread_line(t: dict[str, Any]) -> str:
    """The lowest and highest per-round ratios, and the machine's load average (1 min) around the rounds."""
    parts = [
        f"{name} {low:.3f}-{high:.3f}x"
        for name, key in (
            ("ours/floor req/s", "rps_to_floor"),
            ("ours/peer req/s", "rps_to_peer"),
            ("ours/floor CPU", "cpu_to_floor"),
            ("ours/peer CPU", "cpu_to_peer"),
        )
        if (pair := t["spread"].get(key))
        for low, high in [pair]
    ]
    load = t.get("load_average") or {}
    before, after = load.get("before"), load.get("after")
    loads = f" Load average (1 min) {before[0]:.2f} before, {after[0]:.2f} after." if before and after else ""
    return f"Spread over rounds: {', '.join(parts)}.{loads}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run: one round of 1 s per server")
    parser.add_argument("--rounds", type=int, help="rounds (default 5, quick 1)")
    parser.add_argument("--duration", type=int, help="seconds of wrk per measurement (default 5, quick 1)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--http",
        choices=["auto", "h11", "httptools", "both"],
        default="auto",
        help="uvicorn's HTTP parser; both: plain uvicorn (asyncio, h11) then uvicorn[standard] (uvloop, httptools)",
    )
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help="add the floor server (ours' headers as constants)")
    parser.add_argument(
        "--all-servers",
        action="store_true",
        help="uvicorn (h11), uvicorn[standard] (httptools, when installed) and waitress + Flask, one after the other",
    )
    parser.add_argument("--serve", choices=ALL_VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--server", choices=["uvicorn", "waitress"], default="uvicorn", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.http, args.loop, args.server)
        return 0

    import importlib.util

    import bench_stack

    wrk = os.environ.get("WRK") or shutil.which("wrk")
    if not wrk:
        print("wrk is not installed (Debian/Ubuntu: apt-get install wrk): nothing measured", file=sys.stderr)
        return 2
    skipped: dict[str, str] = {}
    if args.all_servers:
        setups, skipped = all_server_setups()
    elif args.http == "both":
        missing = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m) is None]
        if missing:
            print(
                f"--http both needs uvicorn[standard] ({', '.join(missing)} missing): nothing measured", file=sys.stderr
            )
            return 2
        setups = [(label, "uvicorn", http, loop) for label, http, loop in BOTH]
    else:
        setups = [("uvicorn", "uvicorn", args.http, "auto")]
    variants = (*VARIANTS, "floor") if args.floor else VARIANTS
    configs: dict[str, Any] = {}
    texts: list[str] = []
    for label, kind, http, loop in setups:
        if kind == "waitress":
            setup, server = "Flask app, url_scheme https", f"waitress {_version('waitress')}, 4 threads, Flask app"
        else:
            setup = _loop_and_http(http, loop)
            server = "uvicorn, one worker, " + setup
        results = measure(args, wrk, http, loop, variants, kind)
        lines, targets = report(results, setup, args, label)
        texts.append("\n".join(lines))
        configs[label] = {"server": server, "results": results, "targets": targets}
        if "floor" in results:
            configs[label]["floor_targets"] = floor_targets(results)
    texts += [f"{label}: not measured ({reason}).\n" for label, reason in skipped.items()]
    text = "\n".join(texts)
    print(text)
    first = next(iter(configs.values()))
    payload: dict[str, Any] = {
        "benchmark": "server",
        "quick": args.quick,
        "wrk": {
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration or (1 if args.quick else 5),
            "warmup_s": 0 if args.quick else 1,
            "rounds": args.rounds or (1 if args.quick else 5),
        },
        "server": first["server"],
        "versions": bench_stack.versions() | {"uvicorn": _version("uvicorn")},
        "results": first["results"],
        "targets": first["targets"],
    }
    if "floor_targets" in first:
        payload["floor_targets"] = first["floor_targets"]
    if len(configs) > 1 or skipped:
        payload["setups"] = configs
        payload["skipped_setups"] = skipped
    print("written:", save("server-quick" if args.quick else "server", payload, text))
    return 0


def all_server_setups() -> tuple[list[tuple[str, str, str, str]], dict[str, str]]:
    """``--all-servers``: the setups to measure and those skipped (label: why)."""
    import importlib.util

    setups, skipped = [], {}
    for label, kind, http, loop in ALL_SERVERS:
        needed = {"uvicorn": [http, loop], "waitress": ["waitress", "flask"]}[kind]
        missing = [m for m in needed if m not in ("h11", "asyncio") and importlib.util.find_spec(m) is None]
        if missing:
            skipped[label] = f"{', '.join(missing)} not installed"
        else:
            setups.append((label, kind, http, loop))
    return setups, skipped


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _loop_and_http(http: str, loop: str = "auto") -> str:
    """Which event loop and HTTP parser uvicorn uses here ("auto" picks uvloop and httptools when installed)."""
    import importlib.util

    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} loop, {http} parser"


if __name__ == "__main__":
    raise SystemExit(main())
