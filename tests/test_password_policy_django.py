"""Django-native passwords: our PASSWORD_HASHERS and AUTH_PASSWORD_VALIDATORS entries through Django's own
check_password / make_password / validate_password, and the deploy checks (manage.py check --deploy)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

from django.contrib.auth import hashers as dj_hashers  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402
from django.test import override_settings  # noqa: E402

import backend_guard as bg  # noqa: E402
import backend_guard.django as bg_django  # noqa: E402
from backend_guard.exceptions import ConfigurationError, InvalidPassword  # noqa: E402
from backend_guard.integrations._checks_django import (  # noqa: E402
    LEGACY_HASHERS,
    PreferredHasher,
    deploy_findings,
    detected_workers,
    startup_findings,
)
from backend_guard.integrations._passwords_django import ALGORITHM, encoded_length  # noqa: E402
from tests.django_app import setup  # noqa: E402

setup()

ROOT = Path(__file__).resolve().parent.parent
OURS = "backend_guard.django.GuardPasswordHasher"
DJANGO_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
]
# The cheapest parameters OWASP accepts (7 MiB, 5 iterations): our hasher refuses anything weaker.
CHEAP = {"passwords": {"memory_cost": 7168, "time_cost": 5}}
PW = "correct horse battery staple"
ENVELOPE = ["backend_guard.django.ErrorEnvelopeMiddleware"]  # answers InvalidPassword, sends no header (no HSTS)


@pytest.fixture
def ours_first() -> Iterator[None]:
    with override_settings(PASSWORD_HASHERS=[OURS, *DJANGO_HASHERS], BACKEND_GUARD=CHEAP):
        yield


class _CheapArgon2(dj_hashers.Argon2PasswordHasher):  # type: ignore[misc]
    time_cost, memory_cost, parallelism = 1, 8, 1


class _CheapBCrypt(dj_hashers.BCryptSHA256PasswordHasher):  # type: ignore[misc]
    rounds = 4


def _legacy_hashes() -> dict[str, str]:
    """A hash of each of Django's hashers, made cheap (their verifiers read the cost from the hash)."""
    salt = dj_hashers.PBKDF2PasswordHasher().salt()
    return {
        "pbkdf2_sha256": dj_hashers.PBKDF2PasswordHasher().encode(PW, salt, iterations=1000),
        "argon2": _CheapArgon2().encode(PW, salt),
        "bcrypt_sha256": _CheapBCrypt().encode(PW, _CheapBCrypt().salt()),
    }


# ---- PASSWORD_HASHERS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["pbkdf2_sha256", "argon2", "bcrypt_sha256"])
def test_the_legacy_hashers_answer_an_over_long_password_as_for_every_other_account(scheme: str) -> None:
    # Django's own hasher took an over-long password for an account still on an older hash ("wrong password", a
    # 200 form) while every other account, known or not, raised InvalidPassword (a 400): the answer told accounts
    # still on an older hash apart (Django trial). Ours of the same algorithm refuse it first.
    legacy = _legacy_hashes()[scheme]
    with override_settings(PASSWORD_HASHERS=[OURS, *DJANGO_HASHERS], BACKEND_GUARD=CHEAP):
        assert dj_hashers.check_password("x" * 5000, legacy) is False  # the leak
    ours = [OURS, *LEGACY_HASHERS.values()]
    with override_settings(PASSWORD_HASHERS=ours, BACKEND_GUARD=CHEAP):
        assert type(dj_hashers.identify_hasher(legacy)).__name__.startswith("Legacy")
        with pytest.raises(InvalidPassword):
            dj_hashers.check_password("x" * 5000, legacy)
        with pytest.raises(InvalidPassword):
            dj_hashers.make_password("x" * 5000)  # what ModelBackend runs for an unknown account
        with pytest.raises(InvalidPassword):
            dj_hashers.check_password(PW + "\x00", legacy)
        assert dj_hashers.check_password("not the password at all", legacy) is False
        saved: list[str] = []
        assert dj_hashers.check_password(PW, legacy, lambda raw: saved.append(dj_hashers.make_password(raw))) is True
        assert saved[0].startswith(ALGORITHM + "$")  # migrated to ours at the login, as with Django's hashers
    assert _ids(
        deploy_findings(bg.GuardSettings(), django_hsts_seconds=1, middleware=ENVELOPE, hashers=[OURS, *DJANGO_HASHERS])
    ) == ["backend_guard.W008"]
    assert _ids(deploy_findings(bg.GuardSettings(), django_hsts_seconds=1, middleware=ENVELOPE, hashers=ours)) == []
    md5 = deploy_findings(
        bg.GuardSettings(),
        django_hsts_seconds=1,
        middleware=ENVELOPE,
        hashers=[*ours, "django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    assert _ids(md5) == ["backend_guard.W008"]
    assert "migrate or reset" in md5[0].hint
    django_backend, guard_backend = (
        "django.contrib.auth.backends.ModelBackend",
        "backend_guard.django.GuardModelBackend",
    )
    for backends, found in [
        ([django_backend], ["backend_guard.W009"]),
        ([django_backend, guard_backend], ["backend_guard.W009"]),
        ([guard_backend, django_backend], []),  # ModelBackend kept after it for the sessions made under it
        ([guard_backend], []),
    ]:
        assert (
            _ids(
                deploy_findings(
                    bg.GuardSettings(), django_hsts_seconds=1, middleware=ENVELOPE, hashers=ours, backends=backends
                )
            )
            == found
        )
    no_envelope = deploy_findings(bg.GuardSettings(), django_hsts_seconds=1, hashers=ours)
    assert _ids(no_envelope) == ["backend_guard.W010"]


@pytest.mark.usefixtures("ours_first")
def test_make_password_stores_our_argon2id_and_check_password_verifies_it() -> None:
    encoded = dj_hashers.make_password(PW)
    assert encoded.startswith("bg_argon2id$argon2id$v=19$m=7168,t=5,p=1$")
    assert len(encoded) == encoded_length(bg.Argon2Parameters(5, 7168), None) <= 128
    assert dj_hashers.identify_hasher(encoded).algorithm == ALGORITHM
    assert dj_hashers.check_password(PW, encoded) is True
    assert dj_hashers.check_password("wrong horse battery staple", encoded) is False
    # over the byte cap: refused alike for a known account (check_password) and an unknown one (ModelBackend
    # hashes the password with make_password), so the answer does not tell them apart
    with pytest.raises(InvalidPassword):
        dj_hashers.check_password("x" * 5000, encoded)
    with pytest.raises(InvalidPassword):
        dj_hashers.make_password("x" * 5000)
    assert dj_hashers.is_password_usable(encoded)
    summary = dj_hashers.get_hasher("default").safe_summary(encoded)
    assert summary["memory cost"] == 7168
    assert summary["time cost"] == 5
    assert "*" in summary["hash"]
    assert encoded.rsplit("$", 1)[1] not in str(summary)


@pytest.mark.usefixtures("ours_first")
@pytest.mark.parametrize("scheme", ["pbkdf2_sha256", "argon2", "bcrypt_sha256"])
def test_django_hashes_verify_and_migrate_on_login_through_check_password(scheme: str) -> None:
    legacy = _legacy_hashes()[scheme]
    assert dj_hashers.identify_hasher(legacy).algorithm == scheme
    saved: list[str] = []

    def setter(raw: str) -> None:  # what AbstractBaseUser.check_password hands Django
        saved.append(dj_hashers.make_password(raw))

    assert dj_hashers.check_password("not the password at all", legacy, setter) is False
    assert saved == []  # a wrong password never migrates
    assert dj_hashers.check_password(PW, legacy, setter) is True
    (migrated,) = saved
    assert migrated.startswith("bg_argon2id$")
    assert dj_hashers.check_password(PW, migrated, setter) is True
    assert len(saved) == 1  # ours at the policy: no further rehash


def test_rehash_is_upgrade_only() -> None:
    with override_settings(PASSWORD_HASHERS=[OURS], BACKEND_GUARD=CHEAP):
        weaker = dj_hashers.make_password(PW)
    stronger_settings = {"passwords": {"memory_cost": 7168, "time_cost": 6}}
    with override_settings(PASSWORD_HASHERS=[OURS], BACKEND_GUARD=stronger_settings):
        stronger = dj_hashers.make_password(PW)
        hasher = dj_hashers.get_hasher("default")
        assert hasher.must_update(weaker) is True
        assert hasher.must_update(stronger) is False
    with override_settings(PASSWORD_HASHERS=[OURS], BACKEND_GUARD=CHEAP):
        saved: list[str] = []
        assert dj_hashers.check_password(PW, stronger, saved.append) is True
        assert saved == []  # a stronger hash is kept


def test_the_versioned_pepper_is_used_rotated_and_migrated() -> None:
    peppers = {"k1": b"k" * 32, "k2": "a second pepper of enough bytes!"}
    with override_settings(
        PASSWORD_HASHERS=[OURS],
        BACKEND_GUARD=CHEAP,
        BACKEND_GUARD_PASSWORD_PEPPERS=peppers,
        BACKEND_GUARD_PASSWORD_CURRENT_PEPPER="k1",
    ):
        under_k1 = dj_hashers.make_password(PW)
        assert ",keyid=k1$" in under_k1
        assert dj_hashers.get_hasher("default").safe_summary(under_k1)["pepper"] == "k1"
    with override_settings(
        PASSWORD_HASHERS=[OURS],
        BACKEND_GUARD=CHEAP,
        BACKEND_GUARD_PASSWORD_PEPPERS=peppers,
        BACKEND_GUARD_PASSWORD_CURRENT_PEPPER="k2",
    ):
        saved: list[str] = []
        assert dj_hashers.check_password(PW, under_k1, lambda raw: saved.append(dj_hashers.make_password(raw)))
        assert ",keyid=k2$" in saved[0]
    with override_settings(PASSWORD_HASHERS=[OURS], BACKEND_GUARD=CHEAP):
        assert dj_hashers.check_password(PW, under_k1) is False  # the pepper is gone: no match, no error


@pytest.mark.usefixtures("ours_first")
def test_garbage_and_foreign_values_never_match() -> None:
    hasher = bg_django.GuardPasswordHasher()
    for value in ("bg_argon2id$garbage", "bg_argon2id$", "pbkdf2_sha256$1$x$y", "bg_argon2id"):
        assert hasher.verify(PW, value) is False
        assert hasher.must_update(value) is False
    with pytest.raises(ValueError):
        hasher.decode("bg_argon2id$garbage")
    with pytest.raises(ValueError):
        hasher.encode(PW, "")
    with pytest.raises(TypeError):
        hasher.encode(None, "salt")  # type: ignore[arg-type]
    assert hasher.salt()
    assert "$" not in hasher.salt()
    assert "memory_cost=7168" in repr(hasher)


def test_a_hash_too_long_for_django_s_column_is_refused() -> None:
    long_id = {"abcdefghijklmnop": b"p" * 32}
    with override_settings(
        PASSWORD_HASHERS=[OURS],
        BACKEND_GUARD=CHEAP,
        BACKEND_GUARD_PASSWORD_PEPPERS=long_id,
        BACKEND_GUARD_PASSWORD_CURRENT_PEPPER="abcdefghijklmnop",
    ):
        assert encoded_length(bg.Argon2Parameters(5, 7168), "abcdefghijklmnop") == 130
        with pytest.raises(ConfigurationError, match=r"130 characters, over Django.s 128"):
            dj_hashers.make_password(PW)


# ---- AUTH_PASSWORD_VALIDATORS ---------------------------------------------------------------------------------


class _User:
    """Enough of a Django user for the validators (no database needed)."""

    EMAIL_FIELD = "email"

    def __init__(self, username: str, email: str, first_name: str = "", last_name: str = "") -> None:
        self.username, self.email, self.first_name, self.last_name = username, email, first_name, last_name

    def get_username(self) -> str:
        return self.username

    @classmethod
    def get_email_field_name(cls) -> str:
        return cls.EMAIL_FIELD


VALIDATORS = [{"NAME": "backend_guard.django.PasswordPolicyValidator", "OPTIONS": {"site_name": "Acme"}}]


def _codes(password: str, user: Any = None) -> list[str]:
    from django.contrib.auth.password_validation import validate_password

    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        messages, found = exc.messages, [error.code for error in exc.error_list]
    else:
        return []
    if len(password) > len("password"):  # the word itself is in the messages ("a long password")
        assert all(password not in message for message in messages)
    return found


@override_settings(AUTH_PASSWORD_VALIDATORS=VALIDATORS)
def test_validate_password_runs_the_policy_with_the_user_as_context() -> None:
    user = _User("margo", "margo.lane@example.com", "Margaret", "Lanington")
    assert _codes(PW, user) == []
    assert _codes("password", user) == ["too-short", "common-password"]
    assert _codes("lanington family rules", user) == ["context-word"]
    assert _codes("acme acme acme acme", user) == ["context-word", "repeated-characters"]
    assert _codes("margo.lane-at-home!!", user) == ["context-word"]
    assert _codes("12345678901234567890") == ["common-password", "repeated-characters"]
    from django.contrib.auth.password_validation import password_validators_help_texts

    assert password_validators_help_texts() == [bg.PasswordPolicy().help_text()]


@override_settings(
    AUTH_PASSWORD_VALIDATORS=[
        {"NAME": "backend_guard.django.PasswordPolicyValidator", "OPTIONS": {"mfa": True, "blocklist": ["acme2026"]}}
    ]
)
def test_validator_options_are_the_policy_s_arguments() -> None:
    assert _codes("sunny-fern-41") == []
    assert _codes("acme2026") == ["common-password"]


def test_validator_takes_the_hasher_s_normalisation_and_refuses_unknown_options(tmp_path: Path) -> None:
    with override_settings(BACKEND_GUARD={"passwords": {"normalize": None, "max_password_bytes": 100}}):
        validator = bg_django.PasswordPolicyValidator()
        assert (validator.policy.normalize, validator.policy.max_bytes) == (None, 100)
        with pytest.raises(ConfigurationError, match="OPTIONS"):
            bg_django.PasswordPolicyValidator(min_lenght=12)
    import hashlib

    pwned = tmp_path / "pwned.txt"
    pwned.write_text(hashlib.sha1(PW.encode()).hexdigest().upper() + ":3\n")
    validator = bg_django.PasswordPolicyValidator(pwned=str(pwned))
    with pytest.raises(ValidationError) as caught:
        validator.validate(PW)
    assert [e.code for e in caught.value.error_list] == ["breached-password"]
    validator.validate("a different long passphrase")


# ---- the deploy checks ----------------------------------------------------------------------------------------


def _ids(findings: list[Any]) -> list[str]:
    return [f.id for f in findings]


def test_deploy_findings_name_each_weak_setting() -> None:
    good = bg.GuardSettings()
    ours = ["backend_guard.django.GuardMiddleware"]
    assert _ids(deploy_findings(good, middleware=ours)) == []
    assert _ids(deploy_findings(good)) == ["backend_guard.W004"]  # no HSTS from anyone
    assert _ids(deploy_findings(good, django_hsts_seconds=3600)) == []
    short = bg.GuardSettings(secure_headers={"hsts_max_age": 300})
    assert _ids(deploy_findings(short, middleware=ours)) == ["backend_guard.W004"]
    assert _ids(deploy_findings(good, middleware=ours, workers=4)) == ["backend_guard.W002"]
    assert _ids(deploy_findings(good, middleware=ours, workers=1)) == []
    redis = bg.GuardSettings(store="redis://127.0.0.1:6379/0")
    assert _ids(deploy_findings(redis, middleware=ours, workers=4)) == []
    broad = bg.GuardSettings(cors={"allow_origin_patterns": ["https://*.example.com"], "allow_credentials": True})
    assert _ids(deploy_findings(broad, middleware=ours)) == ["backend_guard.W003"]
    exact = bg.GuardSettings(cors={"allow_origins": ["https://app.example.com"], "allow_credentials": True})
    assert _ids(deploy_findings(exact, middleware=ours)) == []
    plain = bg.GuardSettings(cors={"allow_origins": ["http://app.example.com"], "allow_credentials": True})
    assert _ids(deploy_findings(plain, middleware=ours)) == ["backend_guard.W003"]
    invalid = startup_findings(ConfigurationError("passwords: below OWASP"))
    assert _ids(invalid) == ["backend_guard.E001"]
    assert invalid[0].level == "error"
    assert startup_findings(good) == []
    shown = bg.GuardSettings(errors={"expose_exception_details": True})
    assert _ids(deploy_findings(shown, middleware=ours)) == ["backend_guard.W007"]
    assert _ids(deploy_findings(shown, middleware=ours, debug=True)) == []


@pytest.mark.parametrize(
    ("preferred", "weak"),
    [
        (PreferredHasher("bg_argon2id", bg.Argon2Parameters(2, 19456), encoded_length=108), False),
        (PreferredHasher("argon2", bg.Argon2Parameters(2, 102400, 8)), False),
        (PreferredHasher("argon2", bg.Argon2Parameters(1, 8192)), True),
        (PreferredHasher("pbkdf2_sha256", iterations=1_000_000), False),
        (PreferredHasher("pbkdf2_sha256", iterations=100_000), True),
        (PreferredHasher("pbkdf2_sha1", iterations=1_000_000), True),
        (PreferredHasher("bcrypt_sha256", rounds=12), False),
        (PreferredHasher("bcrypt_sha256", rounds=8), True),
        (PreferredHasher("md5"), True),
    ],
)
def test_the_preferred_hasher_is_held_to_owasp_s_minimum(preferred: PreferredHasher, weak: bool) -> None:
    found = _ids(deploy_findings(bg.GuardSettings(), django_hsts_seconds=1, preferred=preferred))
    assert found == (["backend_guard.W001"] if weak else [])
    too_long = PreferredHasher("bg_argon2id", bg.Argon2Parameters(2, 19456), encoded_length=140)
    assert _ids(deploy_findings(bg.GuardSettings(), django_hsts_seconds=1, preferred=too_long)) == []
    assert _ids(startup_findings(bg.GuardSettings(), preferred=too_long)) == ["backend_guard.E003"]


@pytest.mark.parametrize(
    ("environ", "workers"),
    [
        ({}, None),
        ({"WEB_CONCURRENCY": "3"}, 3),
        ({"UVICORN_WORKERS": "2"}, 2),
        ({"GUNICORN_CMD_ARGS": "--bind :8000 --workers 4"}, 4),
        ({"GUNICORN_CMD_ARGS": "-w 5"}, 5),
        ({"GUNICORN_CMD_ARGS": "--workers=6 --threads 2"}, 6),
        ({"GUNICORN_CMD_ARGS": "--threads 2"}, None),
        ({"GUNICORN_CMD_ARGS": "--workers 'unclosed"}, None),
    ],
)
def test_workers_are_read_from_the_environment(environ: dict[str, str], workers: int | None) -> None:
    assert detected_workers(environ) == workers


CHECK_SETTINGS = """\
SECRET_KEY = "check-test-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["example.com"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "backend_guard.django.BackendGuardConfig"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "check_settings"
urlpatterns = []
"""

RUN_CHECK = """\
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "check_settings"
import django
django.setup()
from django.core.management import call_command
call_command("check", *sys.argv[1:])
"""


def _manage_check(tmp_path: Path, extra: str, env: dict[str, str], *args: str) -> str:
    (tmp_path / "check_settings.py").write_text(CHECK_SETTINGS + textwrap.dedent(extra))
    (tmp_path / "run_check.py").write_text(RUN_CHECK)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BACKEND_GUARD_"))}
    clean.pop("WEB_CONCURRENCY", None)
    clean["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(tmp_path)])
    proc = subprocess.run(
        [sys.executable, "run_check.py", *(args or ("--deploy",))],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.stdout + proc.stderr


def test_manage_py_check_deploy_warns_about_weak_settings(tmp_path: Path) -> None:
    output = _manage_check(
        tmp_path,
        """
        PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        MIDDLEWARE = []
        BACKEND_GUARD = {"cors": {"allow_origin_patterns": ["https://*.example.com"], "allow_credentials": True}}
        """,
        {"WEB_CONCURRENCY": "4"},
    )
    for check_id in ("W001", "W002", "W003", "W004"):
        assert f"backend_guard.{check_id}" in output, output


def test_manage_py_check_deploy_is_quiet_about_good_settings(tmp_path: Path) -> None:
    output = _manage_check(
        tmp_path,
        """
        PASSWORD_HASHERS = ["backend_guard.django.GuardPasswordHasher"]
        AUTHENTICATION_BACKENDS = ["backend_guard.django.GuardModelBackend"]
        MIDDLEWARE = ["backend_guard.django.GuardMiddleware"]
        BACKEND_GUARD = {"cors": {"allow_origins": ["https://app.example.com"], "allow_credentials": True}}
        """,
        {},
    )
    assert "backend_guard." not in output, output


def test_manage_py_check_deploy_reports_invalid_password_settings(tmp_path: Path) -> None:
    output = _manage_check(
        tmp_path,
        """
        PASSWORD_HASHERS = ["backend_guard.django.GuardPasswordHasher"]
        MIDDLEWARE = ["backend_guard.django.GuardMiddleware"]
        BACKEND_GUARD = {"passwords": {"memory_cost": 1024, "time_cost": 1}}
        """,
        {},
    )
    assert "backend_guard.E001" in output, output
    assert "OWASP" in output, output


def test_manage_py_check_without_deploy_reports_what_stops_the_app(tmp_path: Path) -> None:
    # Settings that do not build and a pepper id making hashes longer than Django's column were reported only under
    # --deploy, while runserver refused to serve (or every password change failed): they are errors of every check.
    invalid = _manage_check(
        tmp_path,
        """
        MIDDLEWARE = ["backend_guard.django.GuardMiddleware"]
        BACKEND_GUARD = {"cors": {"allow_origins": ["https://app.example.com"]}}
        """,
        {"BACKEND_GUARD_CORS__ALLOWORIGINS": "https://b.example.com"},
        "--fail-level",
        "ERROR",
    )
    assert "backend_guard.E001" in invalid, invalid
    assert "environment variable BACKEND_GUARD_CORS__ALLOWORIGINS" in invalid, invalid
    long_pepper = _manage_check(
        tmp_path,
        """
        PASSWORD_HASHERS = ["backend_guard.django.GuardPasswordHasher"]
        BACKEND_GUARD_PASSWORD_PEPPERS = {"pepper2026winter": "a-pepper-of-32-bytes-0123456789ab"}
        BACKEND_GUARD_PASSWORD_CURRENT_PEPPER = "pepper2026winter"
        """,
        {},
        "--fail-level",
        "ERROR",
    )
    assert "backend_guard.E003" in long_pepper, long_pepper
    shown = _manage_check(
        tmp_path,
        """
        MIDDLEWARE = ["backend_guard.django.GuardMiddleware"]
        SECURE_HSTS_SECONDS = 31536000
        """,
        {"BACKEND_GUARD_ERRORS__EXPOSE_EXCEPTION_DETAILS": "true"},
    )
    assert "backend_guard.W007" in shown, shown


# ---- end to end: Django's auth app, its User model and ModelBackend, behind GuardMiddleware --------------------

E2E_SETTINGS = """\
SECRET_KEY = "e2e-test-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "backend_guard.django.BackendGuardConfig"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "e2e_urls"
MIDDLEWARE = ["backend_guard.django.GuardMiddleware"]
PASSWORD_HASHERS = ["backend_guard.django.GuardPasswordHasher", "backend_guard.django.LegacyPBKDF2PasswordHasher"]
AUTHENTICATION_BACKENDS = ["backend_guard.django.GuardModelBackend"]
AUTH_PASSWORD_VALIDATORS = [{"NAME": "backend_guard.django.PasswordPolicyValidator", "OPTIONS": {"site_name": "Acme"}}]
BACKEND_GUARD = {"passwords": {"memory_cost": 7168, "time_cost": 5}}
USE_TZ = True
"""

E2E_URLS = """\
from django.contrib.auth import authenticate
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def login(request):
    user = authenticate(request, username=request.POST["username"], password=request.POST["password"])
    return JsonResponse({"ok": user is not None})


urlpatterns = [path("login/", login)]
"""

E2E_APP = """\
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "e2e_settings"
import django
django.setup()
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

call_command("migrate", verbosity=0)
old = PBKDF2PasswordHasher().encode("correct horse battery staple", "somesalt", iterations=1000)
User.objects.create(username="margo", email="margo@example.com", password=old)
User.objects.create(username="still-old", email="old@example.com", password=old)  # never logs in: stays pbkdf2
unusable = User(username="no-password", email="none@example.com")
unusable.set_unusable_password()
unusable.save()
client = Client()

ok = client.post("/login/", {"username": "margo", "password": "correct horse battery staple"})
assert ok.json() == {"ok": True}, ok.content
assert User.objects.get(username="margo").password.startswith("bg_argon2id$argon2id$")  # migrated on login
assert client.post("/login/", {"username": "margo", "password": "correct horse battery staple"}).json()["ok"]
assert not client.post("/login/", {"username": "margo", "password": "wrong horse battery"}).json()["ok"]
assert not client.post("/login/", {"username": "nobody", "password": "correct horse battery staple"}).json()["ok"]

# an over-long password: the same answer whether the account exists or not, is on an older hash or has none
# (GuardModelBackend ends the login before the lookup: a wrong password for all, and Django's failure signal)
from django.contrib.auth.signals import user_login_failed
failed = []
user_login_failed.connect(lambda sender, credentials, **kw: failed.append(credentials["username"]), weak=False)
answers = {
    name: client.post("/login/", {"username": name, "password": "x" * 2000})
    for name in ("margo", "nobody", "still-old", "no-password")
}
assert {name: (r.status_code, r.json()) for name, r in answers.items()} == dict.fromkeys(answers, (200, {"ok": False}))
assert failed == ["margo", "nobody", "still-old", "no-password"], failed
assert User.objects.get(username="still-old").password == old

user = User.objects.get(username="margo")
try:
    validate_password("margo-acme-2025", user=user)
    raise AssertionError("accepted")
except ValidationError as exc:
    assert [e.code for e in exc.error_list] == ["context-word"], exc.error_list
user.set_password("a long and unrelated passphrase")
user.save()
assert user.check_password("a long and unrelated passphrase")
print("e2e ok")
"""


def test_django_auth_end_to_end_migrates_on_login_and_answers_alike_for_unknown_accounts(tmp_path: Path) -> None:
    (tmp_path / "e2e_settings.py").write_text(E2E_SETTINGS)
    (tmp_path / "e2e_app.py").write_text(E2E_APP)
    (tmp_path / "e2e_urls.py").write_text(E2E_URLS)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BACKEND_GUARD_"))}
    clean["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(tmp_path)])
    proc = subprocess.run(
        [sys.executable, "e2e_app.py"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "e2e ok" in proc.stdout
