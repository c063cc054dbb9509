"""GuardPasswordHasher and the deploy checks under attack: a login must cost the same argon2 work whether the
account exists (Django's ``check_password``) or not (``ModelBackend`` hashes the password with
``make_password``), for any password; odd settings must not crash ``manage.py check --deploy``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

from django.contrib.auth import hashers as dj_hashers  # noqa: E402
from django.test import override_settings  # noqa: E402

import backend_guard.passwords._hasher as hasher_module  # noqa: E402
from backend_guard.integrations._checks_django import check_deploy_settings  # noqa: E402
from tests.django_app import setup  # noqa: E402

setup()

ROOT = Path(__file__).resolve().parent.parent
OURS = "backend_guard.django.GuardPasswordHasher"
CHEAP = {"passwords": {"memory_cost": 7168, "time_cost": 5}}
PW = "correct horse battery staple"


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every argon2 computation the hasher runs (a verification or a new hash), in order."""
    calls: list[str] = []

    def counted(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return run

    monkeypatch.setattr(hasher_module, "check", counted("check", hasher_module.check))
    monkeypatch.setattr(hasher_module, "new_hash", counted("hash", hasher_module.new_hash))
    with override_settings(PASSWORD_HASHERS=[OURS], BACKEND_GUARD=CHEAP):
        yield calls


@pytest.mark.parametrize(
    "password",
    [
        "a wrong guess",
        "\ufb01ve wrong guesses",  # NFKC changes it: the check tries the normalised and the typed form
        "\uff21 full-width guess",
        "",  # ModelBackend hashes it for an unknown username like any other
    ],
)
def test_an_unknown_account_costs_the_argon2_work_of_a_wrong_password(argon2_calls: list[str], password: str) -> None:
    stored = dj_hashers.make_password(PW)
    work = {}
    for path, run in {
        "known": lambda: dj_hashers.check_password(password, stored),  # a known account, a wrong password
        "unknown": lambda: dj_hashers.make_password(password),  # what ModelBackend runs for an unknown username
        "unusable": lambda: dj_hashers.check_password(password, dj_hashers.make_password(None)),  # "!..."
    }.items():
        argon2_calls.clear()
        run()  # no error on any path
        work[path] = len(argon2_calls)
    assert work == {"known": 1, "unknown": 1, "unusable": 1}


def test_an_empty_password_is_stored_as_one_no_password_matches(argon2_calls: list[str]) -> None:
    encoded = dj_hashers.make_password("")
    assert encoded.startswith("bg_argon2id$argon2id$")
    assert dj_hashers.check_password("", encoded) is False
    assert dj_hashers.check_password(PW, encoded) is False


E2E_SETTINGS = """\
SECRET_KEY = "e2e-only"
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "e2e_urls"
MIDDLEWARE = ["backend_guard.django.GuardMiddleware"]
PASSWORD_HASHERS = ["backend_guard.django.GuardPasswordHasher"]
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
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

call_command("migrate", verbosity=0)
User.objects.create_user(username="margo", password="correct horse battery staple")
client = Client()
known = client.post("/login/", {"username": "margo", "password": ""})
unknown = client.post("/login/", {"username": "nobody", "password": ""})
assert (known.status_code, known.content) == (unknown.status_code, unknown.content), (known.content, unknown.content)
print("e2e ok")
"""


def test_an_empty_password_gets_the_same_answer_for_a_known_and_an_unknown_account(tmp_path: Path) -> None:
    (tmp_path / "e2e_settings.py").write_text(E2E_SETTINGS)
    (tmp_path / "e2e_app.py").write_text(E2E_APP)
    (tmp_path / "e2e_urls.py").write_text(E2E_URLS)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BACKEND_GUARD_"))}
    clean["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(tmp_path)])
    proc = subprocess.run(
        [sys.executable, "e2e_app.py"], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "e2e ok" in proc.stdout


@pytest.mark.parametrize(
    ("odd", "expected"),
    [
        ({"PASSWORD_HASHERS": []}, {"backend_guard.W004"}),
        ({"PASSWORD_HASHERS": ["no.such.Hasher"]}, {"backend_guard.W004"}),
        ({"PASSWORD_HASHERS": None}, {"backend_guard.W004"}),
        ({"SECURE_HSTS_SECONDS": "a year"}, {"backend_guard.W004"}),
        ({"SECURE_HSTS_SECONDS": [1]}, {"backend_guard.W004"}),
        ({"SECURE_HSTS_SECONDS": "31536000"}, set()),
    ],
)
def test_odd_settings_give_findings_not_a_crashed_check(odd: dict[str, Any], expected: set[str]) -> None:
    backends = ["backend_guard.django.GuardModelBackend"]
    settings = {
        "PASSWORD_HASHERS": [OURS],
        "AUTHENTICATION_BACKENDS": backends,
        "BACKEND_GUARD": CHEAP,
        "MIDDLEWARE": ["backend_guard.django.ErrorEnvelopeMiddleware"],  # InvalidPassword answered, no HSTS
        **odd,
    }
    with override_settings(**settings):
        found = {message.id for message in check_deploy_settings()} - {"backend_guard.W002"}  # workers: the env's
    assert found == expected
