"""The content-addressed cache: a warm pinned install needs no index at all, and what it
takes from the cache is checked again (hash, provenance) before it is used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secinstall.cache import LISTING
from secinstall.cli import main
from tests.conftest import Venv, run_in
from tests.integration.test_attestations import (
    PROJECT,
    install,
    is_installed,
    serve_real_wheel,
    wheel_pin,
)
from tests.integration.test_install import pin
from tests.support.index import LocalIndex
from tests.support.wheels import WheelMaker
from tests.unit.test_attestations import WHEEL


def _venv_like(venv: Venv, tmp_path: Path, name: str) -> Venv:
    import subprocess
    import sys

    path = tmp_path / name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    purelib = venv.purelib.relative_to(venv.path)
    return Venv(path, path / "bin" / "python", path / "bin", path / purelib)


def test_warm_pinned_install_asks_no_index(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wheel = make_wheel("warm", "1.0")
    index.add(wheel)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(pin(wheel) + "\n", encoding="utf-8")
    assert install(index, ca_file, venv, tmp_path, "-r", str(reqs)) == 0
    assert index.requests, "the cold install asked the index"

    before = len(index.requests)
    other = _venv_like(venv, tmp_path, "other")
    assert install(index, ca_file, other, tmp_path, "-r", str(reqs), "-v") == 0
    assert index.requests[before:] == []
    assert "1 from cache" in capsys.readouterr().out
    assert run_in(other, "import warm; print(warm.__version__)").stdout.strip() == "1.0"


def test_tampered_cache_entry_is_not_used(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    """A cached file is hashed again before use: a changed one is fetched anew."""
    wheel = make_wheel("warm", "1.0")
    index.add(wheel)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(pin(wheel) + "\n", encoding="utf-8")
    assert install(index, ca_file, venv, tmp_path, "-r", str(reqs)) == 0
    (cached,) = (tmp_path / "cache").rglob(wheel.name)
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")

    before = len(index.requests)
    other = _venv_like(venv, tmp_path, "other")
    assert install(index, ca_file, other, tmp_path, "-r", str(reqs)) == 0
    assert any(r.endswith(wheel.name) for r in index.requests[before:]), "not fetched again"
    assert cached.read_bytes() == wheel.read_bytes()


def test_warm_install_verifies_the_cached_provenance_again(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve_real_wheel(index)
    args = [*wheel_pin(tmp_path), "--attestations", "require"]
    assert install(index, ca_file, venv, tmp_path, *args) == 0
    capsys.readouterr()

    before = len(index.requests)
    other = _venv_like(venv, tmp_path, "other")
    assert install(index, ca_file, other, tmp_path, *args) == 0
    assert index.requests[before:] == []
    out = capsys.readouterr().out
    assert "published by github:pypi/pypi-attestations" in out
    assert is_installed(other)

    # A provenance changed in the cache is verified again, and refused.
    (listing,) = (tmp_path / "cache").rglob(LISTING)
    entry = json.loads(listing.read_text(encoding="utf-8"))
    entry["provenance"]["data"] = entry["provenance"]["data"].replace(
        "pypi/pypi-attestations", "evil/pypi-attestations")
    listing.write_text(json.dumps(entry), encoding="utf-8")
    third = _venv_like(venv, tmp_path, "third")
    assert install(index, ca_file, third, tmp_path, *args) == 1
    assert not is_installed(third)
    assert f"{WHEEL}" in capsys.readouterr().err
    assert PROJECT == "pypi-attestations"


def test_no_cache_dir_leaves_nothing(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    wheel = make_wheel("warm", "1.0")
    index.add(wheel)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(pin(wheel) + "\n", encoding="utf-8")
    code = main(["install", "--cert", str(ca_file), "--index-url", index.url,
                 "--no-cache-dir", "--python", str(venv.python), "-r", str(reqs)])
    assert code == 0
    assert not (tmp_path / "cache").exists()
