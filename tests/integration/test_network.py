"""Installs from the public PyPI, through the OS trust store (no --cert)."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from pathlib import Path

import pytest

import secinstall
from secinstall.cli import main
from tests.conftest import Venv, make_venv, run_in
from tests.support.index import LocalIndex
from tests.support.wheels import WheelMaker

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


PIP_FLOOR = ("pip==24.2 "
             "--hash=sha256:2cd581cf58ab7fcfca4ce8efa6dcacd0de5bf8d0a3eb9ec927e07405f4d9e2a2")


@pytest.fixture
def floor_runner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Venv:
    """An environment that runs secinstall (and its dependencies, from here) with pip
    24.2: secinstall's floor, and the pip Python 3.13.0's venvs come with."""
    runner = make_venv(tmp_path / "runner")
    pins = tmp_path / "pip.txt"
    pins.write_text(PIP_FLOOR + "\n")
    code = main(["install", "--python", str(runner.path), "--cache-dir", str(tmp_path / "c0"),
                 "-r", str(pins)])
    assert code == 0, capsys.readouterr().err
    # After the runner's own pip on its path.
    here = [str(Path(secinstall.__file__).parent.parent),
            *dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))]
    (runner.purelib / "zz_secinstall_under_test.pth").write_text("\n".join(here) + "\n")
    version = subprocess.run([str(runner.python), "-m", "pip", "--version"], env=_env(),
                             capture_output=True, text=True, check=True).stdout
    assert version.startswith("pip 24.2 ")
    return runner


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def test_resolving_with_the_oldest_pip_secinstall_takes(
    floor_runner: Venv, tmp_path: Path,
) -> None:
    # Given --log (as secinstall runs it), pip 24.2 draws its download bar on stdout,
    # where the report is, even with --quiet: resolving anything with a file of over half
    # a megabyte failed. docutils' wheel: 0.6 MB.
    target = make_venv(tmp_path / "target")
    run = subprocess.run(
        [str(floor_runner.python), "-m", "secinstall", "install", "--python",
         str(target.path), "--cache-dir", str(tmp_path / "c"), "docutils==0.22.4"],
        env=_env(), capture_output=True, text=True)

    assert run.returncode == 0, run.stderr
    assert run_in(target, "import docutils").returncode == 0


def test_an_old_pip_on_an_index_at_an_ip_address_says_what_to_do(
    floor_runner: Venv, tmp_path: Path, index: LocalIndex, ca_file: Path,
    make_wheel: WheelMaker,
) -> None:
    # pip before 26.1 crashes there ("check_hostname requires server_hostname"): said as
    # what it is, and what to do, not as pip's traceback.
    index.add(make_wheel("lib", "1.0"))
    target = make_venv(tmp_path / "target")
    run = subprocess.run(
        [str(floor_runner.python), "-m", "secinstall", "install", "--python",
         str(target.path), "--index-url", index.url, "--cert", str(ca_file),
         "--cache-dir", str(tmp_path / "c"), "lib"],
        env=_env(), capture_output=True, text=True)

    assert run.returncode == 1
    assert run.stderr.startswith("error: pip 24.2 can't reach an index on an IP address over "
                                 "HTTPS"), run.stderr
    assert "upgrade pip where secinstall runs" in run.stderr
