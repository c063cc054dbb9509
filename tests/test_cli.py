"""The backend-guard command: keys, calibrate, check, and the demo served over real HTTP."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

import backend_guard as bg
from backend_guard import asgi as bg_asgi
from backend_guard.cli import build_parser, grade_headers, main

from .conftest import free_port
from .servers import run_asgi


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
def test_keys_makes_a_usable_key_and_a_public_jwks(algorithm: str) -> None:
    code, text = _run("keys", "--algorithm", algorithm)
    assert code == 0
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    json_start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    secret = "\n".join(lines[:json_start])
    jwks = json.loads("\n".join(lines[json_start:]))
    tm = bg.TokenManager(secret, algorithm, issuer="https://i", audience="a")
    assert tm.verify_access(tm.issue("u").access_token)["sub"] == "u"
    for key in jwks["keys"]:
        assert "d" not in key
        assert "k" not in key


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_keys_for_hmac_prints_a_usable_secret_and_no_public_jwks(algorithm: str) -> None:
    code, text = _run("keys", "--algorithm", algorithm)
    assert code == 0
    secrets = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(secrets) == 1  # the secret alone: no empty JWKS, no JSON at all
    assert "{" not in text
    assert "no public key or JWKS to publish" in text
    tm = bg.TokenManager(secrets[0], algorithm, issuer="https://i", audience="a")
    assert tm.verify_access(tm.issue("u").access_token)["sub"] == "u"


# Bad values for every option of every subcommand (numbers, choices, URLs, missing values, unknown commands).
BAD_ARGUMENTS = [
    ["calibrate", "--memory-kib", "1024"],
    ["calibrate", "--memory-kib", "99999999999"],
    ["calibrate", "--memory-kib", "-5"],
    ["calibrate", "--memory-kib", "1e4"],
    ["calibrate", "--memory-kib"],
    ["calibrate", "--target-ms", "-3"],
    ["calibrate", "--target-ms", "0"],
    ["calibrate", "--target-ms", "nan"],
    ["calibrate", "--target-ms", "inf"],
    ["calibrate", "--target-ms", "fast"],
    ["calibrate", "--parallelism", "0"],
    ["calibrate", "--parallelism", "999"],
    ["calibrate", "--parallelism", "two"],
    ["calibrate", "--memory-kib", "8192", "--parallelism", "2000"],
    ["demo", "--port", "0"],
    ["demo", "--port", "70000"],
    ["demo", "--port", "http"],
    ["demo", "--host", ""],
    ["demo", "--host", "no such host.invalid"],
    ["demo", "--redis", "localhost:6379"],
    ["demo", "--redis", "memory://?max_keys=lots"],
    ["keys", "--algorithm", "none"],
    ["keys", "--algorithm", "hs256"],
    ["check", "ftp://127.0.0.1/"],
    ["check", "127.0.0.1:8000"],
    ["check", "http://"],
    ["check", "http://127.0.0.1:99999/"],
    ["check", "http://[::1/"],
    ["check", "http://127.0.0.1/\nX-Injected: 1"],
    ["check", "http://127.0.0.1/", "--origin", "https://a.example/path"],
    ["check", "http://127.0.0.1/", "--origin", "a.example"],
    ["check", "http://127.0.0.1/", "--method", "GET /x"],
    ["check", "http://127.0.0.1/", "--method", ""],
    ["check"],
    ["calibrate", "--unknown"],
    ["calibrate", "--\x1b]0;pwned\x07"],
    ["locks", "list", "\x1b[2J"],
    ["nope"],
    [],
]


@pytest.mark.parametrize("argv", [["--help"], ["keys"], ["locks", "list"]])
def test_a_short_digest_key_is_one_line_for_every_command_not_a_traceback(argv: list[str]) -> None:
    # backend_guard.events refuses a BACKEND_GUARD_DIGEST_KEY under 16 bytes when it is imported: every command,
    # --help too, died with a traceback. The console script (what pip installs as `backend-guard`) says it in one
    # line with status 2.
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "backend-guard"]
    assert script.value == "backend_guard._cli_entry:main"
    run = f"from backend_guard._cli_entry import main; raise SystemExit(main({argv!r}))"
    env = {**os.environ, "BACKEND_GUARD_DIGEST_KEY": "short"}
    proc = subprocess.run(  # noqa: S603 - our own entry point, no network
        [sys.executable, "-c", run], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == (
        "backend-guard: BACKEND_GUARD_DIGEST_KEY: the digest key must be at least 16 bytes (e.g. `openssl rand -hex"
        " 32`).\n"
    )


@pytest.mark.parametrize("argv", BAD_ARGUMENTS, ids=lambda argv: " ".join(argv) or "(none)")
def test_bad_input_is_a_one_line_usage_error_with_status_2_never_a_traceback(argv: list[str]) -> None:
    proc = subprocess.run(  # noqa: S603 - our own entry point, no network
        [sys.executable, "-m", "backend_guard.cli", *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("backend-guard"), lines[0]
    assert "error:" in lines[0]
    assert lines[0].isprintable(), lines[0]  # an argument's escape sequence is quoted as ?, never raw


def test_every_option_of_every_subcommand_has_help_text() -> None:
    parser = build_parser()
    assert set(parser.commands) == {"demo", "calibrate", "keys", "check", "digest", "locks", "limits", "tokens"}
    for command in [parser, *parser.commands.values()]:
        assert command.description, command.prog
        for action in command.options:
            assert (action.help or "").strip(), (command.prog, action.dest)
    assert {a.dest for a in parser.commands["calibrate"].options} >= {"target_ms", "memory_kib", "parallelism"}


def test_an_unreachable_app_is_one_line_on_stderr_and_status_2() -> None:
    port = free_port()  # nothing listens there
    proc = subprocess.run(  # noqa: S603 - our own entry point, loopback only
        [sys.executable, "-m", "backend_guard.cli", "check", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert "could not fetch" in proc.stderr


def test_check_explains_its_score_scale_in_its_help() -> None:
    help_text = " ".join(build_parser().commands["check"].format_help().split())
    for part in ("starts at 100", "A+ is 100 with no advice", "A >= 90", "D >= 45", "F below", "Exit status 0"):
        assert part in help_text


def test_a_report_score_stays_on_its_0_to_100_scale() -> None:
    report = grade_headers({"x-powered-by": "PHP/8", "server": "nginx/1.2"}, https=True)
    report.fail(40, "CORS reflects an arbitrary Origin")
    assert report.score == 0
    assert report.grade == "F"


def test_calibrate_prints_parameters_at_or_above_owasp() -> None:
    code, text = _run("calibrate", "--target-ms", "30")
    assert code == 0
    assert "memory_cost=19456" in text
    assert "bg.PasswordHasher(bg.Argon2Parameters(" in text


def test_grade_headers_rewards_the_defaults_and_flags_gaps() -> None:
    assert grade_headers({}, https=True).grade == "F"
    weak = grade_headers(
        {"content-security-policy": "script-src 'unsafe-inline'", "x-powered-by": "PHP/8"}, https=False
    )
    assert weak.grade != "A+"
    assert any("unsafe-inline" in a for a in weak.advice)
    assert any("x-powered-by" in a for a in weak.advice)


@pytest.mark.server
def test_check_grades_a_guarded_app_above_a_bare_one() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("hi")

    bare = Starlette(routes=[Route("/", home)])
    guarded = bg_asgi.Guard(
        Starlette(routes=[Route("/", home)]), bg.GuardSettings(cors={"allow_origins": ["https://a.example"]})
    )
    with run_asgi(guarded) as url:
        code, text = _run("check", url + "/", "--origin", "https://a.example")
    assert code == 0, text
    assert "Grade: A+" in text
    assert "(score 100 of 100; the score starts at 100" in text  # the scale is explained in the output too
    assert "access-control-allow-origin: https://a.example" in text
    with run_asgi(bare) as url:
        code, text = _run("check", url + "/")
    assert code == 1
    assert "Grade: F" in text or "Grade: D" in text


@pytest.mark.server
def test_check_shows_a_servers_control_characters_as_question_marks_never_raw() -> None:
    # A header value with an escape sequence (set the window title, clear the screen) reached the terminal raw.
    # uvicorn refuses to send such a value: a raw server on loopback answers one fixed response.
    import socketserver
    import threading

    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n"
        b"X-Evil: \x1b]0;pwned\x07\x1b[2J\r\nAccess-Control-Allow-Origin: \x1b[31mred\r\n\r\nhi"
    )

    class Raw(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            self.request.sendall(answer)

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Raw) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            _, text = _run("check", f"http://127.0.0.1:{server.server_address[1]}/")
        finally:
            server.shutdown()
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "x-evil: ?]0;pwned??[2J" in text
    assert "Access-Control-Allow-Origin: ?[31mred" in text


@pytest.mark.server
def test_check_shows_a_malformed_status_lines_control_characters_as_question_marks() -> None:
    # http.client quotes a bad status line in its error, which reached stderr raw (review of 9e3782d).
    import socketserver
    import threading

    class Raw(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            self.request.sendall(b"\x1b]0;owned\x07\x1b[2J\x1b[32mGrade: A+\r\n\r\n")

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Raw) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            proc = subprocess.run(  # noqa: S603 - our own entry point, loopback only
                [sys.executable, "-m", "backend_guard.cli", "check", f"http://127.0.0.1:{server.server_address[1]}/"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            server.shutdown()
    assert proc.returncode == 2, proc.stderr
    assert "\x1b" not in proc.stderr
    assert "\x07" not in proc.stderr


PAGE = (
    '<!doctype html><html><head><link rel="stylesheet" href="/site.css"></head><body>'
    '<form method="post" action="/login"><input name="user"><button>Sign in</button></form></body></html>'
)
API_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def test_an_html_page_whose_csp_blocks_its_own_stylesheet_and_form_is_not_a_plus() -> None:
    headers = {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": API_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cross-origin-opener-policy": "same-origin",
    }
    report = grade_headers(headers, https=False, body=PAGE)
    assert report.grade != "A+"
    assert any("every stylesheet" in a and "unstyled" in a for a in report.advice), report.advice
    assert any("form-action 'none'" in a and "forms" in a for a in report.advice), report.advice
    # the same headers on JSON, or on a page with no stylesheet and no form, lose nothing for it
    assert grade_headers({**headers, "content-type": "application/json"}, https=False, body=PAGE).grade == "A+"
    assert grade_headers(headers, https=False, body="<!doctype html><p>hello</p>").grade == "A+"
    # the document policy backend_guard sends for HTML
    document = {**headers, "content-security-policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'"}
    assert grade_headers(document, https=False, body=PAGE).grade == "A+"


@pytest.mark.server
def test_check_grades_a_page_broken_by_its_csp_below_a_plus_and_the_default_page_a_plus() -> None:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def home(request: object) -> HTMLResponse:
        return HTMLResponse(PAGE)

    def app() -> Starlette:
        return Starlette(routes=[Route("/", home)])

    broken = bg_asgi.SecureHeadersMiddleware(app(), policy=bg.SecureHeaders(csp=API_CSP))
    with run_asgi(broken) as url:
        code, text = _run("check", url + "/")
    assert code == 1, text
    assert "Grade: A+" not in text
    assert "renders unstyled" in text
    assert "stops this HTML page's own forms from being sent" in text
    with run_asgi(bg_asgi.Guard(app())) as url:
        code, text = _run("check", url + "/")
    assert code == 0, text
    assert "Grade: A+" in text


@pytest.fixture
def demo_url() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BACKEND_GUARD_DEMO_FAST_HASH": "1"}
    proc = subprocess.Popen(  # noqa: S603 - our own entry point, loopback only
        [sys.executable, "-m", "backend_guard.cli", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "the demo exited"
            assert time.monotonic() < deadline, "the demo did not answer"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.server
@pytest.mark.slow
def test_demo_serves_the_whole_stack(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url) as client:
        health = client.get("/health")
        assert health.headers["x-content-type-options"] == "nosniff"
        assert "x-request-id" in health.headers
        assert "server" not in health.headers
        assert client.post("/register", json={"email": "d@example.com", "password": "pw-123456789"}).status_code == 201
        pair = client.post("/login", json={"email": "d@example.com", "password": "pw-123456789"}).json()
        me = client.get("/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert re.fullmatch(r"[0-9a-f]{16}", me.json()["sub"]), me.text  # a user id, never the e-mail
        page = client.get("/")
        assert "'nonce-" in page.headers["content-security-policy"]


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi"])
def test_demo_without_fastapi_or_uvicorn_says_what_to_install(missing: str) -> None:
    """A Flask or Django install (no FastAPI, no uvicorn): one line naming the extra, exit status 1, no traceback."""
    code = f"import sys; sys.modules[{missing!r}] = None; from backend_guard.cli import main; sys.exit(main(['demo']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"backend-guard demo: the demo app needs FastAPI and uvicorn ({missing} is not installed): "
        'pip install "backend-guard[fastapi,server]"'
    )


def test_a_reader_that_left_the_pipe_gets_no_traceback() -> None:
    # `backend-guard keys | head -c 5`: the reader may close the pipe before the command writes; the command ends
    # with status 1 and no traceback (nor an "Exception ignored" one when stdout is flushed at exit)
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        done = subprocess.run(  # noqa: S603 - this interpreter, a fixed command
            [sys.executable, "-c", "import sys; from backend_guard.cli import main; sys.exit(main(['keys']))"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr


def test_a_command_started_with_stdout_closed_fails_instead_of_losing_its_output() -> None:
    # `backend-guard keys >&-` exited 0 and printed nothing: the new private key was lost (operators' trial).
    proc = subprocess.run(
        [sys.executable, "-m", "backend_guard.cli", "keys", "--algorithm", "EdDSA"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),  # noqa: PLW1509  (the child alone, before exec)
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "standard output is closed" in proc.stderr
