"""The content-addressed cache: a warm pinned install needs no index at all, and what it
takes from the cache is checked again (hash, provenance) before it is used."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
import zipfile
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


def _pinned_install(index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
                    wheel: Path, *args: str) -> int:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(pin(wheel) + "\n", encoding="utf-8")
    return install(index, ca_file, venv, tmp_path, "-r", str(reqs), *args)


def test_warm_pinned_install_asks_no_index(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wheel = make_wheel("warm", "1.0")
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    assert index.requests, "the cold install asked the index"

    before = len(index.requests)
    other = _venv_like(venv, tmp_path, "other")
    assert _pinned_install(index, ca_file, other, tmp_path, wheel, "-v") == 0
    assert index.requests[before:] == []
    assert "1 from cache" in capsys.readouterr().out
    assert run_in(other, "import warm; print(warm.__version__)").stdout.strip() == "1.0"


def test_tampered_cache_entry_is_not_used(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    """A cached file is hashed again before use: a changed one is fetched anew."""
    wheel = make_wheel("warm", "1.0")
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    (cached,) = (tmp_path / "cache").rglob(wheel.name)
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")

    before = len(index.requests)
    other = _venv_like(venv, tmp_path, "other")
    assert _pinned_install(index, ca_file, other, tmp_path, wheel) == 0
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
    # Linked from a tree that lived for this run only: no cache to protect, usual modes.
    installed = venv.purelib / "warm" / "__init__.py"
    assert installed.stat().st_mode & 0o200
    assert installed.stat().st_nlink == 1


# --- the unpacked tree: installed by linking, checked before every use ---------------------

MODULE = "linked/__init__.py"
SCRIPT = "linked-1.0.data/scripts/linked-run"


def _linked_wheel(make_wheel: WheelMaker) -> Path:
    return make_wheel("linked", "1.0", files={
        MODULE: '__version__ = "1.0"\n',
        "linked/data.txt": "some data\n",
        SCRIPT: "#!python\nprint('run')\n",
    })


def _tree(tmp_path: Path) -> Path:
    (tree,) = (tmp_path / "cache").rglob("unpacked")
    return tree


def _pyc(venv: Venv) -> Path:
    (found,) = (venv.purelib / "linked" / "__pycache__").glob("__init__.*.pyc")
    return found


def _imports(venv: Venv) -> str:
    env_check = ("import linked, importlib.util; "
                 "print(linked.__version__, importlib.util.cache_from_source(linked.__file__))")
    return run_in(venv, env_check).stdout.split()[0]


def test_warm_install_links_the_verified_tree(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    other = _venv_like(venv, tmp_path, "other")
    assert _pinned_install(index, ca_file, other, tmp_path, wheel) == 0

    tree = _tree(tmp_path)
    cached = tree / MODULE
    for env in (venv, other):
        installed = env.purelib / MODULE
        assert installed.stat().st_ino == cached.stat().st_ino
        assert _imports(env) == "1.0"
    # The bytecode, compiled again by each install, is linked from the tree too; the first
    # environment keeps the file it was given.
    cached_pyc = tree / "linked" / "__pycache__" / _pyc(other).name
    assert _pyc(other).stat().st_ino == cached_pyc.stat().st_ino
    assert _pyc(venv).stat().st_ino != cached_pyc.stat().st_ino
    assert _pyc(venv).read_bytes() == cached_pyc.read_bytes()
    assert cached.stat().st_mode & 0o777 == 0o444  # an edit through a link can't go unseen
    assert cached.stat().st_nlink == 3
    # A script whose `#!python` line is rewritten for the environment is written, not linked.
    script = other.bin / "linked-run"
    assert script.read_text(encoding="utf-8").startswith(f"#!{other.python}")
    assert script.stat().st_nlink == 1
    assert (tree / SCRIPT).read_text(encoding="utf-8").startswith("#!python")
    # RECORD lists the linked files with their true hashes, and the bytecode.
    record = (other.purelib / "linked-1.0.dist-info" / "RECORD").read_text(encoding="utf-8")
    assert f"{MODULE},sha256=" in record
    assert f"linked/__pycache__/{_pyc(other).name},," in record


def test_link_mode_copy_copies_and_keeps_the_bytecode_valid(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel, "--link-mode", "copy") == 0

    installed = venv.purelib / MODULE
    cached = _tree(tmp_path) / MODULE
    assert installed.stat().st_ino != cached.stat().st_ino
    assert installed.stat().st_mode & 0o200, "a copy is an ordinary, writable file"
    # The bytecode's header names the source's modification time and size: the copy keeps
    # both, so the interpreter uses the cached bytecode instead of compiling again.
    header = _pyc(venv).read_bytes()[8:16]
    source = installed.stat()
    assert int.from_bytes(header[:4], "little") == int(source.st_mtime) & 0xFFFFFFFF
    assert int.from_bytes(header[4:], "little") == source.st_size
    assert _imports(venv) == "1.0"


def test_changed_tree_file_is_found_and_extracted_again(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    """An edit through an installed link changes the cached tree: the next install finds
    it (every file is hashed again before use) and extracts the wheel again."""
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    edited = venv.purelib / MODULE
    edited.chmod(0o644)
    edited.write_text('__version__ = "evil"\n', encoding="utf-8")
    assert (_tree(tmp_path) / MODULE).read_text(encoding="utf-8") == '__version__ = "evil"\n'

    before = len(index.requests)
    other = _venv_like(venv, tmp_path, "other")
    assert _pinned_install(index, ca_file, other, tmp_path, wheel) == 0
    assert index.requests[before:] == []  # from the cached wheel, checked by its sha256
    assert (other.purelib / MODULE).read_text(encoding="utf-8") == '__version__ = "1.0"\n'
    assert (_tree(tmp_path) / MODULE).read_text(encoding="utf-8") == '__version__ = "1.0"\n'
    assert _imports(other) == "1.0"


def _poison_cached_bytecode(tmp_path: Path) -> tuple[bytes, bytes]:
    """Change the bytecode in the cache as whoever can write there could: the file and the
    record of its hash alike. Returns (the good bytes, the poisoned ones)."""
    (pyc,) = (_tree(tmp_path) / "linked" / "__pycache__").glob("*.pyc")
    good = pyc.read_bytes()
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])  # same size, other code
    pyc.chmod(0o644)
    pyc.write_bytes(bad)
    (record,) = (tmp_path / "cache").rglob("pyc-*.json")
    kept = json.loads(record.read_text(encoding="utf-8"))
    digest = base64.urlsafe_b64encode(hashlib.sha256(bad).digest()).decode().rstrip("=")
    kept = {member: [path, f"sha256={digest}"] for member, (path, _hash) in kept.items()}
    record.write_text(json.dumps(kept), encoding="utf-8")
    return good, bad


def test_bytecode_is_compiled_again_at_every_install(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    """Bytecode in the cache could have been put there by anyone who can write to it: it is
    compiled again from the verified sources, unless --trust-cached-bytecode says not to."""
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    good, _bad = _poison_cached_bytecode(tmp_path)

    other = _venv_like(venv, tmp_path, "other")
    assert _pinned_install(index, ca_file, other, tmp_path, wheel) == 0
    assert _pyc(other).read_bytes() == good
    assert _imports(other) == "1.0"


def test_trust_cached_bytecode_is_a_reported_weakening(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    _good, bad = _poison_cached_bytecode(tmp_path)
    capsys.readouterr()

    other = _venv_like(venv, tmp_path, "other")
    assert _pinned_install(index, ca_file, other, tmp_path, wheel,
                           "--trust-cached-bytecode") == 0
    assert _pyc(other).read_bytes() == bad  # what the flag trusts: the cache, as it is
    err = capsys.readouterr().err
    assert "verification weakened: bytecode taken from the cache" in err
    (fragment,) = (other.path / ".secinstall" / "sbom").glob("*.cdx.json")
    props = json.loads(fragment.read_text(encoding="utf-8"))["metadata"]["properties"]
    assert {"name": "secinstall:weakened", "value": "bytecode taken from the cache, not "
            "compiled from the verified sources (--trust-cached-bytecode)"} in props


def test_lying_record_leaves_no_tree_in_the_cache(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = _linked_wheel(make_wheel)
    record = zipfile.ZipFile(good).read("linked-1.0.dist-info/RECORD").decode()
    lying = make_wheel("linked", "1.0", files={
        MODULE: '__version__ = "2.0"\n', "linked/data.txt": "some data\n",
        SCRIPT: "#!python\nprint('run')\n"},
        extra_dist_info={"RECORD": record})
    index.add(lying)

    assert _pinned_install(index, ca_file, venv, tmp_path, lying) == 1
    assert f"RECORD: hash / size of {MODULE} didn't match RECORD" in capsys.readouterr().err
    assert not list((tmp_path / "cache").rglob("unpacked"))
    assert not list((tmp_path / "cache").rglob(".unpacking-*"))
    assert not (venv.purelib / "linked").exists()


def test_cache_on_another_filesystem_is_copied_from(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's temporary directory")
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    cache = Path(tempfile.mkdtemp(dir=shm))
    try:
        reqs = tmp_path / "requirements.txt"
        reqs.write_text(pin(wheel) + "\n", encoding="utf-8")
        assert main(["install", "--cert", str(ca_file), "--index-url", index.url,
                     "--cache-dir", str(cache), "--python", str(venv.python),
                     "-r", str(reqs)]) == 0
        assert (venv.purelib / MODULE).stat().st_nlink == 1
        assert _imports(venv) == "1.0"
    finally:
        shutil.rmtree(cache)


def test_bytecode_in_worker_processes_and_a_file_that_does_not_compile(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    """Enough files for worker processes; one of them isn't valid Python 3: it is installed
    all the same (as pip does), without bytecode, and the others have theirs."""
    from secinstall.bytecode import PYC_PER_WORKER

    files: dict[str, str | bytes] = {f"many/m{i}.py": f"X = {i}\n"
                                     for i in range(PYC_PER_WORKER + 10)}
    files["many/__init__.py"] = ""
    files["many/py2.py"] = "print 'hello'\n"
    wheel = make_wheel("many", "1.0", files=files)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    other = _venv_like(venv, tmp_path, "other")
    assert _pinned_install(index, ca_file, other, tmp_path, wheel) == 0

    for env in (venv, other):
        package = env.purelib / "many"
        compiled = {p.name.split(".")[0] for p in (package / "__pycache__").glob("*.pyc")}
        assert compiled == {p.stem for p in package.glob("*.py")} - {"py2"}
        assert (package / "py2.py").read_text(encoding="utf-8") == "print 'hello'\n"
        record = (env.purelib / "many-1.0.dist-info" / "RECORD").read_text(encoding="utf-8")
        assert "many/__pycache__/py2." not in record
        assert f"many/__pycache__/m{PYC_PER_WORKER}." in record
        assert run_in(env, f"import many.m{PYC_PER_WORKER} as m; print(m.X)").stdout.strip() \
            == str(PYC_PER_WORKER)


def test_no_compile_installs_no_cached_bytecode(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0  # compiles in the cache
    other = _venv_like(venv, tmp_path, "other")
    assert _pinned_install(index, ca_file, other, tmp_path, wheel, "--no-compile") == 0
    assert not list(other.purelib.rglob("*.pyc"))
    record = (other.purelib / "linked-1.0.dist-info" / "RECORD").read_text(encoding="utf-8")
    assert ".pyc" not in record


def test_a_file_name_with_a_newline_is_refused_and_compiles_nothing(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """RECORD can't list such a name line by line, so the wheel is refused; and were it
    not, paths go to the compiling processes NUL-separated, so the name could never turn
    into a second path (here `x.py` in the current directory)."""
    from secinstall.bytecode import PYC_PER_WORKER

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "x.py").write_text("X = 1\n", encoding="utf-8")
    monkeypatch.chdir(cwd)
    files: dict[str, str | bytes] = {f"nl/m{i}.py": "" for i in range(PYC_PER_WORKER)}
    files["nl/evil\nx.py"] = "Y = 2\n"
    wheel = make_wheel("nl", "1.0", files=files)
    index.add(wheel)

    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 1
    assert f"error: {wheel.name} is refused: RECORD" in capsys.readouterr().err
    assert not (cwd / "__pycache__").exists()
    assert not (venv.purelib / "nl").exists()
