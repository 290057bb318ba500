"""Installs from the public PyPI, through the OS trust store (no --cert)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secinstall.cli import main
from tests.conftest import Venv, run_in

pytestmark = pytest.mark.network

MDURL = ("mdurl==0.1.2 "
         "--hash=sha256:84008a41e51615a49fc9966191ff91509e3c40b939176e643fd50a5c2196b8f8")


def test_resolved_install_of_rich(
    venv: Venv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_file = tmp_path / "report.json"

    code = main(["install", "--python", str(venv.path), "--cache-dir", str(tmp_path / "cache"),
                 "--report", str(report_file), "rich"])

    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(report_file.read_text())
    assert report["secinstall"]["resolver"] == "pip"
    names = {item["metadata"]["name"].lower() for item in report["install"]}
    assert {"rich", "pygments", "markdown-it-py", "mdurl"} <= names
    for item in report["install"]:
        assert item["download_info"]["url"].startswith("https://files.pythonhosted.org/")
        assert "index" in item["secinstall"]["hash_sources"]
    code_check = "from rich.console import Console; Console().print('[bold]ok[/bold]')"
    printed = run_in(venv, code_check)
    assert (printed.returncode, printed.stdout) == (0, "ok\n"), printed.stderr
    assert "Installed:" in out


def test_pinned_install_from_pypi(
    venv: Venv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(MDURL + "\n")
    report_file = tmp_path / "report.json"

    code = main(["install", "--python", str(venv.path), "--cache-dir", str(tmp_path / "cache"),
                 "-r", str(reqs), "--report", str(report_file)])

    _, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(report_file.read_text())
    assert report["secinstall"]["resolver"] == "pinned"
    [item] = report["install"]
    assert item["secinstall"]["hash_sources"] == ["index", "pin"]
    imported = run_in(venv, "import mdurl; print(mdurl.__version__)")
    assert imported.stdout == "0.1.2\n", imported.stderr
