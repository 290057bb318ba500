"""Broken or hostile servers: each is a bounded retry or a clear error, and a file is never
used unless the whole of it, as finally downloaded, matched its hash."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from secinstall import client as client_module
from secinstall import fetch as fetch_module
from tests.conftest import Venv, run_in
from tests.support import faults
from tests.support.cache import cached_files
from tests.support.cli import Secinstall, dist_infos, sha256
from tests.support.index import JSON_TYPE, Exchange, LocalIndex, Misbehaviour
from tests.support.interrupt import interrupt_when_requested
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker

PROJECT_PAGE = "/simple/lib/"


@pytest.fixture
def wheel(index: LocalIndex, make_wheel: WheelMaker) -> Path:
    """lib 1.0, large enough (~300 kB, incompressible) that a cut in the middle is a cut."""
    payload = bytes((i * 7919 + i // 251) % 256 for i in range(300_000))
    built = make_wheel("lib", "1.0", files={"lib/__init__.py": '__version__ = "1.0"\n',
                                             "lib/blob.bin": payload})
    index.add(built)
    return built


def _requests_for(index: LocalIndex, path: str) -> int:
    return index.requests.count(path)


def _assert_installed(venv: Venv, wheel: Path, cache: Path) -> None:
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]
    imported = run_in(venv, "import lib; print(lib.__version__)")
    assert imported.stdout == "1.0\n", imported.stderr
    # What the cache kept (and what was installed from) is the whole file, byte for byte,
    # under its sha256: a retried download started again from scratch.
    files = cached_files(cache)
    assert [p.name for p in files] == [wheel.name]
    assert files[0].read_bytes() == wheel.read_bytes()
    assert files[0].parent.name == sha256(wheel)


def _assert_refused(venv: Venv, before: dict[str, tuple[str, int]], cache: Path) -> None:
    assert snapshot(venv.path) == before
    assert not list(cache.rglob(".part-*")), "a broken download was left in the cache"


# -- transient faults: retried, then installed ---------------------------------------------


TRANSIENT: dict[str, tuple[Misbehaviour, int]] = {
    "truncated-body": (faults.truncated(0.5), 1),
    "content-length-too-long": (faults.wrong_length(+1000), 1),
    "reset-mid-body": (faults.reset(0.5), 1),
    "reset-before-body": (faults.reset(0.0), 1),
    "503-twice": (faults.status(503), 2),
    "502-three-times": (faults.status(502), 3),
    "corrupt-tls-record": (faults.corrupt_record(0.5), 1),
    "stall-mid-body": (faults.stall(keep=0.5), 1),
    "stall-before-headers": (faults.stall(headers=False), 1),
}


@pytest.mark.parametrize("where", ["file", "project-page"])
@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_transient_fault_is_retried_and_the_file_verified_whole(
    secinstall: Secinstall, venv: Venv, wheel: Path, fault: str, where: str
) -> None:
    action, times = TRANSIENT[fault]
    path = f"/files/{wheel.name}" if where == "file" else PROJECT_PAGE
    secinstall.index.misbehave(path, action, times=times)
    started = time.monotonic()

    run = secinstall("--python", venv.path, "--timeout", "1", "--retries", "3",
                     *secinstall.pinned(wheel))

    assert run.code == 0, run.err
    assert _requests_for(secinstall.index, path) == times + 1
    assert time.monotonic() - started < 20
    _assert_installed(venv, wheel, secinstall.tmp / "cache")


def test_retry_after_is_honoured(secinstall: Secinstall, venv: Venv, wheel: Path) -> None:
    path = f"/files/{wheel.name}"
    secinstall.index.misbehave(path, faults.status(429, {"Retry-After": "1"}))

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))

    assert run.code == 0, run.err
    times = [t for t, p in secinstall.index.request_log if p == path]
    assert len(times) == 2
    # The client's own first back-off is 0.25 s: only Retry-After makes it wait a second.
    assert times[1] - times[0] >= 0.95
    _assert_installed(venv, wheel, secinstall.tmp / "cache")


# -- permanent faults: a clear error in bounded time, nothing installed ----------------------


def test_5xx_forever_gives_up_after_the_retries(
    secinstall: Secinstall, venv: Venv, wheel: Path
) -> None:
    path = f"/files/{wheel.name}"
    secinstall.index.fail_next(path, 503, times=100)
    before = snapshot(venv.path)
    started = time.monotonic()

    run = secinstall("--python", venv.path, "--retries", "2", *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert "giving up on" in run.err and wheel.name in run.err
    assert "after 3 attempts: HTTP 503" in run.err
    assert _requests_for(secinstall.index, path) == 3
    assert time.monotonic() - started < 10
    _assert_refused(venv, before, secinstall.tmp / "cache")


@pytest.mark.parametrize("status", [403, 503])
def test_a_project_page_pips_resolver_cant_read_is_named(
    secinstall: Secinstall, venv: Venv, wheel: Path, status: int
) -> None:
    # pip says only that it found no version (as for a project without wheels); why is
    # in its log: the error names the page and the reason, not wheels-only.
    secinstall.index.fail_next(PROJECT_PAGE, status, times=100)
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--retries", "0", "lib")

    assert run.code == 1, run.out + run.err
    page = f"{secinstall.index.url}lib/"
    first = run.err.splitlines()[0]
    assert first.startswith(f"error: pip's resolver could not read {page} ("), run.err
    assert str(status) in first  # "403 Client Error", "too many 503 error responses"
    assert "so it found no version of lib" in first
    assert "wheels only" not in run.err
    assert snapshot(venv.path) == before


def test_an_index_pips_resolver_cant_reach_is_named(
    secinstall: Secinstall, venv: Venv, wheel: Path
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--retries", "0", "--cert", secinstall.ca_file,
                     "--index-url", f"https://127.0.0.1:{port}/simple/", "lib", local=False)

    assert run.code == 1
    assert (f"error: pip's resolver could not read https://127.0.0.1:{port}/simple/lib/ "
            "(connection error: ") in run.err, run.err
    assert "wheels only" not in run.err
    assert snapshot(venv.path) == before


@pytest.mark.parametrize("headers", [True, False], ids=["mid-body", "before-headers"])
def test_stall_forever_times_out(
    secinstall: Secinstall, venv: Venv, wheel: Path, headers: bool
) -> None:
    path = f"/files/{wheel.name}"
    secinstall.index.misbehave(path, faults.stall(keep=0.3, headers=headers), times=100)
    before = snapshot(venv.path)
    started = time.monotonic()

    run = secinstall("--python", venv.path, "--timeout", "1", "--retries", "1",
                     *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert f"giving up on {secinstall.index.base_url}/files/{wheel.name} after 2 attempts" \
        in run.err
    assert "timed out" in run.err
    assert _requests_for(secinstall.index, path) == 2
    assert time.monotonic() - started < 10
    _assert_refused(venv, before, secinstall.tmp / "cache")


BROKEN_FOREVER = {"truncated": faults.truncated(0.5), "reset": faults.reset(0.5),
                  "content-length-too-long": faults.wrong_length(+1000),
                  "corrupt-tls-record": faults.corrupt_record(0.5),
                  "gzip-garbage": faults.body(b"not gzip at all" * 100,
                                              headers={"Content-Encoding": "gzip"})}


@pytest.mark.parametrize("fault", list(BROKEN_FOREVER))
def test_broken_transfer_forever_gives_up(
    secinstall: Secinstall, venv: Venv, wheel: Path, fault: str
) -> None:
    action = BROKEN_FOREVER[fault]
    path = f"/files/{wheel.name}"
    secinstall.index.misbehave(path, action, times=100)
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--retries", "2", *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    # A reset can discard what was sent before it: then even the headers never arrive.
    assert "after 3 attempts: transfer broken" in run.err or (
        fault == "reset" and "after 3 attempts: connection failed" in run.err)
    assert _requests_for(secinstall.index, path) == 3
    _assert_refused(venv, before, secinstall.tmp / "cache")


def test_a_trickling_download_is_retried_then_installed(
    secinstall: Secinstall, venv: Venv, wheel: Path
) -> None:
    """Every read gets a few bytes within the timeout, at 500 bytes a second (this small
    wheel would take 7 s, a real one hours): under 1 kB a second over a whole --timeout,
    the transfer counts as stalled, and is tried again."""
    path = f"/files/{wheel.name}"
    secinstall.index.misbehave(path, faults.trickle(), times=1)
    started = time.monotonic()

    run = secinstall("--python", venv.path, "--timeout", "1", "--retries", "3",
                     *secinstall.pinned(wheel))

    assert run.code == 0, run.err
    assert _requests_for(secinstall.index, path) == 2
    assert time.monotonic() - started < 20
    _assert_installed(venv, wheel, secinstall.tmp / "cache")


def test_a_download_that_only_trickles_gives_up(
    secinstall: Secinstall, venv: Venv, wheel: Path
) -> None:
    path = f"/files/{wheel.name}"
    secinstall.index.misbehave(path, faults.trickle(), times=100)
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--timeout", "1", "--retries", "2",
                     *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert "after 3 attempts: transfer broken: stalled:" in run.err
    assert "under 1024 bytes a second" in run.err
    assert _requests_for(secinstall.index, path) == 3
    _assert_refused(venv, before, secinstall.tmp / "cache")


def _install_interrupted(secinstall: Secinstall, venv: Venv, wheel: Path, cache: Path,
                         path: str, *args: str, times: int = 1) -> tuple[int, str]:
    """`python -m secinstall install` of the pinned `wheel` (--timeout 120) in a process of
    its own, Ctrl-C'd a second after the index was asked for `path` `times` times, and
    bound to end within 20 s of it; (exit code, stderr)."""
    import secinstall as package

    return interrupt_when_requested(
        [sys.executable, "-m", "secinstall", "install", "--python", str(venv.path),
         *map(str, secinstall.pinned(wheel)), "--index-url", secinstall.index.url,
         "--cert", str(secinstall.ca_file), "--cache-dir", str(cache), "--timeout", "120",
         *args],
        secinstall.index, path,
        env={**os.environ, "PYTHONPATH": str(Path(package.__file__).parents[1])},
        delay=1, within=20, times=times)


def test_ctrl_c_during_a_stalled_download_stops_it_at_once_without_retrying(
    secinstall: Secinstall, venv: Venv, wheel: Path, tmp_path: Path
) -> None:
    """Ctrl-C used to be collected and raised only once every download had finished,
    retries included (six stalled attempts), and then to wait for a read blocked on the
    silent server until --timeout (here 120 s). Now the downloads under way stop at once
    and none is retried; the install ends 'interrupted', changing nothing."""
    path = f"/files/{wheel.name}"
    secinstall.index.misbehave(path, faults.stall(300, keep=0.5), times=100)
    before = snapshot(venv.path)

    code, err = _install_interrupted(secinstall, venv, wheel, tmp_path / "cache", path)

    assert code == 130, err
    assert "error: interrupted" in err and "Traceback" not in err
    assert _requests_for(secinstall.index, path) == 1
    _assert_refused(venv, before, tmp_path / "cache")


def _json_api_stalled(exchange: Exchange) -> None:
    """A JSON API answer that stalls halfway (the local index has no JSON API: its 404 has
    no body worth reading)."""
    body = json.dumps({"info": {"name": "lib", "version": "1.0"},
                       "vulnerabilities": []}).encode()
    faults.stall(300, keep=0.5)(dataclasses.replace(
        exchange, status=200, body=body,
        headers={"Content-Type": "application/json", "Content-Length": str(len(body))}))


@pytest.mark.parametrize(("path", "asked", "policy", "stall"), [
    pytest.param(PROJECT_PAGE, 1, [], faults.stall(300, keep=0.5), id="index-page"),
    pytest.param(PROJECT_PAGE, 2, ["indexes.lib={url}"], faults.stall(300, keep=0.5),
                 id="policy-index-pinning"),
    pytest.param("/pypi/lib/1.0/json", 1,
                 ["vulnerabilities=refuse", "vulnerability-indexes=['{url}']"],
                 _json_api_stalled, id="policy-vulnerabilities"),
])
def test_ctrl_c_during_a_stalled_look_up_stops_it_at_once_without_retrying(
    secinstall: Secinstall, venv: Venv, wheel: Path, tmp_path: Path, path: str, asked: int,
    policy: list[str], stall: Misbehaviour
) -> None:
    """The look-ups made in parallel before any download (the project pages of a pinned
    install; the usage policy's: the index a project must come from, its known
    vulnerabilities) used to wait, on Ctrl-C, for every request to end: here a read
    blocked on the silent server until --timeout (120 s), then its retries. Now they stop
    at once as downloads do: none is retried, nothing is downloaded or changed."""
    for _ in range(asked - 1):  # the page resolving the pin: the policy's is the next one
        secinstall.index.misbehave(path, faults.as_usual())
    secinstall.index.misbehave(path, stall, times=100)
    before = snapshot(venv.path)
    settings = [f"--policy-set={s.format(url=secinstall.index.url)}" for s in policy]

    code, err = _install_interrupted(secinstall, venv, wheel, tmp_path / "cache", path,
                                     *settings, times=asked)

    assert code == 130, err
    assert "error: interrupted" in err and "Traceback" not in err
    assert _requests_for(secinstall.index, path) == asked
    assert f"/files/{wheel.name}" not in secinstall.index.requests
    _assert_refused(venv, before, tmp_path / "cache")


def test_content_length_too_short_is_a_hash_mismatch(
    secinstall: Secinstall, venv: Venv, wheel: Path
) -> None:
    # The client believes the length and reads a prefix of the file: only the hash can
    # tell, and it does.
    secinstall.index.misbehave(f"/files/{wheel.name}", faults.wrong_length(-1000), times=100)
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert f"{wheel.name} does not match the hash" in run.err
    assert sha256(wheel) in run.err
    _assert_refused(venv, before, secinstall.tmp / "cache")


# -- redirects -----------------------------------------------------------------------------


def _elsewhere(index: LocalIndex, how: str, path: str) -> str:
    port = index.base_url.rsplit(":", 1)[1]
    # The test certificate is valid for localhost too: following would work, so only the
    # redirect rule refuses it.
    return {"other-host": f"https://localhost:{port}{path}",
            "https-to-http": f"http://127.0.0.1:{port}{path}"}[how]


@pytest.mark.parametrize("where", ["file", "project-page"])
@pytest.mark.parametrize("how", ["other-host", "https-to-http"])
def test_redirect_changing_host_or_scheme_is_refused(
    secinstall: Secinstall, venv: Venv, wheel: Path, how: str, where: str
) -> None:
    path = f"/files/{wheel.name}" if where == "file" else PROJECT_PAGE
    secinstall.index.misbehave(path, faults.redirect(_elsewhere(secinstall.index, how, path)))
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert "refusing redirect from" in run.err
    assert "may not change the scheme or host" in run.err
    assert _requests_for(secinstall.index, path) == 1  # the redirect was not followed
    _assert_refused(venv, before, secinstall.tmp / "cache")


def test_redirect_within_the_host_is_followed(
    secinstall: Secinstall, venv: Venv, wheel: Path
) -> None:
    secinstall.index.misbehave("/files/moved.whl", faults.redirect(f"/files/{wheel.name}"))
    secinstall.index.misbehave(f"/files/{wheel.name}",
                               faults.redirect("/files/moved.whl", code=301))

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))

    assert run.code == 0, run.err
    _assert_installed(venv, wheel, secinstall.tmp / "cache")


# -- answers that are not what was asked for -----------------------------------------------


LOGIN_PAGE = b"<!DOCTYPE html><html><body><form action='/login'>Sign in</form></body></html>"


def test_html_where_json_was_promised_is_a_clear_error(
    secinstall: Secinstall, venv: Venv, wheel: Path
) -> None:
    secinstall.index.misbehave(PROJECT_PAGE, faults.body(LOGIN_PAGE, JSON_TYPE))
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert f"{secinstall.index.url}lib/ is not a valid PEP 691 JSON project page" in run.err
    _assert_refused(venv, before, secinstall.tmp / "cache")


def test_html_page_without_links_finds_nothing(
    secinstall: Secinstall, venv: Venv, wheel: Path
) -> None:
    secinstall.index.misbehave(PROJECT_PAGE, faults.body(LOGIN_PAGE, "text/html"))
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert "lib==1.0" in run.err and "was not found on the configured indexes" in run.err
    _assert_refused(venv, before, secinstall.tmp / "cache")


@pytest.mark.parametrize("length", [True, False], ids=["announced", "unannounced"])
def test_enormous_project_page_is_refused(
    secinstall: Secinstall, venv: Venv, wheel: Path, monkeypatch: pytest.MonkeyPatch,
    length: bool,
) -> None:
    monkeypatch.setattr(client_module, "MAX_PAGE_BYTES", 64 * 1024)
    page = b'{"meta": {"api-version": "1.0"}, "files": [], "padding": "' + b"x" * 1024**2 + b'"}'
    secinstall.index.misbehave(PROJECT_PAGE, faults.body(page, JSON_TYPE, length=length))
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert f"{secinstall.index.url}lib/ is larger than the limit of 65536 bytes" in run.err
    _assert_refused(venv, before, secinstall.tmp / "cache")


ENORMOUS = {
    "announced": faults.body(b"\0" * 8 * 1024**2),
    "unannounced": faults.body(b"\0" * 8 * 1024**2, length=False),
    # 8 kB on the wire, 8 MB once decoded: the limit is on what is decoded.
    "gzip-bomb": faults.body(gzip.compress(b"\0" * 8 * 1024**2),
                             headers={"Content-Encoding": "gzip"}),
}


@pytest.mark.parametrize("how", list(ENORMOUS))
def test_enormous_download_is_refused(
    secinstall: Secinstall, venv: Venv, wheel: Path, monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    monkeypatch.setattr(fetch_module, "MAX_FILE_BYTES", 1024**2)
    path = f"/files/{wheel.name}"
    secinstall.index.misbehave(path, ENORMOUS[how])
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert f"{wheel.name} is larger than the limit of 1048576 bytes" in run.err
    assert _requests_for(secinstall.index, path) == 1  # not retried: it would not shrink
    _assert_refused(venv, before, secinstall.tmp / "cache")
