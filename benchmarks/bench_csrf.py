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

Target (issue #25): protection adds <= 2 µs per request on the ASGI stack; the decision for requests that pass
is checked against it here (the middleware's share is measured with the shells).

Usage::

    python benchmarks/bench_csrf.py            # full run
    python benchmarks/bench_csrf.py --quick    # smoke run, a few seconds

Writes benchmarks/results/csrf.json (and .md); ``--quick`` writes csrf-quick.*.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, save, table

import backend_guard as bg

BUDGET_US = 2.0
CSRF = bg.CrossOriginProtection(trusted_origins=["https://admin.example.com"])
HOSTS = bg.TrustedHosts(["example.com", "*.example.com"])
REDIRECT = bg.HTTPSRedirect(exempt_paths=("/health",), trusted_hosts=HOSTS)
SAME = [b"same-origin"]
CROSS = [b"cross-site"]
OWN_ORIGIN = [b"https://example.com"]


def _check(method: str, sites: list[bytes], origins: list[bytes]) -> Callable[[], object]:
    check = CSRF.check
    return lambda: check(method, scheme="https", host="example.com", sec_fetch_site=sites, origin=origins)


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
    results = compare(cases, "empty call", rounds=rounds, calls=calls)
    # The budget is for requests that pass (an attack's refusal may cost more): a safe method and a browser's
    # own-page request, the two a real application sees nearly always.
    worst = max(results[name].overhead_us for name in ("csrf GET", "csrf POST same-origin"))
    met = worst <= BUDGET_US
    md = table(results, "empty call", "Browser sessions: per decision (sans-IO)")
    md += (
        f"\nCross-origin decision for passing requests (GET, same-origin POST): at most {worst:.2f} µs over an"
        " empty call"
        f" ({'within' if met else 'OVER'} the {BUDGET_US} µs budget of the whole layer).\n"
    )
    path = save(
        "csrf-quick" if args.quick else "csrf",
        {
            "quick": args.quick,
            "baseline": "empty call",
            "results": results,
            "targets": {"decision_us": worst, "budget_us": BUDGET_US, "met": met},
        },
        md,
    )
    print(md)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
