"""PasswordPolicy: every NIST SP 800-63B rev. 4 rule, the shipped blocklist, the offline Pwned file, and its shells
outside Django (a pydantic field in a FastAPI request model, a Flask form)."""

from __future__ import annotations

import hashlib
import sys
import time
import types
import unicodedata
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

import backend_guard as bg
from backend_guard.exceptions import ConfigurationError, GuardError, InvalidPassword
from backend_guard.passwords import CheckedPassword, PasswordIssue, PwnedPasswordsFile
from backend_guard.passwords._blocklist import SHIPPED_LIST, Blocklist, read_list
from backend_guard.passwords._policy import MESSAGES
from backend_guard.passwords._rules import context_tokens, fold, is_periodic, trivial_cover

GOOD = "correct horse battery staple"
POLICY = bg.PasswordPolicy()


def codes(password: object, policy: bg.PasswordPolicy = POLICY, **context: object) -> list[str]:
    return [issue.code for issue in policy.reasons(password, context or None)]


def _fixed_messages(policy: bg.PasswordPolicy) -> set[str]:
    """Every message the policy can give: fixed text per code, filled from its settings only."""
    kinds = ["username", "e-mail address", "site's name", "details", "personal details"]
    return {policy.issue(code, context=kind).message for code in MESSAGES for kind in kinds}


# ---- length (NIST 3.1.1.2: 15 single-factor, 8 with MFA, >= 64 accepted, code points after NFKC) ---------------


def test_length_defaults_follow_nist() -> None:
    assert POLICY.min_length == 15
    assert bg.PasswordPolicy(mfa=True).min_length == 8
    assert codes("x7#Kq!2vLm9@Rt4") == []  # 15 characters
    assert codes("x7#Kq!2vLm9@Rt") == ["too-short"]
    assert codes("x7#Kq!2v", bg.PasswordPolicy(mfa=True)) == []
    assert codes("x7#Kq!2", bg.PasswordPolicy(mfa=True)) == ["too-short"]
    assert codes("") == ["too-short"]


def test_a_long_password_of_any_script_is_accepted_up_to_the_limits() -> None:
    assert codes("ж" * 3 + "ёлка-палка в лесу густом") == []
    long_one = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(64))  # 64 CJK code points, 192 bytes
    assert codes(long_one) == []
    assert codes("a" * 1025) == ["too-long"]


def test_length_is_counted_in_code_points_after_the_hasher_s_nfkc() -> None:
    # the ligatures U+FB01..FB04 are one code point each, "fi", "fl", "ffi", "ffl" after NFKC
    policy = bg.PasswordPolicy(mfa=True)
    assert codes("\ufb01\ufb02\ufb03\ufb04", policy) == []  # 10 code points after NFKC
    assert codes("\ufb01\ufb02\ufb03\ufb04", bg.PasswordPolicy(mfa=True, normalize=None)) == ["too-short"]
    # e + combining acute: two code points before NFC/NFKC composes them into one
    assert len(unicodedata.normalize("NFKC", "e\u0301")) == 1


def test_hasher_gives_its_normalisation_and_byte_cap() -> None:
    hasher = bg.PasswordHasher(bg.passwords.TEST, allow_weak=True, normalize=None, max_password_bytes=100)
    policy = bg.PasswordPolicy(hasher=hasher)
    assert (policy.normalize, policy.max_bytes) == (None, 100)
    assert codes("é" * 51, policy) == ["too-long"]  # 102 bytes
    assert codes("xq!" * 17, policy) == ["repeated-characters"]  # 51 bytes: within the cap


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_length": 7},
        {"min_length": 100, "max_length": 80},
        {"max_length": 63},
        {"max_bytes": 32},
        {"max_bytes": (1 << 20) + 1},
        {"min_length": "15"},
        {"normalize": "NFX"},
        {"min_score": 5},
        {"context_words": "acme"},
        {"blocklist": "hunter2"},
    ],
)
def test_unsafe_or_invalid_settings_are_refused_at_start_up(kwargs: dict[str, Any]) -> None:
    if "min_score" in kwargs:
        sys.modules.setdefault("zxcvbn", _fake_zxcvbn(4))
    try:
        with pytest.raises(ConfigurationError):
            bg.PasswordPolicy(**kwargs)
    finally:
        if "min_score" in kwargs:
            sys.modules.pop("zxcvbn", None)


def test_a_megabyte_password_costs_what_the_byte_cap_allows() -> None:
    huge, huge_bytes = "x" * (1 << 20), b"x" * (1 << 20)
    POLICY.reasons("warm the blocklist up")
    for value in (huge, huge_bytes, "é" * 600):
        start = time.perf_counter()
        assert codes(value) == ["too-long"]
        assert time.perf_counter() - start < 0.05  # microseconds in fact: the length alone decides


def test_input_that_is_not_usable_text_has_its_own_codes() -> None:
    assert codes(12345678901234567) == ["not-text"]
    assert codes(None) == ["not-text"]
    assert codes("abcdefgh\x00ijklmnopq") == ["invalid-character"]
    assert codes("abcdefgh\ud800ijklmnopq") == ["invalid-character"]
    assert codes(b"\xff" * 20) == ["invalid-character"]
    assert codes(GOOD.encode()) == []


# ---- the blocklist (NIST 3.1.1.2: commonly used, expected or compromised values) ------------------------------


@pytest.mark.parametrize(
    "password",
    ["password", "123456", "qwerty", "iloveyou", "dragon", "monkey", "letmein", "football", "P@ssw0rd", "Sunshine"],
)
def test_real_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    assert "common-password" in codes(password, bg.PasswordPolicy(mfa=True))


@pytest.mark.parametrize(
    "password",
    ["Password2024!", "password1234567", "!!dragon!!", "qwerty123456789", "Password2024!!!!!!!", "12121212monkey"],
)
def test_a_common_word_in_a_short_or_trivial_affix_is_still_common(password: str) -> None:
    assert "common-password" in codes(password)


@pytest.mark.parametrize("password", [GOOD, "dragon 8472 9913 55 ok", "Tr0ub4dor&3 is my horse"])
def test_passphrases_and_common_words_with_real_additions_pass(password: str) -> None:
    assert "common-password" not in codes(password)


def test_the_shipped_list_has_its_licence_and_every_entry() -> None:
    header = SHIPPED_LIST.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "BSD" in header
    assert "Django Software Foundation" in header
    assert "Royce Williams" in header
    words = read_list(SHIPPED_LIST)
    assert len(words) == 19640
    assert {"#1bitch", "friend of emily", "password", "123456"} <= words
    body = SHIPPED_LIST.read_text(encoding="utf-8").split("\n")
    entries = body[body.index("") + 1 : -1]
    assert entries == sorted(entries)  # sorted, deduplicated, case-folded
    assert all(entry == unicodedata.normalize("NFKC", entry).casefold() for entry in entries)


def test_user_lists_come_from_words_and_files(tmp_path: Path) -> None:
    import gzip

    plain = tmp_path / "banned.txt"
    plain.write_text("# our own list\nAcmeRocks2025\n\n  spaces around  \n", encoding="utf-8")
    packed = tmp_path / "more.txt.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write("zebra-stripes-forever\n")
    policy = bg.PasswordPolicy(
        common_passwords=False, blocklist=["Internal Codename X1"], blocklist_files=[plain, packed]
    )
    assert codes("acmerocks2025!!", policy) == ["common-password"]  # affix of one repeated character
    assert codes("SPACES AROUND 1", policy) == ["common-password"]
    assert codes("zebra-stripes-forever", policy) == ["common-password"]
    assert codes("internal codename x1", policy) == ["common-password"]
    assert codes("password is not listed here", policy) == []
    assert "own_entries=4" in repr(policy.blocklist)
    with pytest.raises(ConfigurationError, match="cannot be read"):
        bg.PasswordPolicy(blocklist_files=[tmp_path / "missing.txt"])


def test_the_shipped_list_is_loaded_once_and_only_when_needed() -> None:
    assert Blocklist(shipped=False).matches("password") is False
    assert Blocklist().matches("password") is True
    assert Blocklist(shipped=False, words=["  ", ""]).own == frozenset()  # blank entries block nothing


# ---- context words (NIST: the service's name, the username, and derivatives) ----------------------------------


def test_context_words_are_refused_when_the_password_is_or_contains_them() -> None:
    policy = bg.PasswordPolicy(site_name="Acme Widgets", context_words=["Springfield"])
    assert codes("my one widget login 1", policy) == []
    assert codes("my acme widgets login 1", policy) == ["context-word"]
    assert codes("my acmewidgets login 1", policy) == ["context-word"]  # its parts count on their own
    assert codes("the widgets of springfield", policy) == ["context-word"]
    assert codes("sunny days with bob and me", policy, username="Bob") == []  # under 4 letters: only as the whole
    assert codes("xxalice.smithxx and more", policy, username="alice.smith") == ["context-word"]
    assert codes("smith is my favourite name", policy, username="alice.smith") == ["context-word"]
    assert codes("carla-from-example-2024", policy, email="carla@mail.example.com") == ["context-word"]
    assert codes("a long line about mail", policy, email="x@mail.example.com") == ["context-word"]
    assert codes("ｃａｒｌａ rides a bicycle", policy, email="carla@example.com") == ["context-word"]
    assert codes("a perfectly fine passphrase", policy, username=None, birthday=19870102) == []


def test_a_context_value_of_any_length_is_refused_as_the_whole_password() -> None:
    policy = bg.PasswordPolicy(mfa=True)
    assert codes("bob_the_builder", policy, username="bob_the_builder") == ["context-word"]
    assert codes("xy", policy, username="xy") == ["too-short", "context-word"]


def test_the_context_message_names_the_kind_not_the_value() -> None:
    (issue,) = POLICY.reasons("my username is alicewonder", {"username": "alicewonder"})
    assert issue.message == "The password contains your username; choose one that does not."
    (issue,) = POLICY.reasons("my email is alicewonder@x", {"email": "alicewonder@x.org"})
    assert "e-mail address" in issue.message
    assert "alicewonder" not in issue.message
    (issue,) = POLICY.reasons("my name is Jonathan Harker", {"last_name": "Harker"})
    assert "personal details" in issue.message


def test_context_tokens_keep_parts_of_at_least_four_characters() -> None:
    tokens = context_tokens([("email", "ann.lee@www.mail.example.com")])
    assert ("email", "ann.lee", True) in tokens
    assert {token for _, token, whole in tokens if not whole} >= {"mail", "example"}
    assert all(token not in {"ann", "lee", "com", "www"} for _, token, whole in tokens if not whole)


# ---- repeated and sequential characters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("aaaaaaaaaaaaaaaa", "repeated-characters"),
        ("abababababababab", "repeated-characters"),
        ("passwordpassword", "repeated-characters"),
        ("zzzzzzzzzzzzzzzzqwk", "repeated-characters"),
        ("abcdefghijklmnopq", "sequential-characters"),
        ("98765432109876xyz", "sequential-characters"),
        ("qwertyuiopasdfghjkl", "sequential-characters"),
        ("αβγδεζηθικλμνξοπ", "sequential-characters"),
    ],
)
def test_repetitive_and_sequential_passwords_are_refused(password: str, code: str) -> None:
    assert code in codes(password)


@pytest.mark.parametrize(
    "password", [GOOD, "xkcd 1234 horse staple", "sunset!!!! over the bay", "my abc of cooking 77"]
)
def test_a_run_in_a_real_password_is_fine(password: str) -> None:
    assert codes(password) == []


def test_patterns_can_be_switched_off() -> None:
    assert codes("qwertyuiopasdfghjkl", bg.PasswordPolicy(check_patterns=False)) == []


def test_trivial_cover_counts_each_character_once() -> None:
    assert trivial_cover("aaaa1234") == (4, 4)
    assert trivial_cover("abcba") == (0, 5)
    assert trivial_cover("ab") == (0, 0)
    assert trivial_cover("") == (0, 0)
    assert is_periodic("abcabc")
    assert not is_periodic("abcab")
    assert not is_periodic("a")


# ---- Pwned Passwords, offline ---------------------------------------------------------------------------------


def _pwned_file(path: Path, passwords: dict[str, int], *, crlf: bool = False, filler: int = 2000) -> Path:
    lines = {hashlib.sha1(p.encode()).hexdigest().upper(): n for p, n in passwords.items()}
    for i in range(filler):  # unrelated hashes around them, so the search has to work
        lines.setdefault(hashlib.sha1(f"filler-{i}".encode()).hexdigest().upper(), i + 1)
    end = "\r\n" if crlf else "\n"
    path.write_bytes("".join(f"{h}:{n}{end}" for h, n in sorted(lines.items())).encode("ascii"))
    return path


@pytest.mark.parametrize("crlf", [False, True])
def test_the_pwned_file_is_binary_searched(tmp_path: Path, crlf: bool) -> None:
    breached = {"hunter2 forever and ever": 17, "trustno1 but longer still": 3, "ümlaut passwörd is breached": 1}
    with PwnedPasswordsFile(_pwned_file(tmp_path / "pwned.txt", breached, crlf=crlf)) as pwned:
        for password, count in breached.items():
            assert pwned.count(password) == count
        assert pwned.count("filler-0") == 1
        assert pwned.count("filler-1999") == 2000
        assert pwned.count(GOOD) == 0
        assert pwned.count_digest("0" * 40) == 0
        assert pwned.count_digest("F" * 40) == 0
        policy = bg.PasswordPolicy(pwned=pwned)
        assert codes("hunter2 forever and ever", policy) == ["breached-password"]
        assert codes(GOOD, policy) == []


def test_a_damaged_count_in_the_pwned_file_still_means_listed_never_an_error(tmp_path: Path) -> None:
    import hashlib

    digest = hashlib.sha1(b"damaged count here", usedforsecurity=False).hexdigest().upper()
    path = tmp_path / "pwned.txt"
    path.write_bytes(digest.encode() + b":" + b"9" * 5000 + b"\n")
    with PwnedPasswordsFile(path) as pwned:
        assert pwned.count("damaged count here") == 1


@given(st.sets(st.text(min_size=1, max_size=30), min_size=1, max_size=40), st.text(max_size=30))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_pwned_search_finds_exactly_what_the_file_holds(tmp_path: Path, listed: set[str], other: str) -> None:
    assume(all(c < "\ud800" or c > "\udfff" for p in [*listed, other] for c in p))
    path = _pwned_file(tmp_path / "h.txt", {p: 5 for p in listed}, filler=len(listed) % 7)
    with PwnedPasswordsFile(path) as pwned:
        assert all(pwned.count(p) == 5 for p in listed)
        assert pwned.count(other) == (5 if other in listed else 0)


def test_a_line_without_a_count_counts_once_and_a_path_is_enough(tmp_path: Path) -> None:
    digest = hashlib.sha1(b"only the hash here please").hexdigest()
    path = tmp_path / "bare.txt"
    path.write_text(digest + "\n")
    policy = bg.PasswordPolicy(pwned=path)
    assert codes("only the hash here please", policy) == ["breached-password"]
    assert isinstance(policy.pwned, PwnedPasswordsFile)
    policy.pwned.close()


@pytest.mark.parametrize("content", [b"", b"not a hash file\n", b"5BAA61E4:12\n"])
def test_a_file_that_is_not_a_pwned_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError):
        PwnedPasswordsFile(path)
    with pytest.raises(ConfigurationError):
        PwnedPasswordsFile(tmp_path / "missing.txt")


# ---- zxcvbn, when installed -----------------------------------------------------------------------------------


def _fake_zxcvbn(score: int) -> types.ModuleType:
    module = types.ModuleType("zxcvbn")
    seen: list[tuple[str, list[str]]] = []

    def zxcvbn(password: str, user_inputs: list[str] | None = None) -> dict[str, Any]:
        seen.append((password, list(user_inputs or [])))
        return {"score": score}

    module.zxcvbn = zxcvbn  # type: ignore[attr-defined]
    module.seen = seen  # type: ignore[attr-defined]
    return module


def test_a_zxcvbn_score_is_required_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_zxcvbn(2)
    monkeypatch.setitem(sys.modules, "zxcvbn", fake)
    policy = bg.PasswordPolicy(min_score=3, site_name="Acme")
    long_one = GOOD + " and a long tail of other words for the estimator to read, past its limit"
    assert codes(long_one, policy, username="alice") == ["too-guessable"]
    password, inputs = fake.seen[-1]  # type: ignore[attr-defined]
    assert len(password) == 72
    assert inputs == ["acme", "alice"]
    assert codes(GOOD, bg.PasswordPolicy(min_score=2)) == []


def test_min_score_without_zxcvbn_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zxcvbn", None)  # import fails
    with pytest.raises(ConfigurationError, match="zxcvbn"):
        bg.PasswordPolicy(min_score=3)


def test_the_real_zxcvbn_when_installed() -> None:
    pytest.importorskip("zxcvbn")
    policy = bg.PasswordPolicy(min_score=3, check_patterns=False, common_passwords=False)
    assert "too-guessable" in codes("passwordpassword", policy)


# ---- the answer: codes, messages, the error -------------------------------------------------------------------


def test_check_raises_weak_password_with_every_reason() -> None:
    with pytest.raises(bg.WeakPassword) as caught:
        POLICY.check("password", context={"username": "x"})
    exc = caught.value
    assert isinstance(exc, InvalidPassword)
    assert isinstance(exc, GuardError)
    assert isinstance(exc, ValueError)
    assert [r.code for r in exc.reasons] == ["too-short", "common-password"]
    assert exc.status == 422
    assert exc.code == "weak-password"
    assert exc.detail == " ".join(r.message for r in exc.reasons)
    status, _, body = bg.problem_response(exc)
    assert status == 422
    assert b'"reasons"' in body
    assert b"too-short" in body
    assert POLICY.check(GOOD) is None


def test_messages_can_be_replaced_by_a_subclass() -> None:
    class Translated(bg.PasswordPolicy):
        messages = {**MESSAGES, "too-short": "Au moins {min_length} caractères."}

    assert Translated().reasons("court") == (PasswordIssue("too-short", "Au moins 15 caractères."),)


def test_every_code_has_a_message_and_the_repr_holds_no_secret() -> None:
    assert set(MESSAGES) == {
        "not-text", "invalid-character", "too-short", "too-long", "common-password", "context-word",
        "repeated-characters", "sequential-characters", "breached-password", "too-guessable",
    }  # fmt: skip
    assert POLICY.issue("too-short") == PasswordIssue("too-short", MESSAGES["too-short"].format(min_length=15))
    assert "15" in POLICY.help_text()
    assert repr(POLICY).startswith("PasswordPolicy(min_length=15")


passwords = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=10, max_size=300),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]), max_size=40),
    st.text(alphabet="aAbB12!@ \t\n\r\x00\x7f", max_size=40),
    st.sampled_from(["password", "P@ssw0rd", "correct horse battery staple", "aaaaaaaaaaaaaaaa"]),
    st.binary(max_size=60),
)


@given(password=passwords, username=st.text(max_size=20))
@settings(max_examples=400, deadline=None)
def test_any_input_gets_a_stable_answer_from_fixed_messages(password: str | bytes, username: str) -> None:
    policy = bg.PasswordPolicy(site_name="Acme")
    reasons = policy.reasons(password, {"username": username})
    assert reasons == policy.reasons(password, {"username": username})
    assert [r.code for r in reasons] == list(dict.fromkeys(r.code for r in reasons))
    assert {r.message for r in reasons} <= _fixed_messages(policy)  # nothing derived from the password
    if not reasons:
        policy.check(password, {"username": username})
    else:
        with pytest.raises(bg.WeakPassword) as caught:
            policy.check(password, {"username": username})
        assert caught.value.reasons == reasons
        # the error is its fixed messages and codes, and nothing else
        assert repr(caught.value) == f"WeakPassword({' '.join(r.message for r in reasons)!r})"
        assert caught.value.extensions() == {"reasons": [{"code": r.code, "message": r.message} for r in reasons]}


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=15, max_size=64))
@settings(max_examples=200, deadline=None)
def test_length_never_refuses_a_password_between_the_nist_bounds(password: str) -> None:
    policy = bg.PasswordPolicy(common_passwords=False, check_patterns=False)
    assume(len(unicodedata.normalize("NFKC", password)) >= 15)
    found = codes(password, policy)
    assert "too-short" not in found
    assert "too-long" not in found
    assert "invalid-character" not in found


@given(st.text(min_size=1, max_size=4).filter(lambda unit: unit.strip()), st.integers(min_value=2, max_value=40))
@settings(max_examples=200, deadline=None)
def test_a_repeated_unit_is_always_refused(unit: str, times: int) -> None:
    assume("\x00" not in unit and all(not 0xD800 <= ord(c) <= 0xDFFF for c in unit))
    password = unit * times
    assume(len(fold(password)) >= 2 and is_periodic(fold(password)))
    assert "repeated-characters" in codes(password)


@given(st.integers(min_value=0x21, max_value=0x3000), st.integers(min_value=16, max_value=60), st.booleans())
@settings(max_examples=200, deadline=None)
def test_a_run_of_consecutive_code_points_is_always_refused(first: int, length: int, down: bool) -> None:
    chars = [chr(first + i) for i in range(length)]
    password = "".join(reversed(chars) if down else chars)
    folded = unicodedata.normalize("NFKC", password).casefold()
    assume(folded == password and not any(0xD800 <= ord(c) <= 0xDFFF for c in password))
    assert set(codes(password)) & {"sequential-characters", "repeated-characters"}


# ---- pydantic and FastAPI: the 422 says why, never echoes the password -----------------------------------------


ACME = bg.PasswordPolicy(site_name="Acme")


class SignUp(BaseModel):
    username: str
    email: str
    password: Annotated[SecretStr, CheckedPassword(ACME, username="username", email="email")]


def test_the_pydantic_field_refuses_with_codes_and_a_masked_input() -> None:
    from pydantic import ValidationError

    model = SignUp
    with pytest.raises(ValidationError) as caught:
        model(username="hunterhunter", email="h@example.com", password="hunterhunter2")
    (error,) = caught.value.errors()
    assert error["type"] == "weak_password"
    assert error["ctx"]["reasons"] == ["too-short", "context-word"]
    assert "hunterhunter2" not in str(caught.value)
    assert "hunterhunter2" not in repr(error["input"])
    ok = model(username="alice", email="a@example.com", password=GOOD)
    assert ok.password.get_secret_value() == GOOD
    assert GOOD not in repr(ok)


def test_the_pydantic_field_must_be_a_secret_str() -> None:
    from pydantic import BaseModel

    with pytest.raises(ConfigurationError, match="SecretStr"):

        class Bad(BaseModel):
            password: Annotated[str, CheckedPassword(POLICY)]

    with pytest.raises(ConfigurationError):
        CheckedPassword("not a policy")  # type: ignore[arg-type]


def test_fastapi_422_says_why_and_never_echoes_the_password() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()

    @app.post("/signup")
    def signup(body: SignUp) -> dict[str, str]:
        return {"user": body.username}

    client = TestClient(app)
    secret = "Acme-2024"
    response = client.post("/signup", json={"username": "zed", "email": "zed@example.com", "password": secret})
    assert response.status_code == 422
    assert secret not in response.text
    assert secret.lower() not in response.text.lower()
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert error["ctx"]["reasons"] == ["too-short", "context-word"]
    assert "site's name" in error["msg"]
    assert error["input"] == "**********"
    good = client.post("/signup", json={"username": "zed", "email": "zed@example.com", "password": GOOD})
    assert good.status_code == 200
    assert good.json() == {"user": "zed"}


def test_with_backend_guards_own_422_handler_the_problem_document_states_the_reasons_too() -> None:
    # backend_guard's handlers never read ``msg`` (an app's validator may quote the input there); the reasons
    # are stated again from the error's codes and numbers, and the password appears nowhere.
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    import backend_guard.fastapi

    app = FastAPI()
    backend_guard.fastapi.install_error_handlers(app)

    @app.post("/signup")
    def signup(body: SignUp) -> dict[str, str]:
        return {"user": body.username}

    client = TestClient(app)
    secret = "Acme-2024"
    response = client.post("/signup", json={"username": "zed", "email": "zed@example.com", "password": secret})
    assert response.status_code == 422
    assert secret.lower() not in response.text.lower()
    errors = response.json()["errors"]
    (error,) = [e for e in errors if e["pointer"] == "/body/password"]
    assert error["type"] == "weak_password"
    assert "at least 15 characters" in error["detail"]
    assert "site's name" in error["detail"]


def test_a_forged_weak_password_error_states_nothing_it_was_handed() -> None:
    from backend_guard.errors import validation_field_errors

    forged = {"loc": ("body", "password"), "type": "weak_password", "msg": "hunter2",
              "ctx": {"reasons": ["too-short"], "min_length": "hunter2", "max_length": 64, "context": []}}  # fmt: skip
    (field,) = validation_field_errors([forged])
    assert "hunter2" not in field.message
    forged["ctx"] = {"reasons": ["context-word"], "min_length": 15, "max_length": 64, "context": ["hunter2"]}
    (field,) = validation_field_errors([forged])
    assert "hunter2" not in field.message
    forged["ctx"] = {"reasons": ["hunter2"], "min_length": 15, "max_length": 64}
    (field,) = validation_field_errors([forged])
    assert field.message == "Invalid value."


# ---- Flask: a form checked with reasons() ---------------------------------------------------------------------


def test_a_flask_form_shows_the_reasons_without_the_password() -> None:
    from flask import Flask, request

    app = Flask(__name__)
    policy = bg.PasswordPolicy(site_name="Acme")

    @app.post("/register")
    def register() -> tuple[dict[str, Any], int]:
        reasons = policy.reasons(request.form.get("password"), {"username": request.form.get("username")})
        if reasons:
            return {"errors": [{"code": r.code, "message": r.message} for r in reasons]}, 400
        return {"ok": True}, 201

    client = app.test_client()
    response = client.post("/register", data={"username": "quillfeather", "password": "quillfeather87"})
    assert response.status_code == 400
    assert [e["code"] for e in response.get_json()["errors"]] == ["too-short", "context-word"]
    assert b"quillfeather87" not in response.data
    assert client.post("/register", data={"username": "q"}).get_json()["errors"][0]["code"] == "not-text"
    assert client.post("/register", data={"username": "quillfeather", "password": GOOD}).status_code == 201


def test_hashing_passwords_does_not_load_pydantic() -> None:
    # pydantic is what CheckedPassword needs, not PasswordHasher or PasswordPolicy: it loads on first use.
    import subprocess
    import sys

    code = (
        "import sys, backend_guard.passwords as p; p.PasswordPolicy(); before = 'pydantic' in sys.modules;"
        "p.CheckedPassword; print(before, 'pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
