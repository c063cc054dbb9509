"""The ``backend-guard`` command: ``demo``, ``calibrate``, ``keys`` and ``check``.

Example::

    backend-guard demo                      # the FastAPI example on http://127.0.0.1:8000 (memory store)
    backend-guard demo --redis redis://127.0.0.1:6379/0
    backend-guard calibrate --target-ms 250
    backend-guard keys --algorithm EdDSA
    backend-guard check http://127.0.0.1:8000/ --origin https://app.example.com
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["Report", "grade_headers", "main"]


def _demo(args: argparse.Namespace) -> int:
    import uvicorn

    if args.redis:
        os.environ["BACKEND_GUARD_DEMO_STORE"] = args.redis
    print(f"backend_guard demo on http://{args.host}:{args.port}/  (store: {args.redis or 'memory://'})")
    print("  POST /register, POST /login, POST /refresh, GET /me, POST /logout-all, GET / (CSP nonce page)")
    uvicorn.run(
        "backend_guard.examples.fastapi_app:app",
        host=args.host,
        port=args.port,
        log_level="info",
        server_header=False,
    )
    return 0


def _calibrate(args: argparse.Namespace, out: TextIO) -> int:
    from .passwords import calibrate

    params = calibrate(target_ms=args.target_ms, memory_cost=args.memory_kib, parallelism=args.parallelism)
    print(f"argon2id parameters for about {args.target_ms:g} ms on this host:", file=out)
    values = f"time_cost={params.time_cost}, memory_cost={params.memory_cost}, parallelism={params.parallelism}"
    print(f"  {values}", file=out)
    print(f"  bg.PasswordHasher(bg.Argon2Parameters({values}))", file=out)
    return 0


def _keys(args: argparse.Namespace, out: TextIO) -> int:
    from ._keys import generate_key

    secret, jwk = generate_key(args.algorithm)
    print("# Private signing key: keep it secret (e.g. BACKEND_GUARD_TOKENS__KEY); never commit it.", file=out)
    print(secret, file=out)
    print("# Public JWKS (safe to publish):", file=out)
    print(json.dumps({"keys": [jwk]} if jwk.get("kty") != "oct" else {"keys": []}, indent=2), file=out)
    return 0


# -- check --------------------------------------------------------------------------------------------------------


@dataclass
class Report:
    """A grade of a response's security headers and CORS answers, with advice.

    Example::

        report = grade_headers({"content-security-policy": "default-src 'none'"}, https=False)
        report.grade, report.advice
    """

    score: int = 100
    advice: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def grade(self) -> str:
        """A+ (>= 100 with no advice) down to F."""
        if self.score >= 100 and not self.advice:
            return "A+"
        for floor, letter in ((90, "A"), (75, "B"), (60, "C"), (45, "D")):
            if self.score >= floor:
                return letter
        return "F"

    def fail(self, points: int, advice: str) -> None:
        self.score -= points
        self.advice.append(advice)

    def ok(self, what: str) -> None:
        self.passed.append(what)


def grade_headers(headers: dict[str, str], *, https: bool) -> Report:
    """Grade lower-cased response headers the way a careful reviewer would (a subset of MDN's checks).

    Example::

        grade_headers({"x-content-type-options": "nosniff"}, https=True).grade   # 'F' (no CSP, no HSTS, ...)
    """
    r = Report()
    csp = headers.get("content-security-policy", "")
    lowered = csp.lower()
    if "frame-ancestors" not in lowered and "x-frame-options" not in headers:
        r.fail(20, "Forbid framing: CSP frame-ancestors 'none' or X-Frame-Options: DENY.")
    if not csp:
        r.fail(25, "Add a Content-Security-Policy (bg.SecureHeaders() does, with a strict default).")
    else:
        if "'unsafe-inline'" in lowered and "'nonce-" not in lowered and "'strict-dynamic'" not in lowered:
            r.fail(20, "CSP allows 'unsafe-inline' scripts: use nonces (bg.csp_nonce) instead.")
        if "default-src" not in lowered:
            r.fail(10, "CSP has no default-src fallback.")
        else:
            r.ok("Content-Security-Policy")
    if https:
        hsts = headers.get("strict-transport-security", "")
        if "max-age=" not in hsts:
            r.fail(20, "Send Strict-Transport-Security on HTTPS responses.")
        else:
            r.ok("Strict-Transport-Security")
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        r.fail(5, "Send X-Content-Type-Options: nosniff.")
    else:
        r.ok("X-Content-Type-Options")
    if "referrer-policy" not in headers:
        r.fail(5, "Send a Referrer-Policy (no-referrer or strict-origin-when-cross-origin).")
    else:
        r.ok("Referrer-Policy")
    if "cross-origin-opener-policy" not in headers:
        r.fail(3, "Send Cross-Origin-Opener-Policy: same-origin.")
    for name in ("server", "x-powered-by", "x-aspnet-version"):
        value = headers.get(name, "")
        if any(ch.isdigit() for ch in value) or (name == "x-powered-by" and value):
            r.fail(2, f"Remove the {name} header: it discloses the software you run.")
    return r


def _fetch(url: str, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310 - a URL the user gave
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


def _check(args: argparse.Namespace, out: TextIO) -> int:
    url: str = args.url
    if not url.startswith(("http://", "https://")):
        print("check needs an http:// or https:// URL", file=sys.stderr)
        return 2
    try:
        status, headers = _fetch(url, "GET", {"Accept": "*/*"})
    except (OSError, ValueError) as exc:
        print(f"could not fetch {url}: {exc}", file=sys.stderr)
        return 2
    print(f"GET {url} -> {status}", file=out)
    for name in sorted(headers):
        print(f"  {name}: {headers[name]}", file=out)
    report = grade_headers(headers, https=url.startswith("https://"))

    evil = "https://evil.invalid"
    _, evil_headers = _fetch(url, "GET", {"Origin": evil})
    acao = evil_headers.get("access-control-allow-origin")
    creds = evil_headers.get("access-control-allow-credentials", "").lower() == "true"
    print(f"CORS, Origin: {evil} -> Access-Control-Allow-Origin: {acao or '(none)'}", file=out)
    if acao == evil:
        report.fail(40 if creds else 15, "CORS reflects an arbitrary Origin: list allowed origins explicitly.")
    elif acao == "*" and creds:
        report.fail(40, "CORS allows * with credentials: refused by browsers and unsafe.")
    if args.origin:
        pstatus, pre = _fetch(url, "OPTIONS", {"Origin": args.origin, "Access-Control-Request-Method": args.method})
        print(f"CORS preflight, Origin: {args.origin} {args.method} -> {pstatus}", file=out)
        for name in sorted(h for h in pre if h.startswith("access-control-") or h == "vary"):
            print(f"  {name}: {pre[name]}", file=out)
        if "origin" not in pre.get("vary", "").lower() and pre.get("access-control-allow-origin", "*") != "*":
            report.fail(5, "Responses that depend on Origin must send Vary: Origin.")
    print(f"\nGrade: {report.grade} (score {report.score})", file=out)
    for line in report.advice:
        print(f"  - {line}", file=out)
    return 0 if report.grade in ("A+", "A") else 1


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``backend-guard`` command.

    Example::

        main(["keys", "--algorithm", "ES256"])
    """
    stream = out if out is not None else sys.stdout
    parser = argparse.ArgumentParser(prog="backend-guard", description="backend_guard tools")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="serve the FastAPI example app")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--redis", default=None, help="share state through this Redis URL")
    cal = sub.add_parser("calibrate", help="argon2id parameters for a target time on this host")
    cal.add_argument("--target-ms", type=float, default=100.0)
    cal.add_argument("--memory-kib", type=int, default=19456)
    cal.add_argument("--parallelism", type=int, default=1)
    keys = sub.add_parser("keys", help="a new signing key and its JWKS")
    keys.add_argument("--algorithm", default="EdDSA", choices=["EdDSA", "ES256", "RS256", "HS256", "HS384", "HS512"])
    check = sub.add_parser("check", help="grade a running app's security headers and CORS answers")
    check.add_argument("url")
    check.add_argument("--origin", default=None, help="an origin that should be allowed (preflight check)")
    check.add_argument("--method", default="POST")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command == "calibrate":
        return _calibrate(args, stream)
    if args.command == "keys":
        return _keys(args, stream)
    return _check(args, stream)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
