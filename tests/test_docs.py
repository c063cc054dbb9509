"""The docs cannot drift from the code: the configuration reference is generated from the settings models."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--check"], capture_output=True, check=False
    )
    assert proc.returncode == 0, "docs/configuration.md is stale: run python scripts/gen_config_docs.py"


def test_every_docs_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").rglob("*.md"):
        rel = page.relative_to(ROOT / "docs").as_posix()
        assert rel in nav, f"{rel} is not in mkdocs.yml's nav"


def test_every_public_name_of_the_package_is_rendered_in_the_api_reference() -> None:
    import backend_guard

    page = (ROOT / "docs" / "reference" / "api.md").read_text(encoding="utf-8")
    rendered = set(re.findall(r"^::: backend_guard\.(\w+)$", page, flags=re.MULTILINE))
    public = set(backend_guard.__all__) - {"__version__"}
    assert public - rendered == set(), "add these names to docs/reference/api.md"
    assert rendered - public == set(), "docs/reference/api.md renders names that are not in backend_guard.__all__"


# --- Every Python block of the docs runs as written -----------------------------------------------------------
#
# Each ```python block in README.md and docs/**/*.md is preceded by a marker line (an HTML comment: invisible in
# mkdocs and on PyPI):
#
#   <!-- snippet: full -->                 a complete program
#   <!-- snippet: continues -->            appended to the page's previous program (and run with it)
#   <!-- snippet: django-settings -->      a settings.py fragment: run inside a minimal Django project's settings
#                                          (Django's startproject defaults before it), then one request through it
#   <!-- snippet: skip reason="..." -->    not run; keep these rare and say why
#
# Flags after ``full``: ``redis`` (talks to the shared test Redis: its redis://127.0.0.1:6379/0 URLs get a key
# prefix of the test's own, deleted afterwards), ``django`` (Django is configured around the block, with the block
# itself as ROOT_URLCONF), ``otel`` (needs the OpenTelemetry SDK, of the dev extra: skipped without it). An
# unmarked block fails the test, so a new page cannot slip through untested.
# Each program runs in a fresh interpreter in a temporary directory, without BACKEND_GUARD_* variables;
# ``mypy --strict`` checks every full program.

SNIPPET_MARK = re.compile(
    r"^<!-- snippet: (?P<kind>full|continues|django-settings|skip)(?P<flags>(?: (?:redis|django|otel))*)"
    r'(?: reason="(?P<reason>[^"]+)")? -->$'
)
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\S*)\s*$")
DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
DOCS_REDIS = "redis://127.0.0.1:6379/0"
SNIPPET_TIMEOUT = 180


@dataclass
class Program:
    """One runnable program of a page: a ``full`` (or ``django-settings``) block plus its continuations."""

    page: str
    line: int
    kind: str
    flags: frozenset[str]
    code: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def module(self) -> str:
        return "snippet_" + re.sub(r"[^a-z0-9]+", "_", f"{self.page}_{self.line}".lower())


def _python_blocks(page: Path) -> Iterator[tuple[int, str | None, str]]:
    """(line of the fence, the marker line before it or None, the block's code) for each ```python block."""
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if opened is None:
            i += 1
            continue
        indent, start = opened["indent"], i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        if opened["lang"] in ("python", "py", "python3"):
            marker = lines[start - 1].strip() if start > 0 else None
            yield start + 1, marker, "\n".join(body) + "\n"


def doc_programs() -> tuple[list[Program], list[str]]:
    """Every program of the docs, and every problem with the markers (unmarked blocks, orphan continuations)."""
    programs: list[Program] = []
    problems: list[str] = []
    for page in DOC_PAGES:
        rel = page.relative_to(ROOT).as_posix()
        current: Program | None = None
        for line, marker, code in _python_blocks(page):
            mark = SNIPPET_MARK.match(marker or "")
            if mark is None:
                problems.append(f"{rel}:{line}: a python block without a <!-- snippet: ... --> marker line before it")
                continue
            kind, flags = mark["kind"], frozenset(mark["flags"].split())
            if kind == "skip":
                if not mark["reason"]:
                    problems.append(f'{rel}:{line}: a skipped block must give its reason="..."')
                current = None
            elif kind == "continues":
                if current is None:
                    problems.append(f"{rel}:{line}: 'continues' without a runnable block before it on the page")
                else:
                    current.code += "\n" + code
            else:
                current = Program(rel, line, kind, flags, code)
                programs.append(current)
    return programs, problems


PROGRAMS, MARKER_PROBLEMS = doc_programs()

DJANGO_BASE_SETTINGS = '''\
"""A minimal Django project's settings (startproject's defaults), with the documented fragment after them."""
SECRET_KEY = "docs-snippet-test-key-not-secret-0123456789abcdefghijklmnop"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "docs_urls"
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles",
]
STATIC_URL = "static/"
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request", "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
'''

# The project a settings fragment lands in: a fresh startproject's URLconf, the admin alone (a rule naming a route
# it lacks is refused on the first request, as in the user's project).
DJANGO_PROJECT_URLS = """\
from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
"""

DJANGO_SETTINGS_RUNNER = """\
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "docs_settings"
import django
django.setup()
from django.test import Client
response = Client().get("/")
assert response.status_code == 404, response.status_code
assert response.headers.get("X-Request-ID"), dict(response.headers)
from django.core.management import call_command
call_command("check", tags=["urls"])  # the URL checks, backend_guard.E002 (rules against the URLconf) among them
from django.conf import settings
if "django.contrib.auth.middleware.AuthenticationMiddleware" in settings.MIDDLEWARE:  # (a fragment may replace it)
    page = Client().get("/admin/login/")  # the framework's own pages keep working with the fragment in
    assert page.status_code == 200 and b'name="password"' in page.content, page.status_code
"""

DJANGO_PRELUDE_RUNNER = """\
import runpy, sys
import django
from django.conf import settings
settings.configure(
    SECRET_KEY="docs-snippet-test-key-not-secret-0123456789abcdefghijklmnop",
    ALLOWED_HOSTS=["testserver"], ROOT_URLCONF="__main__", USE_TZ=True,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
)
django.setup()
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def _snippet_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("BACKEND_GUARD_", "DJANGO_"))}


def _run(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_snippet_env(),
        capture_output=True,
        text=True,
        timeout=SNIPPET_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_every_python_block_of_the_docs_is_marked_as_a_program_a_continuation_or_a_reasoned_skip() -> None:
    assert not MARKER_PROBLEMS, "\n".join(MARKER_PROBLEMS)


@pytest.mark.parametrize(
    "program",
    [pytest.param(p, id=p.name, marks=[pytest.mark.redis] if "redis" in p.flags else []) for p in PROGRAMS],
)
def test_each_docs_program_runs_as_written_in_a_fresh_interpreter(
    program: Program, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    code = program.code
    prefix = None
    if "otel" in program.flags:
        pytest.importorskip("opentelemetry.sdk.metrics", reason="the OpenTelemetry SDK is in the dev extra")
    if "redis" in program.flags:
        request.getfixturevalue("redis_url")  # skips (or fails under BACKEND_GUARD_REQUIRE_REDIS=1) without Redis
        assert DOCS_REDIS in code, f"{program.name} is marked redis but never names {DOCS_REDIS}"
        prefix = f"bgtest:docs:{uuid.uuid4().hex[:12]}"
        code = re.sub(re.escape(DOCS_REDIS) + r"(\?prefix=[\w:-]+)?", f"{DOCS_REDIS}?prefix={prefix}", code)
    try:
        if program.kind == "django-settings":
            (tmp_path / "docs_settings.py").write_text(DJANGO_BASE_SETTINGS + "\n" + code)
            (tmp_path / "docs_urls.py").write_text(DJANGO_PROJECT_URLS)
            (tmp_path / "run_settings.py").write_text(DJANGO_SETTINGS_RUNNER)
            _run(["run_settings.py"], tmp_path)
        elif "django" in program.flags:
            (tmp_path / f"{program.module}.py").write_text(code)
            (tmp_path / "run_django.py").write_text(DJANGO_PRELUDE_RUNNER)
            _run(["run_django.py", f"{program.module}.py"], tmp_path)
        else:
            (tmp_path / f"{program.module}.py").write_text(code)
            _run([f"{program.module}.py"], tmp_path)
    finally:
        if prefix is not None:
            _delete_keys(prefix)


def _delete_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(DOCS_REDIS)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


MYPY_CONFIG = """\
[mypy]
strict = True
warn_unreachable = True
plugins = pydantic.mypy

[mypy-django.*]
ignore_missing_imports = True
"""


def test_the_full_docs_programs_pass_mypy_strict(tmp_path: Path) -> None:
    # mypy is a development tool (the `dev` extra): the main run type-checks the docs; the other Pythons' runs,
    # installed with the `test` extra only, skip this one.
    pytest.importorskip("mypy", reason="mypy is in the dev extra; the main run type-checks the docs")
    files, untyped = [], []
    for program in PROGRAMS:
        if program.kind == "full":
            path = tmp_path / f"{program.module}.py"
            path.write_text(program.code)
            files.append(str(path))
            if "django" in program.code:  # Django ships no type hints: its decorators are untyped without stubs
                untyped.append(program.module)
    config = MYPY_CONFIG + (
        f"\n[mypy-{','.join(untyped)}]\ndisable_error_code = untyped-decorator\n" if untyped else ""
    )
    (tmp_path / "mypy.ini").write_text(config)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            *files,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    names = {f"{p.module}.py": p.name for p in PROGRAMS}
    report = re.sub(r"\S*(snippet_\w+\.py)", lambda m: names.get(m[1], m[1]), proc.stdout + proc.stderr)
    assert proc.returncode == 0, report
