"""The operator verbs inside an app: Django's ``manage.py guard`` (call_command) and Flask's ``flask guard``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

import backend_guard.flask

ROOT = Path(__file__).resolve().parent.parent

DJANGO_PROGRAM = """\
import io, json, sys
from django.conf import settings
settings.configure(
    SECRET_KEY="operate-test-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz",
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "backend_guard.django.BackendGuardConfig"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    BACKEND_GUARD={"store": sys.argv[1], "lockout": {"max_failures": 3}},
)
import django
django.setup()
from django.core.management import CommandError, call_command
import backend_guard.django

lock = backend_guard.django.parts().lockout()
for _ in range(3):
    lock.record_failure("alice", "203.0.113.7")
out = io.StringIO()
call_command("guard", "locks", "list", "--account", "alice", "--json", stdout=out)
listed = json.loads(out.getvalue())
out = io.StringIO()
call_command("guard", "locks", "unlock", "--account", "alice", "--by", "jane", stdout=out)
try:
    call_command("guard", "locks", "unlock", "--account", "alice")
    again = None
except CommandError as exc:
    again = [str(exc), exc.returncode]
print(json.dumps({"listed": listed, "unlocked": out.getvalue(), "locked": lock.check("alice", "203.0.113.7").locked,
                  "again": again, "account_id": lock.account_id("alice")}))
"""


@pytest.mark.redis
def test_django_guard_command_lists_and_unlocks(
    tmp_path: Path, redis_store: object, redis_url: str, prefix: str
) -> None:
    (tmp_path / "program.py").write_text(DJANGO_PROGRAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BACKEND_GUARD_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.run(
        [sys.executable, "program.py", f"{redis_url}?prefix={prefix}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    (row,) = found["listed"]["items"]
    assert (row["account"], row["account_id"], row["scope"]) == ("alice", found["account_id"], "pair")
    assert found["unlocked"] == "unlock: 2 removed\n"  # the pair counter and the account value
    assert found["locked"] is False
    assert found["again"][1] == 1
    assert "nothing to unlock" in found["again"][0]


def flask_app() -> Flask:
    app = Flask(__name__)
    app.config["BACKEND_GUARD"] = {
        "lockout": {"max_failures": 3},
        "rate_limit": {"default_limits": "100/minute", "check_routes": False},
        "tokens": {"key": "operate-flask-secret-of-32-bytes", "algorithm": "HS256"},
    }
    backend_guard.flask.Guard(app)
    return app


def test_flask_guard_group_runs_every_verb_on_the_apps_memory_store() -> None:
    app = flask_app()
    parts = backend_guard.flask.parts(app)
    lock = parts.lockout()
    for _ in range(3):
        lock.record_failure("bob", "198.51.100.4")
    parts.limiter.hit("ip:198.51.100.4", "100/minute", scope="global")
    parts.tokens().issue("user-9")
    runner = app.test_cli_runner()

    listed = runner.invoke(args=["guard", "locks", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    # In the app's own process (as here) a memory store is the app's; a real `flask guard` is a process of its own,
    # which reads nothing the server counted: said on stderr (stdout stays the JSON a script reads).
    assert "flask guard locks: note: the store is memory://" in listed.stderr
    assert json.loads(listed.stdout)["items"][0]["account_id"] == lock.account_id("bob")
    assert runner.invoke(args=["guard", "locks", "unlock", "--account", "bob", "--by", "jane"]).exit_code == 0
    assert not lock.check("bob", "198.51.100.4").locked
    missing = runner.invoke(args=["guard", "locks", "unlock", "--account", "bob"])
    assert missing.exit_code == 1
    assert "nothing to unlock" in missing.output

    shown = runner.invoke(args=["guard", "limits", "show", "--address", "198.51.100.4"])
    assert shown.stdout.startswith("global: 99 of 100 per 60 s left")
    assert runner.invoke(args=["guard", "limits", "reset", "--address", "198.51.100.4"]).stdout == "reset: 1 removed\n"

    families = runner.invoke(args=["guard", "tokens", "list", "user-9", "--json"])
    (family,) = json.loads(families.stdout)["items"]
    revoked = runner.invoke(args=["guard", "tokens", "revoke", "user-9", f"--family={family['family']}"])
    assert revoked.stdout == "revoke: 1 removed\n"
    assert json.loads(runner.invoke(args=["guard", "tokens", "list", "user-9", "--json"]).stdout)["items"] == []


def test_flask_guard_bad_input_is_a_usage_error() -> None:
    runner = flask_app().test_cli_runner()
    result = runner.invoke(args=["guard", "locks", "list", "--limit", "0"])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_flask_guard_on_a_misconfigured_part_is_one_line_not_a_traceback() -> None:
    """The parts are built when a verb runs: a setting the app only checks on first use (a lockout secret too
    short) must be the verb's one-line refusal, not an exception out of the command."""
    app = Flask("misconfigured")
    settings = backend_guard.GuardSettings(store="memory://", lockout={"max_failures": 3, "secret": "short"})
    backend_guard.flask.Guard(app, settings=settings)
    result = app.test_cli_runner().invoke(args=["guard", "tokens", "list", "user-1"])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit), result.exception
    assert "at least 16 bytes" in result.output


DJANGO_PIPE_PROGRAM = """\
import sys
from django.conf import settings
settings.configure(
    SECRET_KEY="operate-test-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz",
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "backend_guard.django.BackendGuardConfig"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    BACKEND_GUARD={"lockout": {"max_failures": 1}},
)
import django
django.setup()
from django.core.management import call_command
import backend_guard.django

lock = backend_guard.django.parts().lockout()
for i in range(50):
    lock.record_failure(f"user-{i}", "203.0.113.7")
sys.stdin.read()  # until the test has closed its end of stdout: every write below meets a reader that left
call_command("guard", "locks", "list", "--limit", "50")
"""


def test_django_guard_command_into_a_closed_pipe_is_status_1_without_a_traceback(tmp_path: Path) -> None:
    # `manage.py guard locks list | head` whose reader left: a BrokenPipeError traceback (operators' trial).
    (tmp_path / "program.py").write_text(DJANGO_PIPE_PROGRAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BACKEND_GUARD_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.Popen(
        [sys.executable, "program.py"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    assert proc.stderr is not None
    proc.stdout.close()
    proc.stdin.close()
    try:
        err = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
        proc.stderr.close()
    assert proc.returncode == 1, err.decode()
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err


FLASK_APP_FILE = """\
import os
from flask import Flask
import backend_guard.flask

app = Flask(__name__)
app.config["BACKEND_GUARD"] = {"store": os.environ["TEST_STORE"], "lockout": {"max_failures": 3}}
backend_guard.flask.Guard(app)
"""


@pytest.mark.redis
def test_flask_guard_unlock_leaves_its_audit_record_on_stderr_when_the_app_logs_nothing(
    tmp_path: Path, redis_store: object, redis_url: str, prefix: str
) -> None:
    # `backend-guard` printed "operator jane locks.unlock ...", `flask guard` nothing: the record was dropped
    # unless the app set up logging (operators' trial).
    from backend_guard._stack import StackParts
    from backend_guard.config import GuardSettings

    store = f"{redis_url}?prefix={prefix}"
    lock = StackParts.build(GuardSettings(store=store, lockout={"max_failures": 3})).lockout()
    for _ in range(3):
        lock.record_failure("bob", "198.51.100.4")
    (tmp_path / "guarded.py").write_text(FLASK_APP_FILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "BACKEND_GUARD_"))}
    env.update(PYTHONPATH=str(ROOT / "src"), TEST_STORE=store)
    argv = ["guard", "locks", "unlock", "--account", "bob", "--by", "jane"]
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "guarded", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"operator jane locks.unlock account:{lock.account_id('bob')}" in proc.stderr
    assert not lock.check("bob", "198.51.100.4").locked
