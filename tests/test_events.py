"""Structured events (backend_guard.events): one per decision that refuses or changes state, from every part."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import backend_guard as bg
from backend_guard import events
from backend_guard._logging import request_id_var
from backend_guard._stack import StackParts
from backend_guard.events import Event
from backend_guard.exceptions import StorageError, TokenReused
from backend_guard.operate import Operator
from backend_guard.ratelimit import Charge
from backend_guard.storage import MemoryStore, Store

SECRET = "events-test-secret-of-32-bytes!!"


@pytest.fixture
def seen() -> Iterator[list[Event]]:
    found: list[Event] = []
    with events.subscribe(found.append):
        yield found


def names(found: list[Event]) -> list[str]:
    return [e.name for e in found]


class BrokenStore(MemoryStore):
    """A store whose every script call fails, as a store that is down."""

    def run(self, script: Any, keys: Any, args: Any) -> Any:
        raise StorageError()


def _tm(store: Store, **kw: Any) -> bg.TokenManager:
    return bg.TokenManager(SECRET, "HS256", issuer="https://auth.example", audience="api", store=store, **kw)


# -- the bus ---------------------------------------------------------------------------------------------------


def test_nothing_listens_by_default_and_a_subscription_ends_with_its_block() -> None:
    assert not events.listening("csrf")
    found: list[Event] = []
    with events.subscribe(found.append, parts=["csrf"]):
        assert events.listening("csrf")
        assert not events.listening("cors")
        events.emit("csrf", "csrf.refused", rule="x")
        events.emit("cors", "cors.refused", reason="origin")
    assert not events.listening("csrf")
    events.emit("csrf", "csrf.refused", rule="x")
    assert found == [Event("csrf.refused", "csrf", "refused", {"rule": "x"})]


def test_an_event_carries_the_request_id_and_flattens_to_a_dict(seen: list[Event]) -> None:
    token = request_id_var.set("rid-1")
    try:
        events.emit("csrf", "csrf.refused", rule="fetch-cross-site")
    finally:
        request_id_var.reset(token)
    assert seen[0].as_dict() == {
        "event": "csrf.refused",
        "part": "csrf",
        "outcome": "refused",
        "request_id": "rid-1",
        "rule": "fetch-cross-site",
    }


def test_a_failing_callback_is_logged_once_never_raised_and_others_still_get_events(
    seen: list[Event], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("sink down")

    with caplog.at_level(logging.ERROR, logger="backend_guard.events"), events.subscribe(broken) as sub:
        for _ in range(3):
            events.emit("csrf", "csrf.refused", rule="fetch-cross-site", websocket=False)
    assert sub.failures == 3
    assert len([r for r in caplog.records if r.name == "backend_guard.events"]) == 1
    assert names(seen) == ["csrf.refused"] * 3


def test_subscribe_refuses_an_unknown_part_and_a_non_callable() -> None:
    with pytest.raises(ValueError, match="unknown parts"):
        events.subscribe(print, parts=["nope"])
    with pytest.raises(TypeError):
        events.subscribe("print")  # type: ignore[arg-type]


def test_every_name_has_a_known_part_prefix_and_an_outcome() -> None:
    for name, outcome in events.NAMES.items():
        assert name.split(".")[0] in (*events.PARTS, "storage")
        assert outcome


# -- rate limiting ---------------------------------------------------------------------------------------------


def test_a_refused_hit_is_one_event_with_the_key_digested(store: Store, seen: list[Event]) -> None:
    limiter = bg.RateLimiter(store)
    assert limiter.hit("ip:203.0.113.7", "1/minute").allowed
    assert not limiter.test("ip:203.0.113.7", "1/minute").allowed  # a peek refuses nothing
    assert not limiter.hit("ip:203.0.113.7", "1/minute").allowed
    (event,) = seen
    assert (event.name, event.part, event.outcome) == ("ratelimit.refused", "ratelimit", "refused")
    assert event.fields["key_id"] == events.digest("ip:203.0.113.7")
    assert "203.0.113.7" not in repr(event)
    assert event.fields["retry_after"] > 0
    assert event.fields["policy"]


def test_a_refusal_of_several_charges_names_the_refusing_key(seen: list[Event]) -> None:
    limiter = bg.RateLimiter()
    wide = bg.parse_limits(["100/minute"])
    narrow = bg.parse_limits(["1/minute"])
    charges = [Charge("ip:a", wide, scope="global"), Charge("user:b", narrow, scope="login")]
    limiter.hit_all(charges)
    assert not limiter.hit_all(charges).allowed
    assert seen[0].fields["key_id"] == events.digest("user:b")


def test_a_store_outage_is_a_fail_open_or_fail_closed_event(seen: list[Event]) -> None:
    assert bg.RateLimiter(BrokenStore()).hit("k", "1/minute").allowed
    assert not bg.RateLimiter(BrokenStore(), on_storage_error="deny").hit("k", "1/minute").allowed
    assert [(e.name, e.part, e.outcome, e.fields["mode"]) for e in seen] == [
        ("storage.fail_open", "ratelimit", "allowed", "allow"),
        ("storage.fail_closed", "ratelimit", "refused", "deny"),
    ]


# -- lockout ---------------------------------------------------------------------------------------------------


def test_the_lockout_publishes_its_audit_events_with_hashes_only(store: Store, seen: list[Event]) -> None:
    lock = bg.Lockout(store=store, max_failures=2, secret=SECRET, log_identifiers=True)
    lock.record_failure("alice", "203.0.113.7")
    lock.record_failure("alice", "203.0.113.7")
    with pytest.raises(bg.AccountLocked), lock.attempt("alice", "203.0.113.7"):
        pass
    lock.unlock("alice")
    assert names(seen) == [
        "lockout.failure",
        "lockout.failure",
        "lockout.locked",
        "lockout.refused",
        "lockout.unlocked",
    ]
    assert {e.fields["account_id"] for e in seen} == {lock.account_id("alice")}
    assert all("alice" not in repr(e) for e in seen)  # log_identifiers names it in LockoutEvent only
    assert seen[2].fields["scope"] == "pair"
    assert seen[3].fields["retry_after"] > 0


def test_the_lockout_store_failing_open_and_closed(seen: list[Event]) -> None:
    bg.Lockout(store=BrokenStore(), max_failures=2, secret=SECRET, on_storage_error="allow").check("a", "203.0.113.7")
    with pytest.raises(StorageError):
        bg.Lockout(store=BrokenStore(), max_failures=2, secret=SECRET, on_storage_error="deny").check("a")
    assert [(e.name, e.fields["operation"]) for e in seen] == [
        ("storage.fail_open", "check"),
        ("storage.fail_closed", "check"),
    ]


# -- tokens ----------------------------------------------------------------------------------------------------


def test_token_reuse_and_logouts(store: Store, seen: list[Event]) -> None:
    tm = _tm(store, grace_window=0)
    first = tm.issue("user-42")
    tm.rotate(first.refresh_token)
    with pytest.raises(TokenReused):
        tm.rotate(first.refresh_token)
    second = tm.issue("user-42")
    assert tm.revoke(second.refresh_token)
    assert not tm.revoke(second.refresh_token)  # already ended: no second event
    tm.issue("user-42")
    tm.issue("user-42")
    assert tm.revoke_subject("user-42") == 2
    assert [(e.name, e.fields.get("reason"), e.fields.get("count")) for e in seen] == [
        ("tokens.reuse_detected", None, None),
        ("tokens.family_revoked", "logout", 1),
        ("tokens.family_revoked", "logout_all", 2),
    ]
    assert {e.fields["subject_id"] for e in seen} == {events.digest("user-42")}
    assert seen[0].fields["family"]
    assert all("user-42" not in repr(e) for e in seen)


def test_the_revocation_check_failing_open_and_closed(seen: list[Event]) -> None:
    pair = _tm(MemoryStore()).issue("u")
    _tm(BrokenStore(), check_revocation=True, revocation_on_storage_error="allow").verify_access(pair.access_token)
    with pytest.raises(StorageError):
        _tm(BrokenStore(), check_revocation=True).verify_access(pair.access_token)
    assert [(e.name, e.part) for e in seen] == [("storage.fail_open", "tokens"), ("storage.fail_closed", "tokens")]


# -- CORS and CSRF ---------------------------------------------------------------------------------------------


def test_refused_preflights_are_events_allowed_ones_and_actual_requests_are_not(seen: list[Event]) -> None:
    policy = bg.CORSPolicy(allow_origins=["https://app.example"], allow_methods=["GET", "PUT"])
    assert policy.preflight("https://app.example", "PUT").allowed
    assert policy.actual("https://evil.example").headers == ()
    assert not policy.preflight("https://evil.example\n", "PUT").allowed
    assert not policy.preflight_raw(b"https://app.example", b"DELETE")[0]
    assert not policy.preflight("https://app.example", "PUT", "x-secret").allowed
    assert [(e.name, e.fields["reason"]) for e in seen] == [
        ("cors.refused", "origin"),
        ("cors.refused", "method"),
        ("cors.refused", "headers"),
    ]
    assert seen[0].fields["origin"] == "https://evil.example\\n"  # one line in a log


def test_csrf_refusals_only(seen: list[Event]) -> None:
    """The policy decides and publishes nothing (the request may be exempt); a refusal answered is one event."""
    from backend_guard.csrf._policy import publish_refusal

    csrf = bg.CrossOriginProtection()
    assert csrf.check("POST", scheme="https", host="a.example", origin=["https://a.example"]).allowed
    assert csrf.check("GET", scheme="https", host="a.example", sec_fetch_site=["cross-site"]).allowed
    post = csrf.check("POST", scheme="https", host="a.example", origin=["https://evil.example"])
    socket = csrf.check_websocket(scheme="wss", host="a.example", origin=["https://evil.example"])
    assert not post.allowed
    assert not socket.allowed
    assert seen == []
    publish_refusal(post)
    publish_refusal(socket, websocket=True)
    assert [(e.name, e.fields["rule"], e.fields["websocket"]) for e in seen] == [
        ("csrf.refused", "origin-mismatch", False),
        ("csrf.refused", "origin-mismatch", True),
    ]


# -- operators -------------------------------------------------------------------------------------------------


def test_operator_actions_are_events_naming_the_operator(store: Store, seen: list[Event]) -> None:
    parts = bg.GuardSettings(
        lockout={"max_failures": 2, "secret": SECRET},
        rate_limit={"default_limits": "100/minute"},
        tokens={"key": SECRET, "algorithm": "HS256"},
    )
    built = StackParts.build(parts, store=store)
    op = Operator.from_parts(built)
    built.tokens().issue("user-42")
    op.locks.unlock(account="alice", by="jane")
    op.limits.reset(address="203.0.113.7", by="jane")
    op.tokens.revoke("user-42", by="jane")
    operate = [e for e in seen if e.part == "operate"]
    assert [(e.name, e.outcome, e.fields["by"]) for e in operate] == [
        ("operate.locks.unlock", "unlocked", "jane"),
        ("operate.limits.reset", "reset", "jane"),
        ("operate.tokens.revoke", "revoked", "jane"),
    ]
    assert operate[2].fields["target"] == events.digest("user-42")
    assert operate[2].fields["revoked"] == 1
    assert "lockout.unlocked" in names(seen)  # the unlock itself, from the lockout


# -- review: what events carry, and the documented table --------------------------------------------------------


def test_lockout_events_name_the_address_by_the_lockouts_keyed_hash(store: Store, seen: list[Event]) -> None:
    # The docs promise "an account and an address as the lockout's keyed hashes": never the client's IP.
    lock = bg.Lockout(store=store, max_failures=1, secret=SECRET)
    lock.record_failure("alice", "203.0.113.7")
    with pytest.raises(bg.AccountLocked), lock.attempt("alice", "203.0.113.7"):
        pass
    lock.record_failure("bob")  # no address: none in the events
    assert names(seen) == ["lockout.failure", "lockout.locked", "lockout.refused", "lockout.failure", "lockout.locked"]
    assert all("203.0.113.7" not in repr(e) for e in seen)
    assert {e.fields["address"] for e in seen[:3]} == {lock.address_id("203.0.113.7")}
    assert [e.fields["address"] for e in seen[3:]] == [None, None]


def test_the_docs_table_lists_every_event_name_with_its_outcome() -> None:
    text = (Path(__file__).parent.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split("## Events and metrics", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    documented: dict[str, str] = {}
    for row in table[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        found = re.findall(r"`([a-z_.]+)`", cells[0])
        outcomes = [o.strip() for o in cells[1].split(",")]
        assert len(found) == len(outcomes), row
        documented.update(zip(found, outcomes, strict=True))
    assert documented == dict(events.NAMES)


def test_a_callback_may_emit_subscribe_and_close_inside_delivery_without_deadlock() -> None:
    found: list[str] = []
    later: list[events.Subscription] = []

    def reentrant(event: Event) -> None:
        found.append(event.name)
        if event.name == "csrf.refused":
            events.emit("cors", "cors.refused", reason="origin")  # an event inside a callback
            later.append(events.subscribe(lambda e: found.append("late " + e.name), parts=["cors"]))
            sub.close()  # closing itself while it is being delivered

    sub = events.subscribe(reentrant, parts=["csrf", "cors"])
    events.emit("csrf", "csrf.refused", rule="x")
    events.emit("cors", "cors.refused", reason="origin")
    later[0].close()
    assert found == ["csrf.refused", "cors.refused", "late cors.refused"]
    assert not events.listening("csrf")
    assert not events.listening("cors")


def test_subscribing_and_closing_from_threads_while_others_emit() -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def emitter() -> None:
        try:
            while not stop.is_set():
                events.emit("csrf", "csrf.refused", rule="x")
        except BaseException as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=emitter) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(300):
        with events.subscribe(lambda e: None, parts=["csrf"]):
            pass
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert not events.listening("csrf")
