"""Django signals for the lockout's and the token manager's events (backend_guard.django.lockout_event/token_event)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import backend_guard as bg
from backend_guard import events
from backend_guard.events import Event

pytest.importorskip("django")

from backend_guard.django import lockout_event, token_event  # noqa: E402

from .django_app import setup  # noqa: E402

SECRET = "signals-test-secret-of-32-bytes!"


def test_lockout_and_token_events_are_sent_as_signals() -> None:
    setup()
    got: list[tuple[str, Any, Event]] = []

    def on_lockout(sender: Any, event: Event, **kwargs: Any) -> None:
        got.append(("lockout", sender, event))

    def on_token(sender: Any, event: Event, **kwargs: Any) -> None:
        got.append(("token", sender, event))

    lockout_event.connect(on_lockout)
    token_event.connect(on_token)
    try:
        lock = bg.Lockout(max_failures=1, secret=SECRET)
        lock.record_failure("alice", "203.0.113.7")
        tm = bg.TokenManager(SECRET, "HS256", issuer="i", audience="a", grace_window=0)
        pair = tm.issue("user-42")
        tm.rotate(pair.refresh_token)
        with pytest.raises(bg.TokenReused):
            tm.rotate(pair.refresh_token)
        bg.CrossOriginProtection().check("POST", scheme="https", host="a.example", sec_fetch_site=["cross-site"])
    finally:
        lockout_event.disconnect(on_lockout)
        token_event.disconnect(on_token)
    assert [(signal, e.name) for signal, _sender, e in got] == [
        ("lockout", "lockout.failure"),
        ("lockout", "lockout.locked"),
        ("token", "tokens.reuse_detected"),
    ]
    assert all(sender is Event for _signal, sender, _e in got)
    assert not events.listening("lockout")  # the last receiver left
    assert not events.listening("tokens")
    assert got[1][2].fields["account_id"] == lock.account_id("alice")


def test_a_failing_receiver_is_logged_by_django_and_never_breaks_the_login(caplog: pytest.LogCaptureFixture) -> None:
    setup()

    def broken(sender: Any, event: Event, **kwargs: Any) -> None:
        raise RuntimeError("receiver down")

    lock = bg.Lockout(max_failures=1, secret=SECRET)
    lockout_event.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="django.dispatch"):
            lock.record_failure("bob", "203.0.113.7")
    finally:
        lockout_event.disconnect(broken)
    assert lock.check("bob", "203.0.113.7").locked
    assert any("receiver down" in r.getMessage() for r in caplog.records if r.name == "django.dispatch")


def test_a_receiver_collected_without_disconnect_stops_the_events_it_wanted() -> None:
    # Django holds receivers weakly by default: one garbage-collected never calls disconnect(), and the signal
    # must not keep the lockout building events for nobody.
    import gc

    setup()

    def on_lockout(sender: Any, event: Event, **kwargs: Any) -> None:
        pass

    lockout_event.connect(on_lockout)
    assert events.listening("lockout")
    del on_lockout
    gc.collect()
    bg.Lockout(max_failures=5, secret=SECRET).record_failure("alice", "203.0.113.7")
    assert not events.listening("lockout")
