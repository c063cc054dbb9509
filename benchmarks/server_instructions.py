"""Instructions per request inside a real uvicorn server, counted by valgrind's callgrind (load-independent).

Requests/s and CPU time behind a real server swing with whatever else runs on the machine; instruction
counts do not. For each variant and each uvicorn setup, this script starts the server under
``valgrind --tool=callgrind`` (``uvicorn.run``, one worker, access log off) and drives it over ONE keep-alive
connection on loopback with a plain ``http.client`` client: sequential GETs with an ``Origin`` header, each
checked for a 200 and the body. The counters are dumped (``callgrind_control --dump``, which zeroes them)
after ``--low`` requests and again after ``--high``: the second dump holds exactly the ``high - low``
requests between (the difference of a ``low`` and a ``high`` run, start-up and shutdown left out, in one
server run instead of two). Then SIGINT stops the server. The figure is the server's whole per-request cost:
the parser, the event loop, the socket calls, Starlette, the middlewares. ``PYTHONHASHSEED=0`` for the server.
uvicorn's main loop also wakes every 0.1 s whatever the requests: a run slowed by other load counts more of
those ticks. So the server then idles ``--idle`` seconds (default 20) and is dumped a third time; that dump's
instructions per second, times the seconds the counted requests took, are subtracted (``--idle 0``: kept).

Variants (the apps of ``bench_server.py``; the single layers are ``Guard`` with every other part off):

- ``bare``: Starlette, one JSON route; ``floor``: bare + ``ours``' response headers as constants;
- ``ours``: ``Guard`` with ``bench_stack.guard_settings()`` (CORS, a memory rate limit, the defaults);
- ``guard_none``: ``Guard`` with every part off (its own fixed cost);
- ``rid``, ``sec``, ``cors``, ``rate``, ``err``: ``Guard`` with only request ids, secure headers, CORS, the
  rate limit or the error envelope on; ``floor_<layer>``: bare + that layer's response headers as constants,
  so ``<layer> - floor_<layer>`` is the layer's work beyond the server's cost of sending its headers.

A floor's headers are found in this process (one in-process request through the layer), not under valgrind.
The client connects once the server listens (refused attempts never reach the server). Bounded: every
request, the start and the stop have a timeout, the server is killed if it outlives them; loopback only;
no wall-clock figure is judged.

Usage::

    python benchmarks/server_instructions.py                          # bare floor ours, h11 and httptools
    python benchmarks/server_instructions.py --variants all           # and guard_none, every layer and its floor
    python benchmarks/server_instructions.py --http httptools --variants ours floor --low 200 --high 1200
    python benchmarks/server_instructions.py --keep /tmp/cg           # keep the callgrind dumps and server logs

Needs valgrind (with ``callgrind_control``); ``httptools`` is skipped (and said so) when ``httptools`` or
``uvloop`` is not installed. Under valgrind Python runs ~50x slower: a server takes a few minutes on a quiet
machine (start-up included), much longer on a loaded one. Python 3.11 shows no Python function in callgrind's
output (only the interpreter's C functions): compare variants, as the table does, to attribute the cost.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

LAYERS = ("rid", "sec", "cors", "rate", "err")
DEFAULT_VARIANTS = ("bare", "floor", "ours")
ALL_VARIANTS = (*DEFAULT_VARIANTS, "guard_none", *LAYERS, *(f"floor_{layer}" for layer in LAYERS))
#: uvicorn setups: label -> (http, loop).
SETUPS = {"h11": ("h11", "asyncio"), "httptools": ("httptools", "uvloop")}
START_TIMEOUT = 1800.0  # seconds for the server to listen under valgrind (a loaded machine is slow)
STOP_TIMEOUT = 1800.0
REQUEST_TIMEOUT = 60.0


def guard_settings(variant: str) -> Any:
    """The settings of a one-layer (or no-layer) ``Guard``: ``bench_stack.guard_settings()`` with the rest off."""
    import bench_stack

    import backend_guard as bg

    full = bench_stack.guard_settings()
    only = {"guard_none": None, "rid": "request_id", "sec": "secure_headers", "cors": "cors", "rate": "rate_limit"}
    on = only.get(variant, "errors")
    return bg.GuardSettings(
        request_id={"enabled": on == "request_id"},
        secure_headers={"enabled": on == "secure_headers"},
        errors={"enabled": on == "errors"},
        cors=full.cors.model_dump() | {"enabled": on == "cors"},
        rate_limit=full.rate_limit.model_dump() | {"enabled": on == "rate_limit"},
    )


def build_app(variant: str) -> Any:
    """The ASGI app of one variant."""
    import bench_server
    import bench_stack
    from starlette.middleware import Middleware

    from backend_guard.asgi import Guard

    if variant in ("bare", "ours", "floor"):
        return bench_server.build_app(variant)
    if variant.startswith("floor_"):
        headers = floor_headers(variant)
        return bench_stack.starlette_app([Middleware(bench_server.ConstantHeaders, headers=headers)])
    return bench_stack.starlette_app([Middleware(Guard, settings=guard_settings(variant))])


def floor_headers(variant: str) -> list[tuple[bytes, bytes]]:
    """The constant headers of ``floor`` (ours') or ``floor_<layer>`` (that layer's)."""
    import bench_server

    return bench_server.added_headers(build_app("ours" if variant == "floor" else variant.removeprefix("floor_")))


def serve(variant: str, port: int, setup: str, headers: Path | None) -> None:
    """Run one server in this process (under valgrind, started by ``count``); a floor's headers from a file."""
    import uvicorn

    http, loop = SETUPS[setup]
    if headers is not None:
        import bench_server
        import bench_stack
        from starlette.middleware import Middleware

        pairs = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in json.loads(headers.read_text())]
        app = bench_stack.starlette_app([Middleware(bench_server.ConstantHeaders, headers=pairs)])
    else:
        app = build_app(variant)
    # A long keep-alive: a dump of the counters can take seconds, and the connection must outlive it.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop=loop,
        http=http,
        access_log=False,
        log_level="warning",
        timeout_keep_alive=3600,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connect(port: int, proc: subprocess.Popen[bytes]) -> http.client.HTTPConnection:
    """One connection, once the server listens (a refused attempt never reaches the server)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode} before listening")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        try:
            conn.connect()
        except ConnectionRefusedError:
            conn.close()
            time.sleep(0.2)
            continue
        return conn
    raise RuntimeError(f"server did not listen within {START_TIMEOUT} s")


def drive(conn: http.client.HTTPConnection, n: int) -> None:
    """``n`` sequential GETs on one keep-alive connection, each a 200 with the expected body."""
    import bench_stack

    headers = {"Origin": bench_stack.ORIGIN, "Accept": "application/json"}
    for _ in range(n):
        conn.request("GET", "/items", headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200 or body != bench_stack.BODY:
            raise RuntimeError(f"unexpected answer {response.status} {body[:200]!r}")


def count(
    variant: str, setup: str, low: int, high: int, out_dir: Path, tools: tuple[str, str], idle: float = 0.0
) -> tuple[int, float, int]:
    """Instructions of requests ``low + 1`` to ``high`` of one server run under callgrind.

    The counters are dumped (``callgrind_control --dump``, which also zeroes them) after ``low`` requests and
    again after ``high``: the second dump holds exactly the ``high - low`` requests between, start-up, the
    first requests and shutdown left out (the difference of a ``low`` and a ``high`` run, in one run).
    Returns (those instructions, the seconds they took, the instructions of ``idle`` seconds without a request:
    uvicorn's main loop wakes every 0.1 s, so a slow run on a loaded machine counts more of its ticks).
    """
    valgrind, control = tools
    port = free_port()
    out = out_dir / f"{variant}-{setup}.out"
    log = out_dir / f"{variant}-{setup}.log"
    env = os.environ | {"PYTHONHASHSEED": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
    cmd += ["--serve", variant, "--setup", setup, "--port", str(port)]
    if variant.startswith("floor"):  # the headers, found here, not under valgrind
        headers = out_dir / f"{variant}.headers"
        headers.write_text(json.dumps([[k.hex(), v.hex()] for k, v in floor_headers(variant)]))
        cmd += ["--headers", str(headers)]
    with log.open("wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        try:
            conn = connect(port, proc)
            try:
                drive(conn, low)
                dump(control, proc.pid, "low")
                started = time.monotonic()
                drive(conn, high - low)
                dump(control, proc.pid, "high")
                busy = time.monotonic() - started
                if idle:  # uvicorn's own 0.1 s tick, alone: what it adds to the dump above per second
                    time.sleep(idle)
                    dump(control, proc.pid, "idle")
            finally:
                conn.close()
            print(f"  {variant} {setup}: {busy:.1f} s for {high - low} requests", flush=True)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=STOP_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    dumps = sorted(out_dir.glob(f"{out.name}.*"), key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    totals = [_total(d) for d in dumps[1:3]]
    if len(totals) < (2 if idle else 1) or None in totals:
        raise RuntimeError(f"missing dumps in {out_dir}: {log.read_text(errors='replace')[-2000:]}")
    return totals[0] or 0, busy, (totals[1] or 0) if idle else 0


def _total(path: Path) -> int | None:
    """The instruction total of one callgrind dump."""
    match = re.search(r"^(?:summary|totals): (\d+)", path.read_text(errors="replace"), re.MULTILINE)
    return int(match.group(1)) if match else None


def dump(control: str, pid: int, label: str) -> None:
    """Dump (and zero) the server's callgrind counters now."""
    subprocess.run([control, f"--dump={label}", str(pid)], check=True, capture_output=True, timeout=STOP_TIMEOUT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), help="names, or 'all'")
    parser.add_argument("--http", choices=["h11", "httptools", "both"], default="both")
    parser.add_argument("--low", type=int, default=200, help="requests of the first run (default 200)")
    parser.add_argument("--high", type=int, default=2200, help="requests of the second run (default 2200)")
    parser.add_argument(
        "--idle",
        type=float,
        default=20.0,
        help="seconds of no request after the counted ones, to subtract uvicorn's 0.1 s ticks (0: keep them)",
    )
    parser.add_argument("--keep", type=Path, help="keep the callgrind files and server logs in this directory")
    parser.add_argument("--serve", choices=ALL_VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--setup", choices=sorted(SETUPS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--headers", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.setup, args.headers)
        return 0
    variants = list(ALL_VARIANTS) if args.variants == ["all"] else args.variants
    unknown = [v for v in variants if v not in ALL_VARIANTS]
    if unknown or not 0 < args.low < args.high:
        parser.error(f"unknown variants {unknown}" if unknown else "need 0 < --low < --high")
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if not valgrind or not control:
        print("valgrind (with callgrind_control) is not installed: nothing measured", file=sys.stderr)
        return 2
    tools = (valgrind, control)
    setups = ["h11", "httptools"] if args.http == "both" else [args.http]
    if "httptools" in setups and not all(importlib.util.find_spec(m) for m in ("httptools", "uvloop")):
        print("httptools: not measured (uvicorn[standard]'s httptools/uvloop not installed)")
        setups.remove("httptools")
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.keep or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        per_request: dict[tuple[str, str], float] = {}
        for setup in setups:
            for variant in variants:
                total, busy, idle = count(variant, setup, args.low, args.high, out_dir, tools, args.idle)
                n = args.high - args.low
                raw = total / n
                # Without uvicorn's ticks: the idle run's instructions per second, times the requests' seconds.
                per_request[variant, setup] = (total - idle / args.idle * busy) / n if args.idle else raw
                print(
                    f"{variant:12} {setup:9} {per_request[variant, setup]:10,.0f} instructions/request"
                    f" (raw {raw:,.0f}, {busy:.1f} s, ticks {idle:,} instructions in {args.idle:g} s idle)",
                    flush=True,
                )
    print_table(per_request, variants, setups)
    return 0


def print_table(per_request: dict[tuple[str, str], float], variants: list[str], setups: list[str]) -> None:
    """A Markdown table: instructions per request, and over bare and over the variant's floor."""
    print(f"\n| variant | {' | '.join(f'{s} instr/request | over bare | over its floor' for s in setups)} |")
    print(f"|---|{'---:|---:|---:|' * len(setups)}")
    for variant in variants:
        floor = {"ours": "floor", **{layer: f"floor_{layer}" for layer in LAYERS}}.get(variant)
        cells = []
        for setup in setups:
            value = per_request[variant, setup]
            bare = per_request.get(("bare", setup))
            base = per_request.get((floor, setup)) if floor else None
            cells += [
                f"{value:,.0f}",
                f"{value - bare:+,.0f}" if bare is not None else "",
                f"{value - base:+,.0f}" if base is not None else "",
            ]
        print(f"| {variant} | {' | '.join(cells)} |")


if __name__ == "__main__":
    raise SystemExit(main())
