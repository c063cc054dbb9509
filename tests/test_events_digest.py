"""The digest of subjects and client keys in events, audit records and the command line is keyed (HMAC-SHA-256):
an unkeyed hash of an IPv4 address or a user name is undone by trying every value."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import backend_guard as bg
from backend_guard import events
from backend_guard.cli import main
from backend_guard.events import Event
from backend_guard.exceptions import ConfigurationError
from backend_guard.operate import Limits

SRC = str(Path(__file__).resolve().parents[1] / "src")
KEY = "digest-test-key-0123456789abcdef"


@pytest.fixture
def keyed() -> Iterator[None]:
    """A configured digest key for the test; afterwards a fresh random one (as an unconfigured process has)."""
    events.set_digest_key(KEY)
    yield
    events.set_digest_key(None)


def test_the_digest_is_an_hmac_under_the_key_never_a_plain_hash(keyed: None) -> None:
    text = "ip:203.0.113.7"
    assert events.digest(text) == hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]
    assert events.digest(text) != hashlib.sha256(text.encode()).hexdigest()[:32]
    assert events.digest_key_configured()


def test_same_key_same_digest_other_key_other_digest() -> None:
    events.set_digest_key(KEY)
    first = events.digest("user-42")
    events.set_digest_key(KEY.encode())
    assert events.digest("user-42") == first
    events.set_digest_key(KEY + "-other")
    assert events.digest("user-42") != first
    events.set_digest_key(None)  # random, per process: matches neither
    assert events.digest("user-42") not in (first, hashlib.sha256(b"user-42").hexdigest()[:32])
    assert not events.digest_key_configured()
    random_one = events.digest("user-42")
    events.set_digest_key(None)
    assert events.digest("user-42") != random_one


@pytest.mark.parametrize("bad", ["short", b"", b"x" * 15])
def test_a_short_key_is_refused(bad: str | bytes) -> None:
    with pytest.raises(ConfigurationError, match="at least 16 bytes"):
        events.set_digest_key(bad)


def _digest_in_process(env: dict[str, str], text: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BACKEND_GUARD_")}
    environ.update({"PYTHONPATH": SRC, **env})
    code = f"from backend_guard import events; print(events.digest({text!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=False)


def test_the_environment_key_makes_digests_match_across_processes(keyed: None) -> None:
    one = _digest_in_process({"BACKEND_GUARD_DIGEST_KEY": KEY}, "user-42")
    two = _digest_in_process({"BACKEND_GUARD_DIGEST_KEY": KEY}, "user-42")
    assert one.stdout == two.stdout == events.digest("user-42") + "\n"
    unset = [_digest_in_process({}, "user-42").stdout for _ in range(2)]
    assert unset[0] != unset[1]  # random per process
    bad = _digest_in_process({"BACKEND_GUARD_DIGEST_KEY": "tooSHORTkey"}, "user-42")
    assert bad.returncode != 0  # refused at start-up, the key itself never shown
    assert "BACKEND_GUARD_DIGEST_KEY" in bad.stderr
    assert "tooSHORTkey" not in bad.stderr


def test_the_digest_command_gives_what_events_and_audit_records_show(keyed: None) -> None:
    seen: list[Event] = []
    with events.subscribe(seen.append, parts=["ratelimit", "operate"]):
        limiter = bg.RateLimiter("memory://")
        limiter.hit("ip:203.0.113.7", "1/minute")
        limiter.hit("ip:203.0.113.7", "1/minute")
        Limits(limiter, default_limits="1/minute").reset(address="203.0.113.7", by="jane")
    out = io.StringIO()
    assert main(["digest", "--address", "203.0.113.7"], out=out) == 0
    shown = out.getvalue().strip()
    assert [e.fields.get("key_id", e.fields.get("target")) for e in seen] == [shown, shown]
    for event in seen:
        assert "203.0.113.7" not in str(event.as_dict())
    out = io.StringIO()
    assert main(["digest", "user-42"], out=out) == 0
    assert out.getvalue().strip() == events.digest("user-42")


def test_the_digest_command_refuses_without_a_configured_key(capsys: pytest.CaptureFixture[str]) -> None:
    events.set_digest_key(None)
    out = io.StringIO()
    assert main(["digest", "user-42"], out=out) == 1
    assert out.getvalue() == ""
    assert "BACKEND_GUARD_DIGEST_KEY is not set" in capsys.readouterr().err


def test_an_audit_record_never_holds_the_raw_client(keyed: None, caplog: pytest.LogCaptureFixture) -> None:
    limiter = bg.RateLimiter("memory://")
    limiter.hit("ip:198.51.100.20", "5/minute")
    with caplog.at_level(logging.INFO, logger="backend_guard.audit"):
        Limits(limiter, default_limits="5/minute").reset(address="198.51.100.20", by="jane")
    (record,) = caplog.records
    assert record.target == events.digest("ip:198.51.100.20")  # type: ignore[attr-defined]
    assert "198.51.100.20" not in record.getMessage()
