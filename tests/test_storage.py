"""One suite over the memory store and the real Redis: atomic scripts, keys, scan, failures."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend_guard.exceptions import ConfigurationError, StorageError
from backend_guard.storage import (
    MemoryStore,
    MemoryView,
    RedisStore,
    Script,
    Store,
    escape_key_part,
    make_key,
    open_store,
)
from backend_guard.storage.base import glob_escape

from .conftest import FrozenClock


def _incr_body(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    n = db.incr(keys[0], int(args[0]))
    if db.pttl(keys[0]) == -1:
        db.pexpire(keys[0], float(args[1]))
    return [n, db.pttl(keys[0])]


INCR = Script(
    name="test_incr",
    lua="""
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {n, redis.call('PTTL', KEYS[1])}
""",
    memory=_incr_body,
)


def test_script_same_result_on_each_backend(store: Store) -> None:
    key = store.key("t", "counter")
    first = store.run(INCR, [key], [2, 60_000])
    second = store.run(INCR, [key], [3, 60_000])
    assert first[0] == 2
    assert second[0] == 5
    assert 0 < second[1] <= 60_000


def test_concurrent_threads_are_atomic(store: Store) -> None:
    key = store.key("t", "threads")
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            n = store.run(INCR, [key], [1, 60_000])[0]
            with lock:
                results.append(n)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 201))


async def test_concurrent_tasks_are_atomic(astore: Store) -> None:
    key = astore.key("t", "tasks")
    results = await asyncio.gather(*(astore.arun(INCR, [key], [1, 60_000]) for _ in range(100)))
    assert sorted(r[0] for r in results) == list(range(1, 101))


def test_scan_and_delete(store: Store) -> None:
    keys = [store.key("scan", str(i)) for i in range(5)]
    for k in keys:
        store.run(INCR, [k], [1, 60_000])
    found = store.scan(f"{store.prefix}:scan:*")
    assert sorted(found) == sorted(keys)
    assert store.delete(*keys) == 5
    assert store.scan(f"{store.prefix}:scan:*") == []


async def test_async_scan_and_delete(astore: Store) -> None:
    key = astore.key("ascan", "x")
    await astore.arun(INCR, [key], [1, 60_000])
    assert await astore.ascan(f"{astore.prefix}:ascan:*") == [key]
    assert await astore.adelete(key) == 1


def test_memory_expiry_with_clock(clock: FrozenClock) -> None:
    store = MemoryStore(clock=clock)
    key = store.key("t", "exp")
    assert store.run(INCR, [key], [1, 1000])[0] == 1
    clock.advance(0.999)
    assert store.run(INCR, [key], [1, 1000])[0] == 2
    clock.advance(0.002)
    assert store.run(INCR, [key], [1, 1000])[0] == 1


def test_memory_is_bounded_under_a_flood_of_keys() -> None:
    # Counters (an evictable script's keys); security state is never evicted (tests/test_storage_retention.py).
    counter = Script(name="test_incr_counter", lua=INCR.lua, memory=_incr_body, evictable=True)
    store = MemoryStore(max_keys=100)
    for i in range(5000):
        store.run(counter, [store.key("flood", str(i))], [1, 60_000])
    assert len(store) <= 100
    # The most recent keys survive; the oldest idle ones were evicted.
    assert store.run(counter, [store.key("flood", "4999")], [1, 60_000])[0] == 2


def test_memory_script_errors_become_storage_errors() -> None:
    def broken(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
        raise ValueError("boom")

    with pytest.raises(StorageError) as info:
        MemoryStore().run(Script(name="broken", memory=broken, lua="return 1"), ["k"], [])
    assert isinstance(info.value.original, ValueError)


@pytest.mark.redis
def test_redis_script_error_is_storage_error(redis_store: RedisStore) -> None:
    bad = Script(name="bad", lua="return redis.call('NOPE')", memory=lambda db, k, a: None)
    with pytest.raises(StorageError):
        redis_store.run(bad, [redis_store.key("bad")], [])


@pytest.mark.redis
def test_redis_reloads_scripts_after_flush(redis_store: RedisStore) -> None:
    key = redis_store.key("t", "flush")
    redis_store.run(INCR, [key], [1, 60_000])
    redis_store.client.script_flush()
    assert redis_store.run(INCR, [key], [1, 60_000])[0] == 2


def test_unreachable_redis_raises_storage_error_fast_then_breaks_circuit(caplog: pytest.LogCaptureFixture) -> None:
    from .conftest import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", breaker_cooldown=30)
    with pytest.raises(StorageError) as first:
        store.run(INCR, ["k"], [1, 1000])
    assert first.value.original is not None
    with pytest.raises(StorageError, match="circuit open"):
        store.run(INCR, ["k"], [1, 1000])
    outage_logs = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(outage_logs) == 1
    assert store.ping() is False


def test_redis_url_password_is_not_in_repr() -> None:
    store = RedisStore("redis://user:s3cret-pw@127.0.0.1:6379/0")
    assert "s3cret-pw" not in repr(store)


def test_a_password_given_as_a_url_option_is_in_no_log_and_no_repr(caplog: pytest.LogCaptureFixture) -> None:
    # redis-py reads ``?password=`` as the password (docs/storage.md: outages are logged with it redacted).
    from backend_guard import open_store

    from .conftest import free_port

    store = open_store(f"redis://127.0.0.1:{free_port()}/0?socket_timeout=0.2&password=s3cret-pw")
    assert isinstance(store, RedisStore)
    with pytest.raises(StorageError):
        store.run(INCR, ["k"], [1, 1000])
    logged = [r.getMessage() for r in caplog.records]
    assert any("unavailable" in m and "password=***" in m for m in logged), logged
    assert not any("s3cret-pw" in m for m in logged)
    assert "s3cret-pw" not in repr(store)
    assert "password=***" in repr(store)


@pytest.mark.parametrize(
    "url",
    ["redis://:S3CR#ETX@127.0.0.1:6390/11", "redis://app:S3CR/ETX@127.0.0.1:6390/11", "rediss://:S3CR?ETX@db:6390/0"],
)
def test_a_redis_url_whose_password_is_not_percent_encoded_is_refused_without_quoting_it(url: str) -> None:
    # The host part ends at the password's '/', '#' or '?': redis-py then fails on every call with a ValueError
    # quoting the password's start ("Port could not be cast to integer value as 'S3CR'"), and repr showed it all.
    from backend_guard import open_store

    for make in (RedisStore, open_store):
        with pytest.raises(ConfigurationError, match="percent-encode") as info:
            make(url)
        assert "S3CR" not in str(info.value)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__


@pytest.mark.redis
def test_a_password_with_url_special_characters_given_as_an_option_reaches_redis_as_written() -> None:
    # open_store decoded its options and joined them again unencoded: "&" or "=" split the password into another
    # option (a TypeError traceback), "+" and "#" changed it (operators' trial).
    from urllib.parse import quote

    import redis

    from backend_guard import open_store

    from .faults import private_redis

    password = "pa&ss=w+rd#1 x/?"  # (no "%": redis-py 5.0 unquotes option values twice)
    with private_redis() as server:
        redis.Redis(port=server.port).config_set("requirepass", password)
        store = open_store(f"{server.url}?socket_timeout=1&password={quote(password, safe='')}")
        assert store.ping() is True
        wrong = open_store(f"{server.url}?password={quote(password[:-1], safe='')}")
        assert wrong.ping() is False
        store.close()
        wrong.close()


@pytest.mark.parametrize(
    "query", ["bogus=1", "db=abc", "socket_timeout=0.2&max_connections=3&pw=x", "protocol=4", "ssl_cert_reqs=nope"]
)
def test_a_redis_url_option_redis_py_refuses_is_a_configuration_error_when_the_store_is_made(query: str) -> None:
    # It was a TypeError or ValueError traceback at the first command (operators' trial).
    from backend_guard import open_store

    scheme = "rediss" if query.startswith("ssl") else "redis"
    with pytest.raises(ConfigurationError, match="option redis-py does not take"):
        open_store(f"{scheme}://127.0.0.1:6379/0?{query}")


@pytest.mark.parametrize(
    "query",
    ["x=Sup&ssl_cert_reqs=Sup3rSecretValue", "ssl_cert_reqs=Sup3rSecretValue", "ssl_cert_reqs=Sup3r%25SecretValue"],
)
def test_a_refused_option_s_value_is_never_quoted_even_in_part(query: str) -> None:
    # redis-py quotes some values in its message (ssl_cert_reqs): hidden, the longest first (a short value inside a
    # long one hid only its own part) and in its decoded form too.
    from backend_guard import open_store

    with pytest.raises(ConfigurationError) as refused:
        open_store(f"rediss://127.0.0.1:6379/0?{query}")
    message = str(refused.value)
    assert "ssl_cert_reqs" in message or "SSL" in message
    assert "3rSecretValue" not in message
    assert "SecretValue" not in message


@pytest.mark.redis
def test_an_option_only_the_sync_path_takes_is_a_configuration_error_at_the_first_async_call() -> None:
    # redis-py's sync pool takes ssl_validate_ocsp, its asyncio pool does not: a raw TypeError at the first async
    # command, which on_storage_error never saw (review of cdfc50a).
    from backend_guard import RateLimiter, open_store

    store = open_store("rediss://127.0.0.1:6379/0?ssl_validate_ocsp=true")  # a sync app may use it

    async def first() -> None:
        await RateLimiter(store=store).ahit("k", "5/minute")

    with pytest.raises(ConfigurationError, match="ssl_validate_ocsp"):
        asyncio.run(first())


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/x?db=14", "redis://127.0.0.1:6379/%31%34"])
def test_a_database_named_by_option_or_percent_encoded_path_is_taken(url: str) -> None:
    from backend_guard import open_store

    open_store(url).close()  # redis-py reads ?db= first and unquotes the path (review of fab9b23)


@pytest.mark.redis
def test_a_unix_socket_url_reaches_redis_through_open_store(tmp_path: Any) -> None:
    # open_store rebuilt unix:///path/redis.sock as unix:/path/redis.sock, which redis-py refuses.
    import shutil
    import subprocess
    import time

    from backend_guard import open_store

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    sock = tmp_path / "r.sock"
    proc = subprocess.Popen(  # noqa: S603 - a fixed local binary, a socket in the test's own directory
        [exe, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        store = open_store(f"unix://{sock}?db=2&prefix=t")
        assert isinstance(store, RedisStore)
        assert store.url == f"unix://{sock}?db=2"
        assert store.run(INCR, [store.key("n")], [1, 60_000])[0] == 1
        store.close()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("path", ["/13x", "/db13", "/1 3", "/１"])
def test_a_redis_url_whose_path_is_no_database_number_is_refused(path: str) -> None:
    # redis-py reads such a path as database 0 without a word (an operator's tool then read an empty database).
    from backend_guard import open_store

    with pytest.raises(ConfigurationError, match="database number"):
        open_store(f"redis://127.0.0.1:6379{path}")
    with pytest.raises(ConfigurationError, match="database number"):
        RedisStore(f"rediss://127.0.0.1:6379{path}")


@given(secret=st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.~%", min_size=8, max_size=40))
def test_redact_hides_every_password_of_a_redis_url(secret: str) -> None:
    from backend_guard.storage._redis_connect import redact

    secret = "Z" + secret  # never a part of the URL around it ("sentinel" would be found in the scheme)
    for url in (
        f"redis://app:{secret}@db:6379/0",
        f"redis://db:6379/0?password={secret}",
        f"rediss://db/1?ssl_cert_reqs=none&Password={secret}&health_check_interval=5",
        f"redis+sentinel://:{secret}@h1:26379,h2/mymaster?sentinel_password={secret}",
    ):
        shown = redact(url)
        assert secret not in shown, (url, shown)
        assert shown.split("://")[0] == url.split("://")[0]
    for plain in ("redis://db:6379/0?socket_timeout=1", "unix:///tmp/redis.sock", "REDIS://db/0?", "redis://db/0#x"):
        assert redact(plain) == plain  # nothing to hide: shown as written


def test_key_parts_never_collide() -> None:
    assert make_key("p", "ns", ["a/b", "c"]) != make_key("p", "ns", ["a", "b/c"])
    assert make_key("p", "ns", ["a:b", "c"]) != make_key("p", "ns", ["a", "b:c"])
    assert make_key("p", "ns", ["x"], tag="t") == "p:ns:{t}:x"


def test_huge_key_parts_are_hashed() -> None:
    key = make_key("p", "ns", ["x" * 100_000])
    assert len(key) < 100


@given(st.lists(st.text(max_size=80), min_size=1, max_size=4), st.lists(st.text(max_size=80), min_size=1, max_size=4))
def test_key_scheme_is_injective(a: list[str], b: list[str]) -> None:
    if a != b:
        assert make_key("p", "ns", a) != make_key("p", "ns", b)


@given(st.text())
def test_escaped_part_has_no_separator_or_hash_tag(part: str) -> None:
    escaped = escape_key_part(part)
    assert ":" not in escaped
    assert "{" not in escaped
    assert "}" not in escaped
    assert len(escaped) <= 192


def _escaped_by_hand(text: str) -> str:
    """The key scheme's rule, one character at a time: what every stored key was written with."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= 64:
        out = []
        for ch in text:
            if ch in {"%": 1, ":": 1, "{": 1, "}": 1, "#": 1}:
                out.append(f"%{ord(ch):02X}")
            elif " " < ch < "\x7f":
                out.append(ch)
            else:
                out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        if len("".join(out)) <= 192:
            return "".join(out)
    return "#" + hashlib.sha256(raw).hexdigest()[:40]


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=70) | st.text(max_size=70))
def test_a_key_part_is_escaped_as_the_rule_writes_it(part: str) -> None:
    # Plain parts (an address, a route, a digest) take a shortcut; every part must come out as the one rule writes
    # it, or a store's existing keys would no longer be found.
    assert escape_key_part(part) == _escaped_by_hand(part)
    assert type(escape_key_part(part)) is str


def test_plain_key_parts_stay_as_they_are_up_to_the_length_bound() -> None:
    plain = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%:{}#")
    assert escape_key_part(plain[:64]) == plain[:64]
    assert escape_key_part(plain[:65]).startswith("#")  # over 64 bytes: a digest, as before
    assert escape_key_part("ip:" + "1" * 61) == "ip%3A" + "1" * 61
    assert escape_key_part("%:{}#") == "%25%3A%7B%7D%23"
    assert escape_key_part("203.0.113.7") == "203.0.113.7"
    assert escape_key_part("2001:db8::1") == "2001%3Adb8%3A%3A1"


def test_a_str_subclass_key_part_is_read_character_by_character() -> None:
    class Shouting(str):
        def translate(self, table: Any) -> str:  # as markupsafe's Markup, a subclass may answer its own way
            return "SHOUT"

        def __len__(self) -> int:
            return 0

    assert escape_key_part(Shouting("a:b")) == "a%3Ab"
    assert type(escape_key_part(Shouting("a:b"))) is str
    assert escape_key_part(Shouting("z" * 100)).startswith("#")  # its length is read from its bytes


def test_open_store_urls() -> None:
    assert isinstance(open_store(None), MemoryStore)
    mem = open_store("memory://?max_keys=10&prefix=x")
    assert isinstance(mem, MemoryStore)
    assert mem.prefix == "x"
    assert mem.max_keys == 10
    red = open_store("redis://127.0.0.1:6379/0?prefix=app&socket_timeout=0.5&max_connections=7")
    assert isinstance(red, RedisStore)
    assert red.prefix == "app"
    assert red.socket_timeout == 0.5
    assert red.max_connections == 7
    with pytest.raises(ConfigurationError):
        open_store("redis://127.0.0.1:6379/0?max_connections=0")
    assert open_store(mem) is mem
    with pytest.raises(ConfigurationError):
        open_store("ftp://nope")
    with pytest.raises(ConfigurationError):
        open_store("memory://?max_keys=lots")
    with pytest.raises(ConfigurationError):
        open_store("memory://?bogus=1")


# -- scan patterns: Redis's glob rules on every store -------------------------------------------------------------

SET = Script(
    name="test_set",
    lua="return redis.call('SET', KEYS[1], '1', 'PX', 60000)",
    memory=lambda db, k, a: db.set(k[0], 1, 60_000),
)
GLOB_TEXT = st.text(alphabet=st.sampled_from("ae\\[]*?^-"), min_size=0, max_size=6)


@pytest.mark.redis
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(GLOB_TEXT, min_size=1, max_size=6, unique=True), pattern=GLOB_TEXT)
def test_scan_reads_a_pattern_as_redis_does_on_every_store(
    redis_store: RedisStore, names: list[str], pattern: str
) -> None:
    # raw key texts and patterns full of glob characters: escapes, classes, ranges, negations, unclosed classes
    memory = MemoryStore(prefix=redis_store.prefix)
    head = f"{redis_store.prefix}:g:"
    try:
        for name in names:
            for s in (memory, redis_store):
                s.run(SET, [head + name], [])
        match = glob_escape(head) + pattern
        assert sorted(memory.scan(match)) == sorted(redis_store.scan(match))
        for name in names:  # an escaped key finds itself and nothing else, on both
            exact = glob_escape(head + name)
            assert memory.scan(exact) == redis_store.scan(exact) == [head + name]
    finally:
        redis_store.delete(*[head + name for name in names])
