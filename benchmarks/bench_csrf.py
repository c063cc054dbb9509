"""Benchmark the browser-session decisions: CrossOriginProtection.check, TrustedHosts.allows, HTTPSRedirect.

The sans-IO decisions alone (the shells' header reading comes with the middlewares), each call with the values
an ASGI shell would hand over (``bytes`` headers), in interleaved shuffled rounds with medians (see _harness.py):

- ``empty call`` (the baseline): a function call returning a constant, the floor of any decision;
- ``csrf GET``: a safe method (the first test, the most common request);
- ``csrf POST same-origin``: ``Sec-Fetch-Site: same-origin`` (every current browser's own-page request);
- ``csrf POST cross-site``: refused by Fetch Metadata;
- ``csrf POST Origin only``: no Fetch Metadata, ``Origin`` parsed and compared with the request's own origin;
- ``hosts exact`` / ``hosts port`` / ``hosts wildcard``: ``Host`` as configured, with a port, and a subdomain
  with a port (parsed);
- ``redirect http``: an HTTPS redirect decided and its ``Location`` built.

Then the same protection on the ASGI stack, with a browser's headers (Host, User-Agent, Accept, Cookie...):

- ``asgi layer ...``: the ``CrossOriginProtectionMiddleware``'s request step on a scope (what ``asgi.Guard``
  runs per request: the headers read, the decision) for a GET, a same-origin POST with Fetch Metadata, a POST
  with ``Origin`` only (older browsers), a WebSocket handshake with ``Origin`` only; over an empty call;
- ``asgi middleware ...``: a whole call of the middleware alone around a bare app, over the bare app's call.

Target (issue #25): protection adds <= 2 µs per request on the ASGI stack, for the requests that pass (a
refusal may cost more): checked on the layer step (Guard) and on the middleware alone; the headline of
benchmarks/run.py reports it. CPU time (``time.process_time``): steadier on a loaded machine.

Usage::

    python benchmarks/bench_csrf.py            # full run
    python benchmarks/bench_csrf.py --quick    # smoke run, a few seconds

Writes benchmarks/results/csrf.json (and .md); ``--quick`` writes csrf-quick.*.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, save, table

import backend_guard as bg
from backend_guard.asgi import CrossOriginProtectionMiddleware

BUDGET_US = 2.0
CSRF = bg.CrossOriginProtection(trusted_origins=["https://admin.example.com"])
HOSTS = bg.TrustedHosts(["example.com", "*.example.com"])
REDIRECT = bg.HTTPSRedirect(exempt_paths=("/health",), trusted_hosts=HOSTS)
SAME = [b"same-origin"]
CROSS = [b"cross-site"]
OWN_ORIGIN = [b"https://example.com"]


#: What a browser sends besides the headers the decision reads (the layer scans them all).
BROWSER = [
    (b"host", b"example.com"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-GB,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"cookie", b"session=0123456789abcdef0123456789abcdef; theme=dark"),
]
LAYER_CASES = (
    "asgi layer GET",
    "asgi layer POST same-origin",
    "asgi layer POST Origin only",
    "asgi layer ws Origin only",
)
MIDDLEWARE_CASES = ("asgi middleware GET", "asgi middleware POST same-origin", "asgi middleware POST Origin only")


def _check(method: str, sites: list[bytes], origins: list[bytes]) -> Callable[[], object]:
    check = CSRF.check
    return lambda: check(method, scheme="https", host="example.com", sec_fetch_site=sites, origin=origins)


def _scope(method: str | None, extra: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """An ASGI scope as uvicorn hands it over (``method`` None: a WebSocket handshake)."""
    kind, scheme = ("websocket", "wss") if method is None else ("http", "https")
    scope: dict[str, Any] = {"type": kind, "scheme": scheme, "path": "/form", "headers": [*BROWSER, *extra]}
    if method is not None:
        scope["method"] = method
    return scope


SCOPES = {
    "GET": _scope("GET", [(b"sec-fetch-site", b"same-origin")]),
    "POST same-origin": _scope("POST", [(b"origin", b"https://example.com"), (b"sec-fetch-site", b"same-origin")]),
    "POST Origin only": _scope("POST", [(b"origin", b"https://example.com")]),
    "ws Origin only": _scope(None, [(b"origin", b"https://example.com")]),
}


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    return None


def _layer_cases() -> dict[str, Callable[[], object]]:
    """The layer's request step on each scope (what Guard runs), checked to let each request through."""
    on_request = CrossOriginProtectionMiddleware(_bare, policy=CSRF).on_request
    cases: dict[str, Callable[[], object]] = {"empty call": lambda: None}
    for name, scope in SCOPES.items():
        assert on_request(scope) is None, name  # passes: None, nothing to do on the response
        cases[f"asgi layer {name}"] = lambda scope=scope: on_request(scope)  # type: ignore[misc]
    return cases


def _middleware_cases() -> dict[str, Callable[[], Awaitable[object]]]:
    """A whole call of the middleware alone around a bare app, and the bare app's call (the baseline)."""
    middleware = CrossOriginProtectionMiddleware(_bare, policy=CSRF)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        return None

    cases: dict[str, Callable[[], Awaitable[object]]] = {"bare app": lambda: _bare(SCOPES["GET"], receive, send)}
    for name in ("GET", "POST same-origin", "POST Origin only"):
        scope = SCOPES[name]
        cases[f"asgi middleware {name}"] = lambda scope=scope: middleware(scope, receive, send)  # type: ignore[misc]
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    rounds, calls = (5, 2000) if args.quick else (21, 20000)

    allows = HOSTS.allows
    redirect = REDIRECT.redirect
    cases: dict[str, Callable[[], object]] = {
        "empty call": lambda: None,
        "csrf GET": _check("GET", [], []),
        "csrf POST same-origin": _check("POST", SAME, OWN_ORIGIN),
        "csrf POST cross-site": _check("POST", CROSS, [b"https://evil.example"]),
        "csrf POST Origin only": _check("POST", [], OWN_ORIGIN),
        "hosts exact": lambda: allows(b"example.com"),
        "hosts port": lambda: allows(b"example.com:8443"),
        "hosts wildcard": lambda: allows(b"api.example.com:8443"),
        "redirect http": lambda: redirect("GET", scheme="http", host=b"example.com", path="/a/b", query=b"x=1"),
    }
    assert _check("POST", SAME, OWN_ORIGIN)().allowed  # type: ignore[attr-defined]
    assert not _check("POST", CROSS, [])().allowed  # type: ignore[attr-defined]
    assert _check("POST", [], OWN_ORIGIN)().allowed  # type: ignore[attr-defined]
    assert allows(b"api.example.com:8443")
    clock = time.process_time
    results = compare(cases, "empty call", rounds=rounds, calls=calls, clock=clock)
    layer = compare(_layer_cases(), "empty call", rounds=rounds, calls=calls, clock=clock)
    middleware = compare(_middleware_cases(), "bare app", rounds=rounds, calls=calls, is_async=True, clock=clock)
    # The budget is for requests that pass (an attack's refusal may cost more): a safe method, a browser's
    # own-page request with Fetch Metadata, and one with Origin only (an older browser).
    worst = max(results[name].overhead_us for name in ("csrf GET", "csrf POST same-origin", "csrf POST Origin only"))
    worst_layer = max(layer[name].overhead_us for name in LAYER_CASES)
    worst_middleware = max(middleware[name].overhead_us for name in MIDDLEWARE_CASES)
    met = worst <= BUDGET_US
    met_asgi = max(worst_layer, worst_middleware) <= BUDGET_US
    md = table(results, "empty call", "Browser sessions: per decision (sans-IO)")
    md += "\n" + table(layer, "empty call", "Cross-origin protection on the ASGI stack: the layer's request step")
    md += "\n" + table(middleware, "bare app", "Cross-origin protection on the ASGI stack: the middleware alone")
    md += (
        f"\nCross-origin decision for passing requests (GET, same-origin POST, Origin-only POST): at most"
        f" {worst:.2f} µs over an empty call. On the ASGI stack: the layer's request step at most"
        f" {worst_layer:.2f} µs, the middleware alone at most {worst_middleware:.2f} µs over a bare app"
        f" ({'within' if met_asgi else 'OVER'} the {BUDGET_US} µs budget). CPU time.\n"
    )
    path = save(
        "csrf-quick" if args.quick else "csrf",
        {
            "quick": args.quick,
            "baseline": "empty call",
            "results": results,
            "asgi_layer": layer,
            "asgi_middleware": middleware,
            "targets": {
                "decision_us": worst,
                "asgi_layer_us": worst_layer,
                "asgi_middleware_us": worst_middleware,
                "asgi_us": max(worst_layer, worst_middleware),
                "budget_us": BUDGET_US,
                "met": met,
                "met_asgi": met_asgi,
            },
        },
        md,
    )
    print(md)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
