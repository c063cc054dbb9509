"""PasswordHasher: round trips, the upgrade matrix, legacy schemes, peppers, input policy, timing paths."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import sys
import unicodedata
from collections.abc import Callable

import argon2.low_level
import bcrypt
import pytest
from argon2.low_level import Type, hash_secret, verify_secret
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backend_guard.exceptions import ConfigurationError, InvalidHash, InvalidPassword
from backend_guard.passwords import (
    DEFAULT_PARAMETERS,
    OWASP_MIN,
    RECOMMENDED,
    RFC_9106_LOW_MEMORY,
    TEST,
    Argon2Parameters,
    PasswordHasher,
    calibrate,
)
from backend_guard.passwords._schemes import ParsedArgon2, parse_hash

CHEAP = PasswordHasher(TEST, allow_weak=True)
# A cheap policy with room below and above it on every parameter.
POLICY = Argon2Parameters(time_cost=2, memory_cost=64, parallelism=2)
HASHER = PasswordHasher(POLICY, allow_weak=True)
PEPPER1 = b"pepper-one-0123456789abcdef"
PEPPER2 = b"pepper-two-0123456789abcdef"

# Made with Django 5.2's hashers (password "hunter2 ünï").
DJANGO_PASSWORD = "hunter2 ünï"
DJANGO_PBKDF2 = "pbkdf2_sha256$1000$seasalt$c0M+vHTFOFw8q8OImXUuYfO5Z0o7zvnnvb9UIvMQ57o="
DJANGO_PBKDF2_DEFAULT = "pbkdf2_sha256$1000000$seasalt$UOPZja4WwSXit8Z8Vw4NboYds00JwI67Q0RRZxr9euQ="
DJANGO_BCRYPT_SHA256 = "bcrypt_sha256$$2b$04$Xihas7SJ2Uj8luI4IcHvyO9L2glWkOcIdTaN2gVHQaMp6EtZvtpiu"
DJANGO_ARGON2 = "argon2$argon2id$v=19$m=64,t=1,p=1$c2Vhc2FsdHNlYXNhbHQ$Lmh1t1uYmSu+BGZ9AnJndbfuSv2b7igdtxNqpfm+aCo"

passwords = st.text(
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=64
)


def raw_argon2(
    password: str,
    *,
    t: int = 2,
    m: int = 64,
    p: int = 2,
    kind: Type = Type.ID,
    version: int = 19,
    salt_len: int = 16,
    hash_len: int = 32,
) -> str:
    salt = b"s" * salt_len
    return hash_secret(password.encode(), salt, t, m, p, hash_len, kind, version).decode()


def pbkdf2(password: str, iterations: int = 1000, salt: str = "seasalt") -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def bcrypt_hash(password: bytes) -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(4)).decode()


# ---- round trips -----------------------------------------------------------------------------------------


@given(password=passwords)
@settings(max_examples=60, deadline=None)
def test_round_trip_arbitrary_unicode(password: str) -> None:
    stored = CHEAP.hash(password)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert CHEAP.verify(stored, password)
    assert CHEAP.verify(stored, password.encode("utf-8"))
    assert CHEAP.verify_and_update(stored, password) == (True, None)
    assert not CHEAP.needs_rehash(stored)


@given(password=passwords, other=passwords)
@settings(max_examples=60, deadline=None)
def test_different_password_never_verifies(password: str, other: str) -> None:
    import unicodedata

    stored = CHEAP.hash(password)
    same = unicodedata.normalize("NFKC", password) == unicodedata.normalize("NFKC", other)
    assert CHEAP.verify(stored, other) is same
    ok, new_hash = CHEAP.verify_and_update(stored, other)
    assert ok is same
    assert new_hash is None


@given(stored=st.one_of(st.text(max_size=200), st.binary(max_size=200)))
@settings(max_examples=100, deadline=None)
def test_arbitrary_stored_strings_give_false_or_invalid_hash(stored: str | bytes) -> None:
    try:
        result = CHEAP.verify(stored, "password")  # type: ignore[arg-type]
    except InvalidHash:
        return
    assert result is False


@given(
    before=st.text(max_size=8),
    surrogate=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    after=st.text(max_size=8),
)
@settings(max_examples=50, deadline=None)
def test_any_lone_surrogate_is_invalid_password(before: str, surrogate: str, after: str) -> None:
    with pytest.raises(InvalidPassword):
        CHEAP.hash(before + surrogate + after)
    with pytest.raises(InvalidPassword):
        CHEAP.verify(STORED, before + surrogate + after)


def test_nfkc_equivalent_forms_verify() -> None:
    stored = CHEAP.hash("\ufb01le")  # "file" with the fi ligature
    assert CHEAP.verify(stored, "file")
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert CHEAP.verify(CHEAP.hash(composed), decomposed)


def test_normalisation_can_be_turned_off() -> None:
    hasher = PasswordHasher(TEST, allow_weak=True, normalize=None)
    stored = hasher.hash("\ufb01le")
    assert hasher.verify(stored, "\ufb01le")
    assert not hasher.verify(stored, "file")


def test_unnormalised_foreign_argon2_hash_verifies_and_is_upgraded() -> None:
    # argon2-cffi (or pwdlib, passlib) hashed the password as typed, without normalisation.
    stored = raw_argon2("caf\u00e9\ufb01", t=2, m=64, p=2)
    ok, new_hash = HASHER.verify_and_update(stored, "caf\u00e9\ufb01")
    assert ok
    assert new_hash is not None
    assert HASHER.verify_and_update(new_hash, "caf\u00e9\ufb01") == (True, None)
    assert HASHER.verify(new_hash, "cafe\u0301fi")


# ---- profiles and parameters -----------------------------------------------------------------------------


def test_default_profile_is_owasp_argon2id_with_one_lane() -> None:
    assert DEFAULT_PARAMETERS == OWASP_MIN == RECOMMENDED
    assert (OWASP_MIN.memory_cost, OWASP_MIN.time_cost, OWASP_MIN.parallelism) == (19456, 2, 1)
    assert OWASP_MIN.meets_owasp()
    assert RFC_9106_LOW_MEMORY.meets_owasp()
    assert not TEST.meets_owasp()
    hasher = PasswordHasher()
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert Argon2Parameters.from_hash(stored) == DEFAULT_PARAMETERS
    assert hasher.verify(stored, "correct horse battery staple")


def test_weak_parameters_need_explicit_opt_in() -> None:
    with pytest.raises(ConfigurationError):
        PasswordHasher(TEST)
    with pytest.raises(ConfigurationError):
        PasswordHasher(Argon2Parameters(time_cost=1, memory_cost=19456))
    assert PasswordHasher(Argon2Parameters(time_cost=1, memory_cost=47104)).parameters.meets_owasp()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_cost": 0, "memory_cost": 64},
        {"time_cost": 1, "memory_cost": 7},
        {"time_cost": 1, "memory_cost": 64, "parallelism": 0},
        {"time_cost": 1, "memory_cost": 64, "parallelism": 16},
        {"time_cost": 1, "memory_cost": 64, "hash_len": 8},
        {"time_cost": 1, "memory_cost": 64, "salt_len": 8},
        {"time_cost": 1.5, "memory_cost": 64},
        {"time_cost": True, "memory_cost": 64},
    ],
)
def test_invalid_parameters_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Argon2Parameters(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"normalize": "NFX"},
        {"max_password_bytes": 0},
        {"memory_budget_kib": 0},
        {"max_concurrency": 0},
        {"max_verify_memory_kib": 4},
        {"parameters": "argon2id"},
    ],
)
def test_invalid_hasher_settings_are_refused(kwargs: dict[str, object]) -> None:
    options: dict[str, object] = {"parameters": TEST, "allow_weak": True, **kwargs}
    with pytest.raises(ConfigurationError):
        PasswordHasher(**options)  # type: ignore[arg-type]


def test_from_hash_refuses_other_schemes() -> None:
    with pytest.raises(InvalidHash):
        Argon2Parameters.from_hash(bcrypt_hash(b"pw"))
    with pytest.raises(InvalidHash):
        Argon2Parameters.from_hash("nonsense")


class FakeTimer:
    """Each hash "takes" ``step`` seconds: start and end reads differ by it."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:
            self.now += self.step
        return self.now


def test_calibrate_scales_iterations_to_the_target() -> None:
    # 10 ms per hash at OWASP's floor for 7 MiB (5 iterations): 2 ms per pass, so 40 ms -> 20 passes.
    params = calibrate(40, memory_cost=7168, samples=2, timer=FakeTimer(0.010))
    assert params == Argon2Parameters(time_cost=20, memory_cost=7168, parallelism=1)
    assert params.meets_owasp()


def test_calibrate_never_goes_below_owasp_or_above_the_cap() -> None:
    assert calibrate(0.001, memory_cost=7168, samples=1, timer=FakeTimer(0.010)).time_cost == 5
    assert calibrate(10_000, memory_cost=7168, samples=1, max_time_cost=7, timer=FakeTimer(0.010)).time_cost == 7
    real = calibrate(1, memory_cost=7168, samples=1)
    assert real.meets_owasp()
    with pytest.raises(ConfigurationError):
        calibrate(100, memory_cost=4096)
    with pytest.raises(ConfigurationError):
        calibrate(0, memory_cost=7168)


# ---- the upgrade matrix ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored_kwargs", "due"),
    [
        pytest.param({}, False, id="equal"),
        pytest.param({"t": 1}, True, id="fewer-iterations"),
        pytest.param({"m": 32}, True, id="less-memory"),
        pytest.param({"p": 1}, True, id="fewer-lanes"),
        pytest.param({"hash_len": 16}, True, id="shorter-hash"),
        pytest.param({"salt_len": 8}, True, id="shorter-salt"),
        pytest.param({"t": 3}, False, id="more-iterations"),
        pytest.param({"m": 128}, False, id="more-memory"),
        pytest.param({"p": 4, "m": 128}, False, id="more-lanes"),
        pytest.param({"t": 3, "m": 256, "p": 4, "hash_len": 64, "salt_len": 32}, False, id="stronger-all"),
        pytest.param({"t": 4, "m": 32}, True, id="mixed-one-below"),
        pytest.param({"kind": Type.I}, True, id="argon2i"),
        pytest.param({"kind": Type.D}, True, id="argon2d"),
        pytest.param({"kind": Type.I, "t": 5, "m": 256}, True, id="stronger-argon2i"),
        pytest.param({"version": 0x10}, True, id="argon2-v1.0"),
    ],
)
def test_upgrade_matrix_argon2(stored_kwargs: dict[str, object], due: bool) -> None:
    stored = raw_argon2("hunter2", **stored_kwargs)  # type: ignore[arg-type]
    assert HASHER.needs_rehash(stored) is due
    ok, new_hash = HASHER.verify_and_update(stored, "hunter2")
    assert ok
    if due:
        assert new_hash is not None
        assert new_hash.startswith("$argon2id$v=19$m=64,t=2,p=2$")
        assert HASHER.verify_and_update(new_hash, "hunter2") == (True, None)
    else:
        assert new_hash is None
    assert HASHER.verify_and_update(stored, "hunter3") == (False, None)


LEGACY = [
    pytest.param(bcrypt_hash(DJANGO_PASSWORD.encode()), id="bcrypt-2b"),
    pytest.param(bcrypt_hash(DJANGO_PASSWORD.encode()).replace("$2b$", "$2a$", 1), id="bcrypt-2a"),
    pytest.param(bcrypt_hash(DJANGO_PASSWORD.encode()).replace("$2b$", "$2y$", 1), id="bcrypt-2y"),
    pytest.param("bcrypt$" + bcrypt_hash(DJANGO_PASSWORD.encode()), id="django-bcrypt"),
    pytest.param(DJANGO_BCRYPT_SHA256, id="django-bcrypt_sha256"),
    pytest.param(DJANGO_PBKDF2, id="django-pbkdf2_sha256"),
    pytest.param(DJANGO_ARGON2, id="django-argon2"),
]


@pytest.mark.parametrize("stored", LEGACY)
def test_legacy_hashes_verify_and_upgrade_to_argon2id(stored: str) -> None:
    assert HASHER.needs_rehash(stored)
    ok, new_hash = HASHER.verify_and_update(stored, DJANGO_PASSWORD)
    assert ok
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$")
    assert HASHER.verify_and_update(new_hash, DJANGO_PASSWORD) == (True, None)
    assert HASHER.verify(stored, "hunter2") is False
    assert HASHER.verify_and_update(stored, "hunter2") == (False, None)


def test_django_default_pbkdf2_iterations() -> None:
    assert HASHER.verify(DJANGO_PBKDF2_DEFAULT, DJANGO_PASSWORD)


def test_pbkdf2_from_hashlib() -> None:
    stored = pbkdf2("s3cret", iterations=1234, salt="abcXYZ09")
    assert HASHER.verify(stored, "s3cret")
    assert not HASHER.verify(stored, "s3cret ")


def test_long_password_against_bcrypt_is_false_not_an_error() -> None:
    prefix = "a" * 72
    stored = bcrypt_hash(prefix.encode())
    assert HASHER.verify(stored, prefix)
    # Old bcrypt truncated silently: a longer password sharing the first 72 bytes must not pass.
    assert HASHER.verify(stored, prefix + "b" * 28) is False
    assert HASHER.verify_and_update(stored, "é" * 100) == (False, None)


def test_bcrypt_sha256_accepts_long_passwords() -> None:
    long = "x" * 200
    digest = hashlib.sha256(long.encode()).hexdigest().encode()
    stored = "bcrypt_sha256$" + bcrypt.hashpw(digest, bcrypt.gensalt(4)).decode()
    assert HASHER.verify(stored, long)
    assert not HASHER.verify(stored, long[:-1])


def test_legacy_schemes_can_be_disabled() -> None:
    hasher = PasswordHasher(TEST, allow_weak=True, accept_legacy=False)
    for stored in (DJANGO_PBKDF2, DJANGO_BCRYPT_SHA256):
        with pytest.raises(InvalidHash):
            hasher.verify(stored, DJANGO_PASSWORD)


def test_an_unusable_legacy_hash_raises_invalid_hash_with_no_internal_exception_chained() -> None:
    # As for garbage and unusable argon2 hashes: InvalidHash alone, not "during handling of" an internal one
    # (whose own context may be a parser's error about the stored hash).
    no_legacy = PasswordHasher(TEST, allow_weak=True, accept_legacy=False)
    cases = [
        (no_legacy, DJANGO_PBKDF2),
        (HASHER, pbkdf2("hunter2", iterations=10_000_001)),
        (HASHER, "argon2" + raw_argon2("hunter2").replace("m=64,", "m=2097152,")),
        (HASHER, "garbage"),
    ]
    for hasher, stored in cases:
        with pytest.raises(InvalidHash) as info:
            hasher.verify(stored, "hunter2")
        assert info.value.__context__ is None, stored
        assert info.value.__cause__ is None, stored


def test_max_verify_memory_kib_set_on_a_hasher_bounds_its_next_verifications() -> None:
    # A public attribute: lowered after construction, it refuses what it no longer allows (as it always did).
    hasher = PasswordHasher(TEST, allow_weak=True)
    stored = raw_argon2("hunter2", t=1, m=64, p=1)
    assert hasher.verify(stored, "hunter2")
    hasher.max_verify_memory_kib = 32
    with pytest.raises(InvalidHash, match="more memory"):
        hasher.verify(stored, "hunter2")
    with pytest.raises(InvalidHash, match="more memory"):
        hasher.verify("argon2" + stored, "hunter2")  # Django's argon2 format: the same bound
    hasher.max_verify_memory_kib = 64
    assert hasher.verify(stored, "hunter2")


def test_missing_bcrypt_package_gives_invalid_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = bcrypt_hash(b"pw")
    monkeypatch.setitem(sys.modules, "bcrypt", None)
    with pytest.raises(InvalidHash, match="bcrypt"):
        HASHER.verify(stored, "pw")


# ---- peppers ---------------------------------------------------------------------------------------------


def test_pepper_id_is_kept_with_the_hash_and_the_pepper_is_not() -> None:
    hasher = PasswordHasher(TEST, allow_weak=True, peppers={"p1": PEPPER1})
    stored = hasher.hash("hunter2")
    assert ",keyid=p1$" in stored
    assert PEPPER1.decode() not in stored
    assert base64.b64encode(PEPPER1).decode().rstrip("=") not in stored
    assert hasher.verify(stored, "hunter2")
    assert not hasher.verify(stored, "hunter3")
    assert not hasher.needs_rehash(stored)
    assert "pepper-one" not in repr(hasher)
    parsed = parse_hash(stored)
    assert parsed is not None


def test_pepper_key_matters() -> None:
    stored = PasswordHasher(TEST, allow_weak=True, peppers={"p1": PEPPER1}).hash("hunter2")
    other_key = PasswordHasher(TEST, allow_weak=True, peppers={"p1": PEPPER2})
    assert not other_key.verify(stored, "hunter2")
    # Without its pepper a peppered hash is worthless to an attacker who has only the database.
    assert not CHEAP.verify(stored.replace(",keyid=p1", ""), "hunter2")


def test_pepper_rotation() -> None:
    old = PasswordHasher(TEST, allow_weak=True, peppers={"p1": PEPPER1})
    new = PasswordHasher(TEST, allow_weak=True, peppers={"p2": PEPPER2, "p1": PEPPER1}, current_pepper="p2")
    stored = old.hash("hunter2")
    assert new.needs_rehash(stored)
    assert new.verify_and_update(stored, "wrong") == (False, None)
    ok, rotated = new.verify_and_update(stored, "hunter2")
    assert ok
    assert rotated is not None
    assert ",keyid=p2$" in rotated
    assert new.verify_and_update(rotated, "hunter2") == (True, None)
    # Once p1 is retired, its hashes are unusable (InvalidHash), never silently accepted.
    retired = PasswordHasher(TEST, allow_weak=True, peppers={"p2": PEPPER2})
    with pytest.raises(InvalidHash, match="pepper"):
        retired.verify(stored, "hunter2")
    assert retired.verify(rotated, "hunter2")


def test_adding_a_pepper_upgrades_unpeppered_hashes() -> None:
    stored = CHEAP.hash("hunter2")
    peppered = PasswordHasher(TEST, allow_weak=True, peppers={"p1": PEPPER1})
    ok, new_hash = peppered.verify_and_update(stored, "hunter2")
    assert ok
    assert new_hash is not None
    assert ",keyid=p1$" in new_hash
    with pytest.raises(InvalidHash):
        CHEAP.verify(new_hash, "hunter2")


@pytest.mark.parametrize(
    ("peppers", "current"),
    [
        ({"p1": b"short"}, None),
        ({"p1": "a string, not bytes, 0123456789"}, None),
        ({"bad id!": PEPPER1}, None),
        ({"x" * 17: PEPPER1}, None),
        ({"p1": PEPPER1, "p2": PEPPER2}, None),
        ({"p1": PEPPER1}, "p2"),
        (None, "p1"),
    ],
)
def test_unsafe_pepper_settings_are_refused(peppers: dict[str, bytes] | None, current: str | None) -> None:
    with pytest.raises(ConfigurationError) as info:
        PasswordHasher(TEST, allow_weak=True, peppers=peppers, current_pepper=current)
    assert "pepper-one" not in str(info.value)


# ---- bad input -------------------------------------------------------------------------------------------

STORED = CHEAP.hash("hunter2")


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("a" * 10_000_000, id="huge"),
        pytest.param(b"a" * 10_000_000, id="huge-bytes"),
        pytest.param("a" * 1025, id="one-byte-over"),
        pytest.param("é" * 513, id="multibyte-over"),
        pytest.param("abc\x00def", id="nul"),
        pytest.param("\x00", id="only-nul"),
        pytest.param("ab\ud800cd", id="lone-surrogate"),
        pytest.param("\udfff", id="lone-low-surrogate"),
        pytest.param(b"\xff\xfe", id="invalid-utf8"),
        pytest.param(None, id="none"),
        pytest.param(12345, id="int"),
    ],
)
def test_bad_passwords_raise_invalid_password(password: object) -> None:
    for call in (
        lambda: CHEAP.hash(password),  # type: ignore[arg-type]
        lambda: CHEAP.verify(STORED, password),  # type: ignore[arg-type]
        lambda: CHEAP.verify_and_update(STORED, password),  # type: ignore[arg-type]
        lambda: CHEAP.dummy_verify(password),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidPassword) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert info.value.status == 400
        if isinstance(password, str) and password:
            assert password[:3] not in info.value.detail


def test_length_limit_is_in_bytes_and_inclusive() -> None:
    assert CHEAP.verify(CHEAP.hash("a" * 1024), "a" * 1024)
    assert CHEAP.verify(CHEAP.hash("é" * 512), "é" * 512)
    small = PasswordHasher(TEST, allow_weak=True, max_password_bytes=16)
    with pytest.raises(InvalidPassword, match="16 bytes"):
        small.hash("\ufdfa")  # 3 bytes as typed, 33 bytes after NFKC


def test_empty_password() -> None:
    with pytest.raises(InvalidPassword, match="empty"):
        CHEAP.hash("")
    with pytest.raises(InvalidPassword):
        CHEAP.hash(b"")
    assert CHEAP.verify(STORED, "") is False
    # Even a legacy hash of the empty password never lets an empty password in.
    assert HASHER.verify_and_update(pbkdf2(""), "") == (False, None)


GARBAGE = [
    "",
    "garbage",
    "$argon2id$",
    "$argon2id$v=19$m=8,t=1,p=1$$",
    "$argon2id$v=19$m=8,t=1,p=1$YQ$YWJj",  # 1-byte salt: libargon2 refuses it
    "$argon2id$v=19$m=2,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA",  # memory below 8*p
    "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA",  # over the verify cap
    "$argon2id$v=19$m=8,t=1,p=1,keyid=nope$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA",  # unknown pepper
    STORED[: STORED.rindex("$") + 2],  # a one-character digest
    STORED[: STORED.rindex("$")],  # no digest at all
    STORED + "$",
    STORED.replace("argon2id", "argon2x"),
    "$2b$04$short",
    "$2b$99$" + "a" * 53,
    "pbkdf2_sha256$abc$salt$hash",
    "pbkdf2_sha256$999999999$salt$" + "A" * 43 + "=",
    "pbkdf2_sha256$1000$salt$" + "!" * 44,
    "bcrypt_sha256$$nothing",
    "argon2$argon2id$garbage",
    "md5$salt$hash",
    "$argon2id$v=19$m=8,t=1,p=1$" + "A" * 2000,
    "\u00e9" * 10,
    b"\xff\xfe",
    None,
    12345,
]


@pytest.mark.parametrize("stored", GARBAGE)
def test_garbage_hashes_raise_invalid_hash(stored: object) -> None:
    for call in (
        lambda: HASHER.verify(stored, "hunter2"),  # type: ignore[arg-type]
        lambda: HASHER.verify_and_update(stored, "hunter2"),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidHash) as info:
            call()
        assert isinstance(info.value, ValueError)
        if isinstance(stored, str) and len(stored) > 8:
            assert stored not in info.value.detail


def test_truncated_hash_is_garbage_or_a_mismatch() -> None:
    # A digest cut to a still-valid base64 length is a well-formed (shorter) hash: it just never matches.
    for cut in range(1, 30):
        with contextlib.suppress(InvalidHash):
            assert CHEAP.verify(STORED[:-cut], "hunter2") is False


@pytest.mark.parametrize("stored", [g for g in GARBAGE if parse_hash(g) is None])
def test_needs_rehash_on_garbage_raises(stored: object) -> None:
    with pytest.raises(InvalidHash):
        HASHER.needs_rehash(stored)  # type: ignore[arg-type]


@given(
    password=passwords,
    wrong=passwords,
    stored_kind=st.sampled_from(["weak-argon2", "argon2i", "pbkdf2", "bcrypt", "peppered-old"]),
)
@settings(max_examples=40, deadline=None)
def test_wrong_password_never_yields_a_hash(password: str, wrong: str, stored_kind: str) -> None:
    assume(wrong != password)
    hasher = PasswordHasher(TEST, allow_weak=True, peppers={"p2": PEPPER2, "p1": PEPPER1}, current_pepper="p2")
    stored = {
        "weak-argon2": lambda: raw_argon2(password, t=1, m=8, p=1, salt_len=8, hash_len=16),
        "argon2i": lambda: raw_argon2(password, kind=Type.I),
        "pbkdf2": lambda: pbkdf2(password, iterations=10),
        "bcrypt": lambda: bcrypt_hash(password.encode()[:72]),
        "peppered-old": lambda: PasswordHasher(TEST, allow_weak=True, peppers={"p1": PEPPER1}).hash(password),
    }[stored_kind]()
    ok, new_hash = hasher.verify_and_update(stored, wrong)
    if not ok:
        assert new_hash is None


# ---- timing paths: equal work ----------------------------------------------------------------------------


class VerifySpy:
    """Records the argon2 parameters of every libargon2 verification."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, int, int, int]] = []
        real = verify_secret

        def spy(hash: bytes, secret: bytes, type: Type) -> bool:
            parsed = parse_hash(hash)
            assert isinstance(parsed, ParsedArgon2)
            self.calls.append((parsed.type, parsed.time_cost, parsed.memory_cost, parsed.parallelism))
            return real(hash, secret, type)

        monkeypatch.setattr(argon2.low_level, "verify_secret", spy)


def test_unknown_user_garbage_hash_and_wrong_password_do_the_same_work(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = PasswordHasher(POLICY, allow_weak=True, peppers={"p1": PEPPER1})
    stored = hasher.hash("hunter2")
    spy = VerifySpy(monkeypatch)
    expected = [("argon2id", 2, 64, 2)]

    assert hasher.dummy_verify("hunter2") is False
    assert spy.calls == expected
    spy.calls.clear()
    with pytest.raises(InvalidHash):
        hasher.verify("garbage", "hunter2")
    assert spy.calls == expected
    spy.calls.clear()
    with pytest.raises(InvalidHash):
        hasher.verify("$argon2id$v=19$m=64,t=2,p=2,keyid=gone$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA", "x")
    assert spy.calls == expected
    spy.calls.clear()
    assert hasher.verify(stored, "wrong") is False
    assert spy.calls == expected
    spy.calls.clear()
    with pytest.raises(InvalidHash):
        hasher.verify("$2b$99$" + "a" * 53, "x")
    assert spy.calls == expected


# Passwords that NFKC changes (ligatures, full-width, circled digits, units, fractions, compatibility
# signs), alone or mixed into arbitrary text: a hash made elsewhere saw them un-normalised, so a wrong guess
# tries both forms, and every other path must then do the same two verifications.
NFKC_CHANGING = st.text(
    alphabet=st.sampled_from("\ufb01\ufb02\u2460\u338f\uff21\uff42\u00bd\u2167\u2122\u1d43\u2126\u212b\u00a0"),
    min_size=1,
    max_size=8,
)
ANY_PASSWORD = st.one_of(passwords, NFKC_CHANGING, st.tuples(passwords, NFKC_CHANGING, passwords).map("".join))
# Near-miss argon2 strings: any parameters and base64 lengths (some usable, most refused before or by libargon2).
NEAR_ARGON2 = st.builds(
    "$argon2{}$v={}$m={},t={},p={}{}${}${}".format,
    st.sampled_from(["id", "i", "d"]),
    st.sampled_from(["16", "19", "18", "99", "019", "0"]),
    st.one_of(st.integers(0, 300).map(str), st.integers(0, 9_999_999_999).map(str), st.just("064")),
    st.one_of(st.integers(0, 4).map(str), st.integers(0, 9_999_999_999).map(str), st.just("02")),
    st.one_of(st.integers(0, 999).map(str), st.just("02")),
    st.sampled_from(["", ",keyid=p1", ",keyid=p2", ",keyid=gone"]),
    st.text(alphabet="ABCDabcd0189+/", min_size=1, max_size=40),
    st.text(alphabet="ABCDabcd0189+/", min_size=1, max_size=90),
)


def _hasher(kind: str) -> PasswordHasher:
    peppers = {"p1": PEPPER1, "p2": PEPPER2} if kind != "plain" else None
    return PasswordHasher(
        POLICY,
        allow_weak=True,
        peppers=peppers,
        current_pepper="p2" if peppers else None,
        accept_legacy=kind != "no-legacy",
        max_verify_memory_kib=256,  # drawn hashes that pass stay cheap
    )


HASHERS = {kind: _hasher(kind) for kind in ("plain", "peppered", "no-legacy")}


def _work(spy: VerifySpy, call: Callable[[], object]) -> tuple[list[tuple[str, int, int, int]], str]:
    """The argon2 verifications ``call`` performed, and how it ended (False or an exception's name)."""
    spy.calls.clear()
    try:
        outcome = repr(call())
    except InvalidHash:
        outcome = "InvalidHash"
    return list(spy.calls), outcome


@given(password=ANY_PASSWORD, other=ANY_PASSWORD, kind=st.sampled_from(sorted(HASHERS)), near=NEAR_ARGON2)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_unknown_user_wrong_password_and_malformed_hash_perform_the_same_verifications(
    monkeypatch: pytest.MonkeyPatch, password: str, other: str, kind: str, near: str
) -> None:
    assume(unicodedata.normalize("NFKC", password) != unicodedata.normalize("NFKC", other))
    assume(password.encode() != other.encode())
    hasher = HASHERS[kind]
    spy = VerifySpy(monkeypatch)
    forms = 1 if unicodedata.normalize("NFKC", password) == password else 2
    # Unknown user: one verification per form of the password, at the policy's parameters.
    unknown, outcome = _work(spy, lambda: hasher.dummy_verify(password))
    assert (unknown, outcome) == ([("argon2id", 2, 64, 2)] * forms, "False")
    assert _work(spy, lambda: hasher.authenticate(None, password)) == (unknown, "False")
    # Wrong password: a hash of this hasher, a foreign un-normalised one (argon2-cffi, pwdlib), old peppers.
    wrong = [hasher.hash(other), raw_argon2(other)]
    if kind != "plain":
        wrong.append(PasswordHasher(POLICY, allow_weak=True, peppers={"p1": PEPPER1}).hash(other))
    for stored in wrong:
        assert _work(spy, lambda: hasher.verify(stored, password)) == (unknown, "False")  # noqa: B023
        assert _work(spy, lambda: hasher.verify_and_update(stored, password)) == (unknown, "(False, None)")  # noqa: B023
    # Malformed or unusable stored hashes: the same verifications (on the dummy) before InvalidHash.
    malformed = [g for g in GARBAGE if g is not None and not isinstance(g, int)] + [
        "$argon2id$v=19$m=64,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA$",
        "$argon2id$v=19$m=64,t=2,p=2,keyid=gone$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA",
        "$argon2id$v=99$m=64,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA",  # unknown version
        "$argon2id$v=019$m=64,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA",  # a leading zero
        "$argon2id$v=19$m=064,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA",
        "$argon2id$v=19$m=64,t=0,p=2$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA",  # no iterations
        "$argon2id$v=19$m=64,t=2,p=0$c2FsdHNhbHRzYWx0c2FsdA$YWJjZGVmZ2hpamtsbW5vcA",  # no lanes
        "$argon2id$v=19$m=64,t=2,p=2$c2FsdHNhbA$YWJjZGVmZ2hpamtsbW5vcA",  # 7-byte salt
        "$argon2id$v=19$m=64,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdA$YWI",  # 2-byte digest
        "$argon2id$v=19$m=64,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdB$YWJjZGVmZ2hpamtsbW5vcA",  # non-canonical base64
        "$2b$20$" + "a" * 53,  # bcrypt cost beyond the cap
        "pbkdf2_sha256$99999999$salt$" + "A" * 43 + "=",  # iterations beyond the cap
        DJANGO_BCRYPT_SHA256 if kind == "no-legacy" else "garbage",
        DJANGO_ARGON2 if kind == "no-legacy" else "garbage",
    ]
    for stored in malformed:
        assert _work(spy, lambda: hasher.verify(stored, password)) == (unknown, "InvalidHash")  # noqa: B023
    # Any near-miss argon2 string: refused after exactly the unknown user's work, or a real (cheap) check of
    # the same number of verifications.
    calls, outcome = _work(spy, lambda: hasher.verify(near, password))
    if outcome == "InvalidHash":
        assert calls == unknown
    else:
        assert outcome == "False"
        assert len(calls) == forms


@pytest.mark.parametrize("password", ["x" * 33, "\ufdfa\ufdfa", b"\xff" * 8, "nul\x00"])
def test_a_refused_password_costs_no_verification_on_any_path(
    monkeypatch: pytest.MonkeyPatch, password: object
) -> None:
    # 32 bytes at most: "\ufdfa" is 3 bytes as typed and 33 after NFKC.
    hasher = PasswordHasher(POLICY, allow_weak=True, max_password_bytes=32)
    stored = hasher.hash("hunter2")
    spy = VerifySpy(monkeypatch)
    for call in (
        lambda: hasher.dummy_verify(password),  # type: ignore[arg-type]
        lambda: hasher.verify(stored, password),  # type: ignore[arg-type]
        lambda: hasher.verify("garbage", password),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidPassword):
            call()
    assert spy.calls == []


def test_a_matching_password_stops_at_the_form_that_matched(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = HASHERS["plain"]
    spy = VerifySpy(monkeypatch)
    assert _work(spy, lambda: hasher.verify(hasher.hash("\ufb01le"), "\ufb01le")) == ([("argon2id", 2, 64, 2)], "True")
    foreign = raw_argon2("\ufb01le")
    assert _work(spy, lambda: hasher.verify(foreign, "\ufb01le")) == ([("argon2id", 2, 64, 2)] * 2, "True")


def test_dummy_verify() -> None:
    assert CHEAP.dummy_verify("anything") is False
    assert CHEAP.dummy_verify(b"bytes too") is False
    peppered = PasswordHasher(TEST, allow_weak=True, peppers={"p1": PEPPER1})
    assert peppered.dummy_verify("anything") is False
    with pytest.raises(InvalidPassword):
        CHEAP.dummy_verify("nul\x00")


def test_authenticate_login_flow() -> None:
    saved: list[str] = []
    weak = raw_argon2("hunter2", t=1)
    assert HASHER.authenticate(None, "hunter2", on_rehash=saved.append) is False
    assert HASHER.authenticate(weak, "wrong", on_rehash=saved.append) is False
    assert saved == []
    assert HASHER.authenticate(weak, "hunter2", on_rehash=saved.append) is True
    assert len(saved) == 1
    assert HASHER.authenticate(saved[0], "hunter2", on_rehash=saved.append) is True
    assert len(saved) == 1
    assert HASHER.authenticate(weak, "hunter2") is True
