"""`secinstall run -- COMMAND`: real pip (and uv) behind the verifying index, the command's
environment and exit code, and the record of what it installed."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from secinstall.cli import main
from tests.conftest import Venv, run_in
from tests.support.index import LocalIndex
from tests.support.pep740 import (
    DIST_INFO,
    NEW_IDENTITY,
    PROJECT,
    WHEEL,
    fixture_bytes,
    serve_real_wheel,
    sha256_of,
)
from tests.support.proxy import ConnectProxy
from tests.support.snapshot import snapshot
from tests.support.tampering import flip_middle_byte
from tests.support.wheels import WheelMaker

Json = dict[str, Any]


def uv_binary() -> str | None:
    try:
        import uv  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return shutil.which("uv")
    found: str = uv.find_uv_bin()
    return found


def run(index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, *command: str,
        options: tuple[str, ...] = ()) -> tuple[int, Json | None]:
    """`secinstall run` into `venv`; (exit code, the --report JSON if one was written)."""
    report = tmp_path / "run-report.json"
    report.unlink(missing_ok=True)
    code = main(["run", "--python", str(venv.path), "--cert", str(ca_file),
                 "--index-url", index.url, "--cache-dir", str(tmp_path / "cache"),
                 "--report", str(report), *options, "--", *command])
    return code, json.loads(report.read_text()) if report.exists() else None


def pip(venv: Venv, *args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "pip", "--python", str(venv.python), "install", *args)


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def fragments(venv: Venv) -> list[Path]:
    return sorted((venv.path / ".secinstall" / "sbom").glob("*.cdx.json"))


# --- pip --------------------------------------------------------------------------------------


def test_pip_install_is_verified_and_recorded(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    serve_real_wheel(index)

    code, report = run(index, ca_file, venv, tmp_path,
                       *pip(venv, "--no-deps", f"{PROJECT}==0.0.30"))

    out, err = capfd.readouterr()
    assert code == 0, out + err
    assert (venv.purelib / DIST_INFO).is_dir()
    assert "secinstall: verifying index at http://127.0.0.1:" in err
    assert f"Verified and installed: {PROJECT} 0.0.30 ({WHEEL}, sha256 checked against " \
           "index; published by github:pypi/pypi-attestations" in out
    assert report is not None
    (item,) = report["installed"]
    assert (item["name"], item["version"], item["verified"]) == (PROJECT, "0.0.30", True)
    assert item["sha256"] == sha256_of(fixture_bytes(WHEEL))
    assert item["hash_sources"] == ["index"]
    assert item["attestation"]["identity"].startswith(NEW_IDENTITY)
    assert report["exit_code"] == 0 and report["refused"] == []
    # The evidence is kept in the environment: an SBOM fragment, the trusted publisher.
    assert report["sbom"] is not None
    (fragment,) = fragments(venv)
    assert str(fragment) == report["sbom"]
    bom = json.loads(fragment.read_text())
    (component,) = bom["components"]
    assert (component["name"], component["version"]) == (PROJECT, "0.0.30")
    # pip chose the files, not secinstall's pinned path or its pip report.
    assert {"name": "secinstall:resolver", "value": "command"} in bom["metadata"]["properties"]
    assert component["hashes"] == [{"alg": "SHA-256",
                                    "content": sha256_of(fixture_bytes(WHEEL))}]
    trusted = json.loads((venv.path / ".secinstall" / "publishers.json").read_text())
    assert trusted["projects"][PROJECT]["publisher"]["repository"] == "pypi/pypi-attestations"


def test_dependencies_pip_resolves_are_verified_too(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    make_wheel: WheelMaker,
) -> None:
    index.add(make_wheel("app", "1.0", requires=["lib>=2"]))
    index.add(make_wheel("lib", "1.0"))
    index.add(make_wheel("lib", "2.0"))

    code, report = run(index, ca_file, venv, tmp_path, *pip(venv, "app"))

    assert code == 0
    assert report is not None
    assert [(i["name"], i["version"], i["verified"]) for i in report["installed"]] == [
        ("app", "1.0", True), ("lib", "2.0", True)]
    assert all(i["attestation_note"] == "no provenance" for i in report["installed"])
    assert run_in(venv, "import app, lib; print(lib.__version__)").stdout.strip() == "2.0"


def test_refused_file_fails_the_command_with_the_reason(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    capfd: pytest.CaptureFixture[str],
) -> None:
    wheel = make_wheel("demo-pkg", "1.0")
    index.add(wheel, serve_bytes=flip_middle_byte(wheel.read_bytes()))
    before = snapshot(venv.path)

    code, report = run(index, ca_file, venv, tmp_path, *pip(venv, "demo-pkg==1.0"))

    err = capfd.readouterr().err
    assert code == 1  # pip's exit code
    reason = f"{wheel.name} does not match the hash the index gives for it"
    assert f"403 Client Error: secinstall refused it: {reason}" in err  # pip's own output
    assert f"secinstall: refused {wheel.name}: {reason}" in err
    assert report is not None
    assert report["installed"] == [] and report["exit_code"] == 1
    (refusal,) = report["refused"]
    assert refusal["file"] == wheel.name and reason in refusal["reason"]
    assert snapshot(venv.path) == before


def test_publisher_drift_against_the_environments_trusted_publisher_is_refused(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    serve_real_wheel(index)
    trust = venv.path / ".secinstall" / "publishers.json"
    trust.parent.mkdir()
    trust.write_text(json.dumps({"version": 1, "projects": {PROJECT: {"publisher": {
        "kind": "github", "repository": "trailofbits/pypi-attestations"}}}}))
    before = snapshot(venv.path)

    code, _ = run(index, ca_file, venv, tmp_path, *pip(venv, "--no-deps", f"{PROJECT}==0.0.30"))

    assert code == 1
    assert f"secinstall refused it: publisher drift for {PROJECT}" in capfd.readouterr().err
    assert snapshot(venv.path) == before


def test_weakening_is_reported(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    serve_real_wheel(index)

    code, report = run(index, ca_file, venv, tmp_path,
                       *pip(venv, "--no-deps", f"{PROJECT}==0.0.30"),
                       options=("--attestations", "off"))

    assert code == 0
    assert "warning: verification weakened: attestations not checked (--attestations off)" \
        in capfd.readouterr().err
    assert report is not None
    (item,) = report["installed"]
    assert item["attestation"] is None
    assert item["attestation_note"] == "attestations not checked (--attestations off)"
    assert f"/files/{WHEEL}.provenance" not in index.requests


def test_install_that_bypassed_the_index_is_reported_unverified(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    local = make_wheel("local-pkg", "1.0")

    code, report = run(index, ca_file, venv, tmp_path, *pip(venv, "--no-deps", str(local)))

    assert code == 0
    assert "installed without passing through the verifying index" in capsys.readouterr().err
    assert report is not None
    (item,) = report["installed"]
    assert (item["name"], item["verified"]) == ("local-pkg", False)
    assert fragments(venv) == []


# --- the command -------------------------------------------------------------------------------


def test_command_sees_only_the_verifying_index(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for var in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "UV_INDEX", "UV_EXTRA_INDEX_URL"):
        monkeypatch.setenv(var, "https://elsewhere.example/simple/")
    # Isolated, pip would ignore PIP_INDEX_URL: from a variable or a file, it is dropped;
    # the file's other settings reach the command as variables.
    monkeypatch.setenv("PIP_ISOLATED", "1")
    (tmp_path / "pip.conf").write_text("[global]\nisolated = yes\ntimeout = 42\n",
                                       encoding="utf-8")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "pip.conf"))
    seen = tmp_path / "env.json"
    dump = f"import json, os; json.dump(dict(os.environ), open({str(seen)!r}, 'w'))"

    code, report = run(index, ca_file, venv, tmp_path, *python(dump))

    assert code == 0
    env = json.loads(seen.read_text())
    url = report["index_url"] if report else ""
    assert url.startswith("http://127.0.0.1:") and url.endswith("/simple/")
    assert env["PIP_INDEX_URL"] == env["UV_DEFAULT_INDEX"] == env["UV_INDEX_URL"] == url
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert env["UV_NO_CONFIG"] == "1"
    assert not {"PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "UV_INDEX",
                "UV_EXTRA_INDEX_URL", "PIP_ISOLATED"} & env.keys()
    assert env["PIP_TIMEOUT"] == "42"


def test_command_keeps_the_other_pip_settings_not_the_sources(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The command's pip reads no configuration file (an empty variable can't override a
    # file's extra-index-url), but gets the files' other settings as PIP_* variables: here
    # [install] no-deps. The proxy would take pip off the verifying index on loopback: not
    # given (secinstall uses it upstream).
    index.add(make_wheel("app", "1.0", requires=["lib"]))
    index.add(make_wheel("lib", "1.0"))
    config = tmp_path / "pip.conf"
    # The proxy only tunnels (CONNECT): secinstall reaches the upstream index through it,
    # and a plain http:// request for the verifying index would fail there.
    with ConnectProxy(("ci", "t0ken")) as proxy:
        config.write_text(f"[global]\nproxy = {proxy.url}\n[install]\nno-deps = yes\n"
                          "[download]\nno-deps = no\n", encoding="utf-8")
        monkeypatch.setenv("PIP_CONFIG_FILE", str(config))

        code, report = run(index, ca_file, venv, tmp_path, *pip(venv, "app"))

    assert code == 0
    assert report is not None
    assert [i["name"] for i in report["installed"]] == ["app"]
    assert proxy.tunnels and proxy.refused == []


def test_command_reaches_the_verifying_index_past_a_proxy(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A proxy can't reach the verifying index on loopback: the command goes there directly,
    # whatever NO_PROXY says (here it names another host), while secinstall reaches the
    # upstream index through the environment's proxy. This proxy only tunnels (CONNECT):
    # the command's plain http:// request for the verifying index would fail there.
    index.add(make_wheel("lib", "1.0"))
    with ConnectProxy(("ci", "t0ken")) as proxy:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(var, proxy.url)
        monkeypatch.setenv("NO_PROXY", "internal.example")

        code, report = run(index, ca_file, venv, tmp_path, *pip(venv, "--retries", "0", "lib"))

    assert code == 0
    assert report is not None and [i["name"] for i in report["installed"]] == ["lib"]
    upstream = index.base_url.removeprefix("https://")
    assert proxy.tunnels and set(proxy.tunnels) == {upstream}


@pytest.mark.parametrize(("command", "expected"), [
    (("-c", "raise SystemExit(3)"), 3),
    (("-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"), 128 + 15),
], ids=["exit-3", "killed-by-sigterm"])
def test_exit_code_is_the_commands(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    command: tuple[str, ...], expected: int,
) -> None:
    code, report = run(index, ca_file, venv, tmp_path, sys.executable, *command)
    assert code == expected
    assert report is not None and report["exit_code"] == expected


def test_missing_command(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = run(index, ca_file, venv, tmp_path, "no-such-command-here")
    assert code == 127
    assert "error: no-such-command-here: command not found" in capsys.readouterr().err


def test_nothing_to_run(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = run(index, ca_file, venv, tmp_path)
    assert code == 1
    assert "nothing to run: give the command after --" in capsys.readouterr().err


# --- uv ---------------------------------------------------------------------------------------


@pytest.mark.skipif(uv_binary() is None,
                    reason="uv is not installed (pip install uv; it is in requirements/tests.in)")
def test_uv_pip_install_is_verified(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
) -> None:
    uv = uv_binary()
    assert uv is not None
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    serve_real_wheel(index)
    tampered = make_wheel("demo-pkg", "1.0")
    index.add(tampered, serve_bytes=flip_middle_byte(tampered.read_bytes()))

    code, report = run(index, ca_file, venv, tmp_path, uv, "pip", "install", "--python",
                       str(venv.python), "--no-deps", f"{PROJECT}==0.0.30")

    assert code == 0, capfd.readouterr()
    assert (venv.purelib / DIST_INFO).is_dir()
    assert report is not None
    (item,) = report["installed"]
    assert (item["name"], item["verified"]) == (PROJECT, True)
    assert item["attestation"]["identity"].startswith(NEW_IDENTITY)

    before = snapshot(venv.path)
    capfd.readouterr()
    code, report = run(index, ca_file, venv, tmp_path, uv, "pip", "install", "--python",
                       str(venv.python), "demo-pkg==1.0")
    err = capfd.readouterr().err
    assert code != 0
    # uv shows the reason phrase too (wrapped at its idea of the terminal width)
    assert f"403 secinstall refused it: {tampered.name} does not match the hash the index " \
           "gives for it" in " ".join(err.split())
    assert f"secinstall: refused {tampered.name}: " in err
    assert snapshot(venv.path) == before
