"""The operator API (backend_guard.operate) over the memory store and the real Redis: every verb, sync and async."""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
import secrets
import shlex
from pathlib import Path

import pytest

import backend_guard as bg
from backend_guard._stack import StackParts
from backend_guard.cli import build_parser
from backend_guard.exceptions import ConfigurationError
from backend_guard.operate import LockEntry, Operator, Page, digest
from backend_guard.operate._cli import execute, operate_parser
from backend_guard.storage import Store

SECRET = "operate-test-secret-of-32-bytes!"


def settings() -> bg.GuardSettings:
    return bg.GuardSettings(
        lockout={"max_failures": 3, "address_max_failures": 50},
        rate_limit={"default_limits": "100/minute", "rules": [{"path": "/login", "limits": "5/minute"}]},
        tokens={"key": SECRET, "algorithm": "HS256"},
    )


def parts_on(store: Store) -> StackParts:
    return StackParts.build(settings(), store=store)


def lock_out(parts: StackParts, account: str, ip: str) -> None:
    lock = parts.lockout()
    for _ in range(3):
        lock.record_failure(account, ip)
    assert lock.check(account, ip).locked


def test_locks_list_and_unlock_an_account(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    parts = parts_on(store)
    lock_out(parts, "alice", "203.0.113.7")
    lock_out(parts, "bob", "198.51.100.1")
    op = Operator.from_parts(parts)
    everyone = op.locks.list()
    assert {e.account_id for e in everyone.items} == {parts.lockout().account_id(n) for n in ("alice", "bob")}
    assert all(e.account is None and e.scope == "pair" and e.retry_after > 0 for e in everyone.items)
    assert everyone.cursor is None
    (alice,) = op.locks.list(account="alice").items
    assert alice.account == "alice"
    assert alice.address_id == parts.lockout().address_id("203.0.113.7")
    assert alice.until > alice.retry_after
    with caplog.at_level(logging.INFO, logger="backend_guard.audit"):
        assert op.locks.unlock(account="alice", by="jane") >= 1
    record = next(r for r in caplog.records if r.name == "backend_guard.audit")
    assert (record.operator, record.verb) == ("jane", "locks.unlock")  # type: ignore[attr-defined]
    assert "alice" not in record.getMessage()
    assert parts.lockout().account_id("alice") in record.getMessage()
    assert not parts.lockout().check("alice", "203.0.113.7").locked
    assert op.locks.list(account="alice").items == ()
    assert op.locks.unlock(account="nobody") == 0


def test_locks_pages_follow_the_cursor(store: Store) -> None:
    parts = parts_on(store)
    for n in range(5):
        lock_out(parts, f"user{n}", "203.0.113.7")
    op = Operator.from_parts(parts)
    seen: list[str] = []
    page = op.locks.list(limit=2)
    while True:
        assert len(page.items) <= 2
        seen += [e.account_id for e in page.items]
        if page.cursor is None:
            break
        page = op.locks.list(limit=2, cursor=page.cursor)
    assert len(seen) == 5 == len(set(seen))
    with pytest.raises(ConfigurationError):
        op.locks.list(limit=0)
    with pytest.raises(ConfigurationError):
        op.locks.list(cursor="x" * 300)


def test_unlock_a_pair_and_an_address(store: Store) -> None:
    parts = parts_on(store)
    lock = parts.lockout()
    lock_out(parts, "carol", "203.0.113.7")
    lock_out(parts, "carol", "198.51.100.1")
    op = Operator.from_parts(parts)
    assert op.locks.unlock(account="carol", address="203.0.113.7") == 1
    assert not lock.check("carol", "203.0.113.7").locked
    assert lock.check("carol", "198.51.100.1").locked
    for n in range(50):  # address_max_failures: one password sprayed over 50 accounts from one address
        lock.record_failure(f"spray{n}", "192.0.2.9")
    (wide,) = [e for e in op.locks.list(address="192.0.2.9").items if e.scope == "address"]
    assert (wide.account_id, wide.address, wide.address_id) == ("", "192.0.2.9", lock.address_id("192.0.2.9"))
    assert op.locks.unlock(address="192.0.2.9") == 1  # the address-wide lock and counter
    assert [e for e in op.locks.list(address="192.0.2.9").items if e.scope == "address"] == []
    assert op.locks.unlock(address="203.0.113.7") == 1  # the address-wide counter
    with pytest.raises(ConfigurationError):
        op.locks.unlock()


def test_limits_show_and_reset(store: Store) -> None:
    parts = parts_on(store)
    op = Operator.from_parts(parts)
    key = op.limits.key("203.0.113.9")
    for _ in range(3):
        parts.limiter.hit_all([c for c in _charges(op, key)])
    rows = {row.rule: row for row in op.limits.show(address="203.0.113.9")}
    assert rows["global"].limit == 100
    assert rows["global"].remaining == 97
    assert next(r for name, r in rows.items() if name != "global").remaining == 2
    again = [(r.rule, r.remaining) for r in op.limits.show(address="203.0.113.9")]
    assert again == [(r.rule, r.remaining) for r in rows.values()]  # showing spends nothing
    assert op.limits.reset(address="203.0.113.9", by="jane") == 2
    assert all(r.remaining == r.limit for r in op.limits.show(address="203.0.113.9"))
    with pytest.raises(ConfigurationError):
        op.limits.show()


def _charges(op: Operator, key: str) -> list[bg.ratelimit.Charge]:
    return [bg.ratelimit.Charge(key, r.rates, 1, r.bucket, r.name) for r in op.limits.rules]


def test_tokens_list_and_revoke(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    parts = parts_on(store)
    tm = parts.tokens()
    pairs = [tm.issue("user-42", {"device": "Pixel 8"}), *(tm.issue("user-42") for _ in range(2))]
    tm.issue("user-7")
    op = Operator.from_parts(parts)
    page = op.tokens.list("user-42", limit=2)
    assert len(page.items) == 2
    assert page.cursor is not None
    rest = op.tokens.list("user-42", limit=2, cursor=page.cursor)
    assert len(rest.items) == 1
    assert rest.cursor is None
    families = [*page.items, *rest.items]
    assert sorted(f.device or "" for f in families) == ["", "", "Pixel 8"]
    assert all(f.last_used and f.created and abs(f.created - f.last_used) < 5 for f in families)
    assert all(f.expires > f.last_used for f in families if f.last_used)
    with caplog.at_level(logging.INFO, logger="backend_guard.audit"):
        assert op.tokens.revoke("user-42", families[0].family, by="jane") == 1
    record = next(r for r in caplog.records if r.name == "backend_guard.audit")
    assert record.target == digest("user-42")  # type: ignore[attr-defined]
    assert len(op.tokens.list("user-42").items) == 2
    assert op.tokens.revoke("user-42") == 2
    assert op.tokens.list("user-42").items == ()
    assert len(op.tokens.list("user-7").items) == 1
    with pytest.raises(bg.InvalidToken):
        tm.rotate(pairs[1].refresh_token)


async def test_the_async_twins_answer_the_same(astore: Store) -> None:
    parts = parts_on(astore)
    lock_out(parts, "dave", "203.0.113.7")
    parts.tokens().issue("user-1")
    op = Operator.from_parts(parts)
    assert _locks(await op.locks.alist()) == _locks(op.locks.list()) != []
    assert await op.limits.ashow(address="203.0.113.7") == op.limits.show(address="203.0.113.7")
    assert [f.family for f in (await op.tokens.alist("user-1")).items] == [
        f.family for f in op.tokens.list("user-1").items
    ]
    assert await op.locks.aunlock(account="dave") >= 1
    assert await op.locks.aunlock(address="203.0.113.7") == 1
    assert (await op.locks.alist()).items == ()
    assert await op.limits.areset(address="203.0.113.7") == 0
    assert await op.tokens.arevoke("user-1") == 1


def test_from_settings_opens_the_named_store(redis_store: object, redis_url: str, prefix: str) -> None:
    # redis_store: only for its clean-up of this prefix (the unlock leaves the address-wide counter behind)
    url = f"{redis_url}?prefix={prefix}"
    app_parts = StackParts.build(settings().model_copy(update={"store": url}))
    lock_out(app_parts, "erin", "203.0.113.7")
    op = Operator.from_settings(settings(), store=url)
    assert [e.account_id for e in op.locks.list().items] == [app_parts.lockout().account_id("erin")]
    assert op.locks.unlock(account="erin") >= 1
    assert not app_parts.lockout().check("erin", "203.0.113.7").locked


def _locks(page: Page[LockEntry]) -> list[tuple[str, str, str | None]]:
    return [(e.account_id, e.scope, e.address_id) for e in page.items]


def test_every_command_line_of_the_operations_page_parses() -> None:
    """The runbooks' shell lines are not run (they need a live app), but each one is a valid command."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    lines = [line[2:].split("  #")[0].split(" > ")[0] for line in page.splitlines() if line.startswith("$ ")]
    spans = re.findall(r"`((?:backend-guard|python manage\.py guard|flask guard) [^`]+)`", page)
    lines += [span for span in spans if "..." not in span]
    assert len(lines) >= 12
    for line in lines:
        argv = shlex.split(line)
        while "=" in argv[0]:  # an environment variable set for the command
            argv = argv[1:]
        if argv[0] == "backend-guard":
            args = build_parser().parse_args(argv[1:])
        else:
            args = operate_parser("guard").parse_args(argv[2:] if argv[0] == "flask" else argv[3:])
        assert args.command == "digest" or args.group in ("locks", "limits", "tokens"), line


def test_a_device_claim_is_kept_printable_and_never_breaks_a_login(store: Store) -> None:
    """The device claim is user input (a User-Agent, a JSON field): a lone surrogate, which the access token's
    JSON carries fine, must not make issue fail on Redis, and control characters (terminal escapes) are not kept."""
    parts = parts_on(store)
    tm = parts.tokens()
    tm.issue("user-9", {"user_agent": "x\ud800y"})
    tm.issue("user-9", {"device": "ok\x1b]0;pwned\x07\x1b[2J\u202eevil\n"})
    devices = sorted(f.device or "" for f in Operator.from_parts(parts).tokens.list("user-9").items)
    assert all(d.isprintable() for d in devices), devices
    assert len(devices) == 2


def test_a_listing_of_one_account_or_address_finds_its_lock_among_many_counters(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing reads at most MAX_LIMIT locks of a SCAN: filtered after the fact, an account's lock beyond the
    first keys scanned (a store busy with failed logins) was reported as "(none)". Here MAX_LIMIT is 5."""
    monkeypatch.setattr(bg.operate._locks, "MAX_LIMIT", 5)
    parts = parts_on(store)
    lock = parts.lockout()
    for n in range(40):
        lock.record_failure(f"someone-{n}", f"198.51.100.{n}")
    lock_out(parts, "alice", "203.0.113.7")
    op = Operator.from_parts(parts)
    assert [e.scope for e in op.locks.list(account="alice").items] == ["pair"]
    assert [e.account_id for e in op.locks.list(address="203.0.113.7").items] == [lock.account_id("alice")]
    assert len(op.locks.list(account="alice", address="203.0.113.7").items) == 1
    assert op.locks.list(account="alice", address="198.51.100.1").items == ()


def test_an_in_process_operator_sees_the_token_managers_own_memory_store() -> None:
    """tokens.store set to memory:// gives the app's TokenManager a store of its own: manage.py guard and
    flask guard (in the app's process) must list and revoke in that store, not in a fresh empty one."""
    app = settings().model_copy(update={"tokens": bg.TokenSettings(key=SECRET, algorithm="HS256", store="memory://")})
    parts = StackParts.build(app, store=bg.storage.MemoryStore())
    parts.tokens().issue("user-5")
    op = Operator.from_parts(parts)
    assert len(op.tokens.list("user-5").items) == 1
    assert op.tokens.revoke("user-5") == 1


def test_an_audit_record_is_one_line_whatever_the_operator_name(caplog: pytest.LogCaptureFixture) -> None:
    """--by is free text: a newline or a terminal escape in it must not forge a second audit line."""
    op = Operator.from_parts(parts_on(bg.storage.MemoryStore()))
    with caplog.at_level(logging.INFO, logger="backend_guard.audit"):
        op.locks.unlock(account="alice", by="jane\nbackend-guard audit: operator root locks.unlock \x1b[2K")
    (record,) = [r for r in caplog.records if r.name == "backend_guard.audit"]
    assert record.getMessage().isprintable()
    assert record.operator.isprintable()  # type: ignore[attr-defined]
    assert record.operator.startswith("jane")  # type: ignore[attr-defined]


def test_a_family_or_cursor_no_listing_gave_is_a_configuration_error(store: Store) -> None:
    """--family and --cursor are operator input: bytes that are not UTF-8 (a command line's surrogate escapes)
    or control characters are refused as bad input before they reach the store, on every store."""
    op = Operator.from_parts(parts_on(store))
    for bad in ("\udcff", "a\x1b[2J", "x" * 201):
        with pytest.raises(ConfigurationError):
            op.tokens.list("user-1", cursor=bad)
        with pytest.raises(ConfigurationError):
            op.tokens.revoke("user-1", bad)


async def test_the_async_listing_of_one_account_scans_only_its_keys_too(
    astore: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bg.operate._locks, "MAX_LIMIT", 5)
    parts = parts_on(astore)
    lock = parts.lockout()
    for n in range(40):
        await lock.arecord_failure(f"someone-{n}", f"198.51.100.{n}")
    for _ in range(3):
        await lock.arecord_failure("alice", "203.0.113.7")
    op = Operator.from_parts(parts)
    assert [e.scope for e in (await op.locks.alist(account="alice")).items] == ["pair"]
    assert len((await op.locks.alist(address="203.0.113.7")).items) == 1


def test_a_lock_listing_that_could_not_read_every_lock_says_so(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing reads at most MAX_LIMIT locks and 4 * MAX_LIMIT keys: beyond that its pages miss locks, and the
    page (and the command's output) must say it was cut rather than look complete (here MAX_LIMIT is 2)."""
    parts = parts_on(store)
    for name in ("alice", "bob"):
        lock_out(parts, name, "203.0.113.7")
    op = Operator.from_parts(parts)
    monkeypatch.setattr(bg.operate._locks, "MAX_LIMIT", 2)
    assert not op.locks.list().truncated  # two locks, four keys: all read
    lock_out(parts, "carol", "203.0.113.7")
    page = op.locks.list()
    assert page.truncated
    assert len(page.items) == 2
    assert not op.locks.list(account="carol").truncated  # narrowed: complete again
    args = operate_parser("guard").parse_args(["locks", "list", "--json"])
    out = io.StringIO()
    execute(args, out, op)
    assert json.loads(out.getvalue())["truncated"] is True
    out = io.StringIO()
    execute(operate_parser("guard").parse_args(["locks", "list"]), out, op)
    assert out.getvalue().splitlines()[-1].startswith("truncated: ")


def test_keys_without_locks_that_fill_the_scan_cap_also_truncate(store: Store) -> None:
    """Failures that lock nothing still leave keys: a SCAN stopped at its key cap may have missed a lock."""
    lock = bg.Lockout(store=store, max_failures=3)
    for n in range(9):
        lock.record_failure(f"user-{n}", "203.0.113.7")  # 9 accounts, 18 keys, no lock
    records, complete = lock.scan_locks(2)
    assert records == []
    assert not complete
    assert lock.scan_locks(10) == ([], True)


async def test_the_async_listing_says_so_too(astore: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = parts_on(astore)
    lock = parts.lockout()
    for name in ("alice", "bob", "carol"):
        for _ in range(3):
            await lock.arecord_failure(name, "203.0.113.7")
    monkeypatch.setattr(bg.operate._locks, "MAX_LIMIT", 2)
    op = Operator.from_parts(parts)
    assert (await op.locks.alist()).truncated
    assert not (await op.locks.alist(account="carol")).truncated


def test_a_new_family_id_never_starts_with_a_dash(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """1 in 64 random base64url ids started with "-": argparse read ``--family ID`` and ``--cursor ID`` as an
    option. New ids start with a letter; an old one (here forced) still revokes with ``--family=ID``."""
    parts = parts_on(store)
    tm = parts.tokens()
    drawn = itertools.count()  # distinct draws (jti too), each starting with "-"
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: f"-{next(drawn)}"[: 4 * n // 3].ljust(4 * n // 3, "A"))
    tm.issue("user-7")
    tm.issue("user-7")
    monkeypatch.undo()
    op = Operator.from_parts(parts)
    page = op.tokens.list("user-7", limit=1)
    assert page.cursor is not None
    assert not page.cursor.startswith("-")
    family = page.items[0].family
    assert not family.startswith("-")
    args = operate_parser("guard").parse_args(["tokens", "list", "user-7", "--cursor", page.cursor])
    assert args.cursor == page.cursor
    args = operate_parser("guard").parse_args(["tokens", "revoke", "user-7", "--family", family])
    assert op.tokens.revoke("user-7", args.family) == 1
