"""``manage.py check`` (and so ``runserver``) reports a rate limit rule matching no URL pattern of the project.

A real ``startproject`` project, its settings appended as a user would, ``manage.py check`` run in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("django")

SETTINGS = """
INSTALLED_APPS += ["backend_guard.django.BackendGuardConfig"]
MIDDLEWARE = ["backend_guard.django.GuardMiddleware", *MIDDLEWARE]
BACKEND_GUARD = {{"rate_limit": {{"rules": [{{"path": {path!r}, "limits": "5/minute", "methods": ["POST"]}}]}}}}
"""


def _project(tmp_path: Path, rule_path: str) -> Path:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKEND_GUARD_", "DJANGO_"))}
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(tmp_path)], check=True, env=env)
    settings = tmp_path / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + SETTINGS.format(path=rule_path))
    return tmp_path


def _check(project: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKEND_GUARD_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("rule_path", "hint"),
    [("/login/", "match request paths exactly"), ("/Admin/login/", "did you mean '/admin/login/'")],
)
def test_a_rule_matching_no_url_pattern_fails_manage_py_check(tmp_path: Path, rule_path: str, hint: str) -> None:
    done = _check(_project(tmp_path, rule_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "backend_guard.E002" in done.stderr
    assert f"rate limit rule {rule_path!r} matches no route of the app" in done.stderr
    assert hint in done.stderr


def test_a_rule_naming_a_url_pattern_passes_manage_py_check(tmp_path: Path) -> None:
    done = _check(_project(tmp_path, "/admin/login/"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "backend_guard.E002" not in done.stdout + done.stderr
