"""The package as PyPI gets it: the sdist and the wheel, built for real, with the license, URLs and classifiers."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
URLS = {"Homepage", "Documentation", "Changelog", "Issues"}
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # The sdist first, then the wheel built from that sdist (what `python -m build` does for a release).
    subprocess.run(  # noqa: S603 - the build front end on this repository, no network (--no-isolation)
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def _metadata(text: str) -> Message:
    return email.parser.Parser().parsestr(text)


def _sdist(dist: Path) -> tuple[list[str], Message]:
    (path,) = dist.glob("*.tar.gz")
    with tarfile.open(path) as tar:
        names = tar.getnames()
        info = next(n for n in names if n.count("/") == 1 and n.endswith("/PKG-INFO"))
        member = tar.extractfile(info)
        assert member is not None
        return names, _metadata(member.read().decode("utf-8"))


def _wheel(dist: Path) -> tuple[list[str], Message]:
    (path,) = dist.glob("*.whl")
    with zipfile.ZipFile(path) as whl:
        names = whl.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        return names, _metadata(whl.read(info).decode("utf-8"))


def _check_metadata(meta: Message) -> None:
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in meta.get_all("License-File", [])
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL", []))
    assert set(urls) >= URLS
    for url in urls.values():
        assert url.startswith("https://github.com/backend-guard/backend-guard")
    classifiers = meta.get_all("Classifier", [])
    for version in PYTHONS:
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert meta["Description-Content-Type"] == "text/markdown"
    description = meta.get_payload()
    assert isinstance(description, str)
    first = next(line for line in description.splitlines() if line.strip() and not line.startswith("#"))
    assert "pip install" in first, first
    # The developers' set-up comes after what a user reads first.
    assert description.index("## Install") < description.index("## Development")
    assert description.index("## Quickstart") < description.index("bash scripts/dev.sh test")


@pytest.mark.slow
def test_the_sdist_holds_the_license_and_the_pypi_metadata(dist: Path) -> None:
    names, meta = _sdist(dist)
    assert any(name.endswith("/LICENSE") and name.count("/") == 1 for name in names), names
    _check_metadata(meta)


@pytest.mark.slow
def test_the_wheel_holds_the_license_and_the_pypi_metadata(dist: Path) -> None:
    names, meta = _wheel(dist)
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), names
    assert "backend_guard/py.typed" in names
    _check_metadata(meta)
