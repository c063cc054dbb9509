"""The ``backend-guard`` command: ``demo``, ``calibrate``, ``keys``, ``check``, ``digest``, and ``locks``,
``limits`` and ``tokens`` (the operator verbs of :mod:`backend_guard.operate`).

Example::

    backend-guard demo                      # the FastAPI example on http://127.0.0.1:8000 (memory store)
    backend-guard demo --redis redis://127.0.0.1:6379/0
    backend-guard calibrate --target-ms 250
    backend-guard keys --algorithm EdDSA
    backend-guard check http://127.0.0.1:8000/ --origin https://app.example.com
    backend-guard locks list --store redis://127.0.0.1:6379/0
    backend-guard locks unlock --account alice --by jane
    backend-guard digest user-42            # the subject_id its events show (BACKEND_GUARD_DIGEST_KEY set)
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from . import events
from ._command_parser import CommandParser, printable
from ._keys import generate_key
from .cors import parse_origin
from .exceptions import GuardError
from .headers import is_document_type
from .operate._cli import add_commands, reader_left, run_command
from .operate._cli import operate_parser as operate_parser
from .operate._limits import client_key
from .passwords import calibrate
from .storage import open_store
from .storage._redis_connect import redact

__all__ = ["CommandParser", "Report", "build_parser", "grade_headers", "main", "operate_parser"]

# -- arguments ----------------------------------------------------------------------------------------------------

#: The grade scale of ``check``: (lowest score, letter), best first; A+ is a score of 100 with no advice.
GRADES = ((90, "A"), (75, "B"), (60, "C"), (45, "D"))
_SCALE = (
    "the score starts at 100 and each finding takes points off (0 at worst); A+ is 100 with no advice, "
    + ", ".join(f"{letter} >= {floor}" for floor, letter in GRADES)
    + ", F below"
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP method is a token (RFC 9110 section 5.6.2)


def _checked(kind: str, convert: Callable[[str], Any], ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}")
        return value

    return parse


_positive_ms = _checked("a positive number of milliseconds", float, lambda v: math.isfinite(v) and v > 0)
_positive_int = _checked("a positive whole number", int, lambda v: v > 0)
_port = _checked("a TCP port (1-65535)", int, lambda v: 1 <= v <= 65535)
_host = _checked("a host name or address", str, lambda v: bool(v) and v.isprintable() and " " not in v)
_method = _checked("an HTTP method (e.g. POST)", str, lambda v: _TOKEN.fullmatch(v) is not None)


def _url_parts_ok(text: str) -> bool:
    """True when ``text`` parses as an http:// or https:// URL with a host (and, if any, a valid port)."""
    try:
        parts = urllib.parse.urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return False
    return port_ok and parts.scheme in ("http", "https") and bool(parts.hostname)


def _plain_text(text: str) -> bool:
    """True for printable ASCII without spaces (what a URL typed on a command line must be)."""
    return text.isascii() and text.isprintable() and " " not in text


def _http_url(text: str) -> str:
    if not (_url_parts_ok(text) and _plain_text(text)):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text


def _origin(text: str) -> str:
    if parse_origin(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an origin (scheme://host[:port], no path)")
    return text


# -- commands -----------------------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    """Serve the example app; its lines go to the terminal, beside uvicorn's log (``out`` is not used)."""
    try:
        import fastapi  # noqa: F401  (the example app's framework, imported by uvicorn below)
        import uvicorn
    except ImportError as exc:  # a core, Flask or Django install: one line, not a traceback
        print(
            f"backend-guard demo: the demo app needs FastAPI and uvicorn ({exc.name} is not installed): "
            'pip install "backend-guard[fastapi,server]"',
            file=sys.stderr,
        )
        return 1

    try:
        socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        args.parser.error(f"argument --host: {args.host!r} does not resolve to an address")
    if args.redis:
        open_store(args.redis).close()  # a bad URL is a usage error now, not a traceback in the app
        os.environ["BACKEND_GUARD_DEMO_STORE"] = args.redis
    store = redact(args.redis) if args.redis else "memory://"  # its password, if any, never on the terminal
    print(f"backend_guard demo on http://{args.host}:{args.port}/  (store: {store})")
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
    params = calibrate(target_ms=args.target_ms, memory_cost=args.memory_kib, parallelism=args.parallelism)
    print(f"argon2id parameters for about {args.target_ms:g} ms on this host:", file=out)
    values = f"time_cost={params.time_cost}, memory_cost={params.memory_cost}, parallelism={params.parallelism}"
    print(f"  {values}", file=out)
    print(f"  bg.PasswordHasher(bg.Argon2Parameters({values}))", file=out)
    return 0


def _digest(args: argparse.Namespace, out: TextIO) -> int:
    if not events.digest_key_configured():
        print(
            f"backend-guard digest: {events.DIGEST_KEY_ENV} is not set: the app's digests use a random key per "
            "process, which no other process can reproduce; set the same key in the app and here.",
            file=sys.stderr,
        )
        return 1
    text = client_key(args.value, None, args.ipv6_prefix) if args.address else args.value
    print(events.digest(text), file=out)
    return 0


def _keys(args: argparse.Namespace, out: TextIO) -> int:
    secret, jwk = generate_key(args.algorithm)
    if jwk.get("kty") == "oct":
        print(
            f"# {args.algorithm} shared secret: keep it secret (e.g. BACKEND_GUARD_TOKENS__KEY); never commit it.",
            file=out,
        )
        print(secret, file=out)
        print(
            f"# {args.algorithm} is symmetric: there is no public key or JWKS to publish; every service that", file=out
        )
        print(
            "# verifies tokens needs this same secret. Use EdDSA or ES256 to let others verify with a JWKS.", file=out
        )
        return 0
    print("# Private signing key: keep it secret (e.g. BACKEND_GUARD_TOKENS__KEY); never commit it.", file=out)
    print(secret, file=out)
    print("# Public JWKS (safe to publish):", file=out)
    print(json.dumps({"keys": [jwk]}, indent=2), file=out)
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
        """A+ (100 with no advice), A (>= 90), B (>= 75), C (>= 60), D (>= 45), else F."""
        if self.score >= 100 and not self.advice:
            return "A+"
        for floor, letter in GRADES:
            if self.score >= floor:
                return letter
        return "F"

    def fail(self, points: int, advice: str) -> None:
        """Take ``points`` off the score (never below 0) and record ``advice``."""
        self.score = max(0, self.score - points)
        self.advice.append(advice)

    def ok(self, what: str) -> None:
        self.passed.append(what)


#: How much of an HTML page ``check`` reads to see what the page uses (stylesheets, scripts, forms).
_BODY_LIMIT = 512 * 1024


def _csp_directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for chunk in csp.split(";"):
        tokens = chunk.split()
        if tokens and tokens[0].lower() not in out:  # a browser uses the first of a repeated directive
            out[tokens[0].lower()] = [t.lower() for t in tokens[1:]]
    return out


def _blocks_everything(directives: dict[str, list[str]], *names: str) -> bool:
    """True when the first of ``names`` present (a fetch directive falls back to default-src) is 'none'."""
    for name in names:
        if name in directives:
            return directives[name] == ["'none'"]
    return False


_DOCUMENT_POLICY = (
    "an HTML page needs a document policy (default-src 'self'; form-action 'self'; ...), as backend_guard sends"
)
#: What a CSP can block of an HTML page's own parts: (the directives, the first present deciding; the markup
#: that shows the page uses the part; points; advice), in the order ``check`` reports them.
_PAGE_PARTS = (
    (
        ("style-src-elem", "style-src", "default-src"),
        ("stylesheet", "<style"),
        15,
        f"CSP blocks every stylesheet of this HTML page, its own too: it renders unstyled; {_DOCUMENT_POLICY}.",
    ),
    (
        ("script-src-elem", "script-src", "default-src"),
        ("<script",),
        10,
        f"CSP blocks every script of this HTML page, its own too; {_DOCUMENT_POLICY}.",
    ),
    (
        ("form-action",),
        ("<form",),
        15,
        f"CSP form-action 'none' stops this HTML page's own forms from being sent; {_DOCUMENT_POLICY}.",
    ),
)


def _page_breakage(csp: str, body: str) -> list[tuple[int, str]]:
    """What the CSP of an HTML page blocks of the page itself: (points, advice) for each broken part."""
    directives = _csp_directives(csp)
    page = body.lower()
    return [
        (points, advice)
        for names, markup, points, advice in _PAGE_PARTS
        if _blocks_everything(directives, *names) and any(mark in page for mark in markup)
    ]


def _fail_all(report: Report, findings: list[tuple[int, str]]) -> None:
    for points, advice in findings:
        report.fail(points, advice)


def _grade_framing(headers: dict[str, str], r: Report) -> None:
    if "frame-ancestors" not in headers.get("content-security-policy", "").lower() and "x-frame-options" not in headers:
        r.fail(20, "Forbid framing: CSP frame-ancestors 'none' or X-Frame-Options: DENY.")


def _inline_scripts_allowed(lowered_csp: str) -> bool:
    """True when the CSP allows inline scripts: 'unsafe-inline' with no nonce or 'strict-dynamic' to void it."""
    return "'unsafe-inline'" in lowered_csp and "'nonce-" not in lowered_csp and "'strict-dynamic'" not in lowered_csp


def _csp_weaknesses(lowered_csp: str) -> list[tuple[int, str]]:
    """What a (lower-cased) CSP leaves open: inline scripts, no default-src fallback."""
    found = []
    if _inline_scripts_allowed(lowered_csp):
        found.append((20, "CSP allows 'unsafe-inline' scripts: use nonces (bg.csp_nonce) instead."))
    if "default-src" not in lowered_csp:
        found.append((10, "CSP has no default-src fallback."))
    return found


def _document_breakage(headers: dict[str, str], csp: str, body: str) -> list[tuple[int, str]]:
    """What the CSP blocks of the page itself when the response is an HTML page (nothing otherwise)."""
    return _page_breakage(csp, body) if is_document_type(headers.get("content-type", "")) else []


def _grade_csp(headers: dict[str, str], body: str, r: Report) -> None:
    csp = headers.get("content-security-policy", "")
    if not csp:
        r.fail(25, "Add a Content-Security-Policy (bg.SecureHeaders() does, with a strict default).")
        return
    lowered = csp.lower()
    _fail_all(r, _csp_weaknesses(lowered))
    broken = _document_breakage(headers, csp, body)
    _fail_all(r, broken)
    if "default-src" in lowered and not broken:
        r.ok("Content-Security-Policy")


def _grade_hsts(headers: dict[str, str], r: Report) -> None:
    if "max-age=" not in headers.get("strict-transport-security", ""):
        r.fail(20, "Send Strict-Transport-Security on HTTPS responses.")
    else:
        r.ok("Strict-Transport-Security")


def _grade_basics(headers: dict[str, str], r: Report) -> None:
    """The headers every response should carry: nosniff, a referrer policy, a cross-origin opener policy."""
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


def _discloses(name: str, value: str) -> bool:
    """True when a header tells the software (a version number, or any X-Powered-By)."""
    return any(ch.isdigit() for ch in value) or (name == "x-powered-by" and bool(value))


def _grade_disclosure(headers: dict[str, str], r: Report) -> None:
    for name in ("server", "x-powered-by", "x-aspnet-version"):
        if _discloses(name, headers.get(name, "")):
            r.fail(2, f"Remove the {name} header: it discloses the software you run.")


def grade_headers(headers: dict[str, str], *, https: bool, body: str = "") -> Report:
    """Grade lower-cased response headers the way a careful reviewer would (a subset of MDN's checks).

    ``body`` is the response's text: for an HTML page, a CSP that would block the page's own stylesheets,
    scripts or forms (``default-src 'none'``, ``form-action 'none'``) takes points off too.

    Example::

        grade_headers({"x-content-type-options": "nosniff"}, https=True).grade   # 'F' (no CSP, no HSTS, ...)
    """
    r = Report()
    _grade_framing(headers, r)
    _grade_csp(headers, body, r)
    if https:
        _grade_hsts(headers, r)
    _grade_basics(headers, r)
    _grade_disclosure(headers, r)
    return r


class _FetchFailed(Exception):
    pass


def _fetch(url: str, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    status, found, _ = _fetch_page(url, method, headers)
    return status, found


def _fetch_page(url: str, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """Status, lower-cased headers and, for an HTML page, the start of its text (at most ``_BODY_LIMIT`` bytes)."""
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310 - a URL the user gave
    try:
        try:
            response = urllib.request.urlopen(request, timeout=10)  # noqa: S310
        except urllib.error.HTTPError as exc:
            response = exc
        with response:
            found = {k.lower(): v for k, v in response.headers.items()}
            document = is_document_type(found.get("content-type", ""))
            body = response.read(_BODY_LIMIT).decode("utf-8", "replace") if document else ""
            return response.status, found, body
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise _FetchFailed(f"could not fetch {url} ({method}): {exc}") from None


def _check(args: argparse.Namespace, out: TextIO) -> int:
    try:
        return _grade(args, out)
    except _FetchFailed as exc:
        print("backend-guard check: " + printable(" ".join(str(exc).split())), file=sys.stderr)  # a server's words too
        return 2


#: The origin ``check`` sends to see whether CORS reflects any origin.
_EVIL_ORIGIN = "https://evil.invalid"


def _cors_findings(allowed: str | None, credentials: bool) -> list[tuple[int, str]]:
    """What the answer to a request from :data:`_EVIL_ORIGIN` says of the CORS policy: (points, advice)."""
    if allowed == _EVIL_ORIGIN:
        return [(40 if credentials else 15, "CORS reflects an arbitrary Origin: list allowed origins explicitly.")]
    if allowed == "*" and credentials:
        return [(40, "CORS allows * with credentials: refused by browsers and unsafe.")]
    return []


def _preflight_findings(headers: dict[str, str]) -> list[tuple[int, str]]:
    """What a preflight's answer says of caching: an Origin-dependent answer must say ``Vary: Origin``."""
    if "origin" not in headers.get("vary", "").lower() and headers.get("access-control-allow-origin", "*") != "*":
        return [(5, "Responses that depend on Origin must send Vary: Origin.")]
    return []


def _print_headers(headers: dict[str, str], names: Iterable[str], out: TextIO) -> None:
    for name in sorted(names):
        print(f"  {printable(name)}: {printable(headers[name])}", file=out)


def _check_cors(url: str, report: Report, out: TextIO) -> None:
    _, headers = _fetch(url, "GET", {"Origin": _EVIL_ORIGIN})
    allowed = headers.get("access-control-allow-origin")
    credentials = headers.get("access-control-allow-credentials", "").lower() == "true"
    print(f"CORS, Origin: {_EVIL_ORIGIN} -> Access-Control-Allow-Origin: {printable(allowed or '(none)')}", file=out)
    _fail_all(report, _cors_findings(allowed, credentials))


def _check_preflight(url: str, origin: str, method: str, report: Report, out: TextIO) -> None:
    status, headers = _fetch(url, "OPTIONS", {"Origin": origin, "Access-Control-Request-Method": method})
    print(f"CORS preflight, Origin: {origin} {method} -> {status}", file=out)
    _print_headers(headers, (h for h in headers if h.startswith("access-control-") or h == "vary"), out)
    _fail_all(report, _preflight_findings(headers))


def _grade(args: argparse.Namespace, out: TextIO) -> int:
    url: str = args.url
    status, headers, body = _fetch_page(url, "GET", {"Accept": "*/*"})
    print(f"GET {url} -> {status}", file=out)
    _print_headers(headers, headers, out)
    report = grade_headers(headers, https=url.startswith("https://"), body=body)
    _check_cors(url, report, out)
    if args.origin:
        _check_preflight(url, args.origin, args.method, report, out)
    print(f"\nGrade: {report.grade} (score {report.score} of 100; {_SCALE})", file=out)
    for line in report.advice:
        print(f"  - {printable(line)}", file=out)
    return 0 if report.grade in ("A+", "A") else 1


def build_parser() -> CommandParser:
    """The ``backend-guard`` argument parser (its subcommands in ``.commands``, each one's options in ``.options``).

    Example::

        args = build_parser().parse_args(["calibrate", "--target-ms", "250"])
    """
    parser = CommandParser(prog="backend-guard", description="backend_guard tools")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CommandParser, help="the tool to run"
    )
    demo = parser.command(sub, "demo", "serve the FastAPI example app on loopback (memory store by default)")
    demo.add_argument("--host", type=_host, default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    demo.add_argument("--port", type=_port, default=8000, help="TCP port to listen on, 1-65535 (default: 8000)")
    demo.add_argument("--redis", default=None, help="share state through this store URL, e.g. redis://127.0.0.1:6379/0")
    cal = parser.command(sub, "calibrate", "argon2id parameters for a target hashing time on this host")
    cal.add_argument(
        "--target-ms", type=_positive_ms, default=100.0, help="hashing time to aim for, in ms (default: 100)"
    )
    cal.add_argument(
        "--memory-kib",
        type=_positive_int,
        default=19456,
        help="argon2 memory per hash in KiB, at least 7168 (OWASP) and at most 4 GiB (default: 19456)",
    )
    cal.add_argument("--parallelism", type=_positive_int, default=1, help="argon2 lanes per hash, 1-255 (default: 1)")
    keys = parser.command(sub, "keys", "a new JWT signing key (and, for EdDSA/ES256/RS256, its public JWKS)")
    keys.add_argument(
        "--algorithm",
        default="EdDSA",
        choices=["EdDSA", "ES256", "RS256", "HS256", "HS384", "HS512"],
        help="JWT algorithm; HS* give a shared secret with nothing to publish (default: EdDSA)",
    )
    check = parser.command(
        sub,
        "check",
        "grade a running app's security headers and CORS answers: a score of 0-100 and a grade, A+ to F",
        f"Grade a running app's security headers and CORS answers: {_SCALE}. Exit status 0 for A+ or A, 1 for a "
        "lower grade, 2 when the app cannot be fetched.",
    )
    check.add_argument("url", type=_http_url, help="the http:// or https:// URL of a page of the app")
    check.add_argument(
        "--origin", type=_origin, default=None, help="an origin that should be allowed (adds a preflight check)"
    )
    check.add_argument(
        "--method", type=_method, default="POST", help="the method of that preflight check (default: POST)"
    )
    dig = parser.command(
        sub,
        "digest",
        "the digest that stands for a subject or a client key in events and audit records (same key as the app)",
    )
    dig.add_argument("value", help="a subject (the tokens' sub claim) or a rate limit client key (ip:203.0.113.7)")
    dig.add_argument("--address", action="store_true", help="VALUE is a client address: digest its client key")
    dig.add_argument(
        "--ipv6-prefix", type=_positive_int, default=64, help="with --address: the IPv6 bucket (default: 64)"
    )
    for command in parser.commands.values():
        command.set_defaults(parser=command)
    add_commands(parser, sub)  # after: each verb is its own parser
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``backend-guard`` command; bad input is a one-line usage error with exit status 2.

    Example::

        main(["keys", "--algorithm", "ES256"])
    """
    stream = out if out is not None else sys.stdout
    if stream is None:  # started with stdout closed (``>&-``): a new key or a listing would vanish without a word
        print("backend-guard: standard output is closed: nothing would be shown", file=sys.stderr)
        return 1
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args, stream)
    except GuardError as exc:  # a value the library refuses (ConfigurationError): a usage error, not a traceback
        command: CommandParser = args.parser
        command.error(exc.detail)
    except KeyboardInterrupt:
        print(f"backend-guard {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (``| head``): no traceback, and none at exit when stdout is flushed
        reader_left()
        return 1


#: What runs each subcommand: (its arguments, the output stream) -> exit status.
_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "demo": _demo,
    "calibrate": _calibrate,
    "keys": _keys,
    "check": _check,
    "digest": _digest,
    "locks": run_command,
    "limits": run_command,
    "tokens": run_command,
}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
