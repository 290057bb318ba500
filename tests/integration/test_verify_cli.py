"""`secinstall verify`: real files and attestations, verdicts and exit codes, and no network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import secinstall
from secinstall.cli import main
from tests.support.pep740 import (
    NEW_PUBLISHER,
    OLD_PUBLISHER,
    SDIST,
    STAGING_WHEEL,
    WHEEL,
    fixture_bytes,
    fixtures_dir,
    real_log_index,
    sha256_of,
)
from tests.support.tampering import TAMPERED, flip_middle_byte

STAGING_ATTESTATION = STAGING_WHEEL + ".publish.attestation"
STAGING_EMAIL = "email:william@yossarian.net"
WHEEL_PUBLISHER = f"{NEW_PUBLISHER} (workflow release.yml, environment pypi)"
SDIST_PUBLISHER = f"{OLD_PUBLISHER} (workflow release.yml)"


def fixture(name: str) -> str:
    return str(fixtures_dir() / name)


def ok_line(path: str, filename: str, publisher: str, instance: str = "production") -> str:
    return (f"OK {path}: sha256:{sha256_of(fixture_bytes(filename))}, published by "
            f"{publisher} (Rekor log index {real_log_index(filename)}, {instance})")


def place(directory: Path, filename: str, data: bytes, provenance: bytes) -> str:
    """Write a distribution and its `.provenance` next to it; return the distribution's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / filename).write_bytes(data)
    (directory / f"{filename}.provenance").write_bytes(provenance)
    return str(directory / filename)


# --- 6. verdicts on the real files ----------------------------------------------------------


def test_real_wheel_and_sdist_verify(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", fixture(WHEEL), fixture(SDIST)])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines() == [
        ok_line(fixture(WHEEL), WHEEL, WHEEL_PUBLISHER),
        ok_line(fixture(SDIST), SDIST, SDIST_PUBLISHER),
    ]
    assert err == ""


def test_verbose_shows_certificate_identity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "-v", fixture(SDIST)]) == 0
    out = capsys.readouterr().out
    assert ("certificate identity https://github.com/trailofbits/pypi-attestations/"
            ".github/workflows/release.yml@") in out
    assert "issuer https://token.actions.githubusercontent.com" in out


@pytest.mark.parametrize(("make", "caught_by"), TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_wheel_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
    make: Callable[[], tuple[bytes, bytes]], caught_by: str,
) -> None:
    data, provenance = make()
    path = place(tmp_path, WHEEL, data, provenance)

    code = main(["verify", path])

    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith(f"FAILED {path}: {WHEEL} (provenance from {path}.provenance): "
                          "attestation 1")
    assert caught_by.lower() in err.lower()
    assert "OK" not in out
    assert "1 of 1 file(s) failed verification" in out


@pytest.mark.parametrize(
    ("make", "caught_by"),
    [
        (lambda: (flip_middle_byte(fixture_bytes(SDIST)), fixture_bytes(SDIST + ".provenance")),
         "sha256 mismatch"),
        (lambda: (fixture_bytes(SDIST), fixture_bytes(WHEEL + ".provenance")),
         f"the statement is for '{WHEEL}', not {SDIST}"),
    ],
    ids=["sdist-byte", "provenance-of-another-file"],
)
def test_tampered_sdist_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
    make: Callable[[], tuple[bytes, bytes]], caught_by: str,
) -> None:
    data, provenance = make()
    path = place(tmp_path, SDIST, data, provenance)

    assert main(["verify", path]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"FAILED {path}: {SDIST}")
    assert caught_by in err


def test_one_bad_file_among_good_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = place(tmp_path / "bad", WHEEL, flip_middle_byte(fixture_bytes(WHEEL)),
                fixture_bytes(WHEEL + ".provenance"))

    code = main(["verify", fixture(WHEEL), bad, fixture(SDIST)])

    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == [
        ok_line(fixture(WHEEL), WHEEL, WHEEL_PUBLISHER),
        ok_line(fixture(SDIST), SDIST, SDIST_PUBLISHER),
        "1 of 3 file(s) failed verification",
    ]
    assert err.startswith(f"FAILED {bad}: ")
    assert "sha256 mismatch" in err
    assert len(err.splitlines()) == 1


def test_missing_provenance_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lone = tmp_path / WHEEL
    shutil.copyfile(fixtures_dir() / WHEEL, lone)

    code = main(["verify", str(lone), fixture(SDIST)])

    out, err = capsys.readouterr()
    assert code == 1
    assert f"FAILED {lone}: {WHEEL}: no provenance at {lone}.provenance" in err
    assert ok_line(fixture(SDIST), SDIST, SDIST_PUBLISHER) in out.splitlines()


def test_publisher_pin_applies_to_each_file(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--publisher", NEW_PUBLISHER, fixture(WHEEL), fixture(SDIST)])

    out, err = capsys.readouterr()
    assert code == 1
    assert ok_line(fixture(WHEEL), WHEEL, WHEEL_PUBLISHER) in out.splitlines()
    assert (f"FAILED {fixture(SDIST)}: {SDIST} (provenance from {fixture(SDIST)}.provenance): "
            f"publisher mismatch: expected {NEW_PUBLISHER}, provenance says "
            f"{SDIST_PUBLISHER}") in err


def test_provenance_option_takes_one_file(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--provenance", fixture(WHEEL + ".provenance"),
                 fixture(WHEEL), fixture(SDIST)])
    assert code == 1
    assert "--provenance names the provenance of one file" in capsys.readouterr().err


# --- 4. the staging attestation (a bare attestation, e-mail identity) ------------------------


def verify_staging(*options: str) -> int:
    return main(["verify", fixture(STAGING_WHEEL), "--provenance", fixture(STAGING_ATTESTATION),
                 *options])


def test_staging_attestation_refused_against_production(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = verify_staging("--publisher", STAGING_EMAIL)

    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith(f"FAILED {fixture(STAGING_WHEEL)}: {STAGING_WHEEL}")
    assert f"attestation 1 did not verify on Sigstore production for publisher " \
           f"{STAGING_EMAIL}" in err
    assert "OK" not in out


def test_staging_attestation_accepted_on_staging(capsys: pytest.CaptureFixture[str]) -> None:
    code = verify_staging("--sigstore-instance", "staging", "--publisher", STAGING_EMAIL)

    out, err = capsys.readouterr()
    assert code == 0, err
    (line,) = out.splitlines()
    assert line.startswith(f"OK {fixture(STAGING_WHEEL)}: "
                           f"sha256:{sha256_of(fixture_bytes(STAGING_WHEEL))}, "
                           f"published by {STAGING_EMAIL} (Rekor log index ")
    assert line.endswith(", staging)")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], "names no publisher"),
        (["--publisher", "email:someone@example.com"], "not someone@example.com"),
    ],
    ids=["no-pin", "other-email"],
)
def test_staging_attestation_needs_the_right_pin(
    capsys: pytest.CaptureFixture[str], options: list[str], expected: str,
) -> None:
    assert verify_staging("--sigstore-instance", "staging", *options) == 1
    assert expected in capsys.readouterr().err


# --- 9. no network access to Sigstore (or anything) -----------------------------------------


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """This interpreter's environment with secinstall importable, and fresh cache/home dirs
    (so no TUF cache of the user can take part)."""
    src = Path(secinstall.__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME",)}
    env["PYTHONPATH"] = str(src)
    for var in ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        env[var] = str(tmp_path / var.lower())
    return env


ALL_REAL_FILES = [
    # (arguments, what the output must show)
    ([fixture(WHEEL), fixture(SDIST)],
     [ok_line(fixture(WHEEL), WHEEL, WHEEL_PUBLISHER),
      ok_line(fixture(SDIST), SDIST, SDIST_PUBLISHER)]),
    ([fixture(STAGING_WHEEL), "--provenance", fixture(STAGING_ATTESTATION),
      "--sigstore-instance", "staging", "--publisher", STAGING_EMAIL],
     [f"OK {fixture(STAGING_WHEEL)}: sha256:{sha256_of(fixture_bytes(STAGING_WHEEL))}, "
      f"published by {STAGING_EMAIL}"]),
]


def unshare_available() -> str | None:
    """Why `unshare -rn` can't be used here, or None when it can."""
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        return f"unshare -rn is not permitted here: {probe.stderr.strip()}"
    return None


def test_verify_in_a_network_namespace_without_network(tmp_path: Path) -> None:
    reason = unshare_available()
    if reason is not None:
        pytest.skip(reason)
    env = subprocess_env(tmp_path)
    # The control: in this namespace nothing can be reached, not even by address.
    control = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c",
         "import socket; socket.create_connection(('1.1.1.1', 443), timeout=5)"],
        capture_output=True, text=True, env=env, check=False)
    assert control.returncode != 0
    assert "unreachable" in control.stderr.lower()

    for args, expected in ALL_REAL_FILES:
        result = subprocess.run(
            ["unshare", "-rn", sys.executable, "-m", "secinstall", "verify", *args],
            capture_output=True, text=True, env=env, check=False, timeout=120)
        assert result.returncode == 0, result.stderr
        for text in expected:
            assert text in result.stdout


# Aborts the process (so no `except` can hide it) at the first attempt to resolve a name
# or open a connection, then runs `python -m secinstall` with the remaining arguments.
HARNESS = """\
import os, runpy, sys

NETWORK = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
           "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.sendto",
           "socket.sendmsg", "http.client.connect", "urllib.Request"}

def hook(event, args):
    if event in NETWORK:
        os.write(2, f"NETWORK ATTEMPT: {event} {args!r}\\n".encode())
        os._exit(97)

sys.addaudithook(hook)
if sys.argv[1] == "--control":
    import socket
    socket.getaddrinfo("tuf-repo-cdn.sigstore.dev", 443)
sys.argv = ["secinstall", *sys.argv[1:]]
runpy.run_module("secinstall", run_name="__main__", alter_sys=True)
"""


def test_verify_makes_no_network_attempt(tmp_path: Path) -> None:
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS, encoding="utf-8")
    env = subprocess_env(tmp_path)
    control = subprocess.run([sys.executable, str(harness), "--control"], capture_output=True,
                             text=True, env=env, check=False)
    assert control.returncode == 97
    assert "NETWORK ATTEMPT: socket.getaddrinfo" in control.stderr

    for args, expected in ALL_REAL_FILES:
        result = subprocess.run([sys.executable, str(harness), "verify", *args],
                                capture_output=True, text=True, env=env, check=False,
                                timeout=120)
        assert "NETWORK ATTEMPT" not in result.stderr
        assert result.returncode == 0, result.stderr
        for text in expected:
            assert text in result.stdout
