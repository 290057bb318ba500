"""`--report`: pip's installation report (version 1) with secinstall's evidence added."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from tests.conftest import Venv, run_in
from tests.support.cli import Secinstall
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker


def test_dry_run_report_on_stdout(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker
) -> None:
    app = make_wheel("app", "1.0", requires=["lib>=1"])
    lib = make_wheel("lib", "2.0")
    urls = {p.name: secinstall.index.add(p) for p in (app, lib)}
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--dry-run", "--report", "-", "app")

    assert run.code == 0, run.err
    report = json.loads(run.out)  # stdout holds the report and nothing else
    assert "Would install: app 1.0, lib 2.0" in run.err
    assert snapshot(venv.path) == before

    assert report["version"] == "1"
    assert report["environment"]["python_version"] == "{}.{}".format(*sys.version_info[:2])
    extension = report["secinstall"]
    assert (extension["resolver"], extension["dry_run"]) == ("pip", True)
    assert extension["target"]["root"] == str(venv.path)
    items = {item["metadata"]["name"]: item for item in report["install"]}
    assert set(items) == {"app", "lib"}
    for name, wheel, requested in (("app", app, True), ("lib", lib, False)):
        item = items[name]
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert item["download_info"]["url"] == urls[wheel.name]
        assert item["download_info"]["archive_info"]["hashes"]["sha256"] == digest
        assert item["requested"] is requested
        assert item["secinstall"]["sha256"] == digest
        assert item["secinstall"]["hash_sources"] == ["index"]
    assert items["app"]["metadata"]["requires_dist"] == ["lib>=1"]
    assert items["lib"]["secinstall"]["via"] == ["app==1.0"]


def test_report_and_dry_run_from_pips_configuration(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As pip reads them: PIP_REPORT=- puts the report on stdout, and the messages go aside.
    secinstall.index.add(make_wheel("app", "1.0"))
    monkeypatch.setenv("PIP_DRY_RUN", "1")
    monkeypatch.setenv("PIP_REPORT", "-")
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "app")

    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert [item["metadata"]["name"] for item in report["install"]] == ["app"]
    assert report["secinstall"]["dry_run"] is True
    assert "Would install: app 1.0" in run.err
    assert snapshot(venv.path) == before


def test_report_file_of_an_upgrade(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    old, new = make_wheel("lib", "1.0"), make_wheel("lib", "2.0")
    secinstall.index.add(old)
    secinstall.index.add(new)
    assert secinstall("--python", venv.path, *secinstall.pinned(old)).code == 0
    report_file = tmp_path / "report.json"

    run = secinstall("--python", venv.path, *secinstall.pinned(new), "--report", report_file)

    assert run.code == 0, run.err
    assert "Installed: lib 2.0 (replaced lib 1.0)" in run.out
    report = json.loads(report_file.read_text())
    extension = report["secinstall"]
    assert (extension["resolver"], extension["dry_run"]) == ("pinned", False)
    assert extension["removed"] == ["lib==1.0"]
    [item] = report["install"]
    assert item["metadata"]["version"] == "2.0"
    assert item["secinstall"]["hash_sources"] == ["index", "pin"]
    assert item["secinstall"]["pinned"] is True
    assert item["download_info"]["archive_info"]["hashes"]["sha256"] == \
        hashlib.sha256(new.read_bytes()).hexdigest()
    assert run_in(venv, "import lib; print(lib.__version__)").stdout == "2.0\n"


@pytest.mark.parametrize("where", ["in a missing directory", "a directory"])
def test_report_that_cant_be_written_is_refused_before_anything_is_done(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, tmp_path: Path, where: str
) -> None:
    """Found after the install, it would leave the install done and its report lost (it
    was a traceback); it is checked first."""
    wheel = make_wheel("lib", "1.0")
    secinstall.index.add(wheel)
    report_file = tmp_path / "missing" / "report.json" if where != "a directory" else tmp_path
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel), "--report", report_file)

    assert run.code == 1
    expected = "doesn't exist" if where != "a directory" else "that is a directory"
    assert f"error: --report {report_file}: " in run.err and expected in run.err
    assert snapshot(venv.path) == before
    assert not [r for r in secinstall.index.requests if r.startswith("/files/")]
