"""The content-addressed cache: a warm pinned install needs no index at all, and what it
takes from the cache is checked again (hash, provenance) before it is used."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import marshal
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

import secinstall
from secinstall.bytecode import PYC_PER_WORKER
from secinstall.cache import LISTING
from secinstall.cli import main
from tests.conftest import Venv, run_in
from tests.support.cli import install, pin, sha256
from tests.support.files import denied_prefix
from tests.support.index import LocalIndex
from tests.support.pep740 import PROJECT, WHEEL, is_installed, serve_real_wheel, wheel_pin
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker


def _venv_like(venv: Venv, tmp_path: Path, name: str) -> Venv:
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


def test_warm_install_loads_no_network_stack(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    """Served from the cache, an install sets up neither TLS nor urllib3 (their import and
    the CA bundle were a tenth of a warm install's time)."""
    wheel = make_wheel("warm", "1.0")
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    other = _venv_like(venv, tmp_path, "other")
    args = ["install", "--cert", str(ca_file), "--index-url", index.url,
            "--cache-dir", str(tmp_path / "cache"), "--python", str(other.python),
            "-r", str(tmp_path / "requirements.txt")]
    code = ("import sys\n"
            "from secinstall.cli import main\n"
            f"assert main({args!r}) == 0\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ssl', 'urllib3'}))")
    src = str(Path(secinstall.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "PIP_CONFIG_FILE": os.devnull}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
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


@pytest.mark.parametrize("instead", ["file", "symlink"])
def test_something_else_where_the_tree_goes_is_replaced(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    instead: str,
) -> None:
    """A file, or a link to a directory elsewhere, where the tree goes is removed (the link,
    never what it points to) and the tree extracted in its place, leaving nothing else."""
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    tree = _tree(tmp_path)
    shutil.rmtree(tree)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "kept.txt").write_text("kept\n", encoding="utf-8")
    if instead == "file":
        tree.write_text("not a tree\n", encoding="utf-8")
    else:
        tree.symlink_to(elsewhere, target_is_directory=True)

    other = _venv_like(venv, tmp_path, "other")
    assert _pinned_install(index, ca_file, other, tmp_path, wheel) == 0
    assert not tree.is_symlink()
    assert (tree / MODULE).read_text(encoding="utf-8") == '__version__ = "1.0"\n'
    assert not _leftovers(tmp_path / "cache")
    assert (elsewhere / "kept.txt").read_text(encoding="utf-8") == "kept\n"
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


# --- a cache that can't be written: compiled elsewhere, never into the cache -------------

def _read_only_mount_works(tmp_path: Path) -> bool:
    """Whether `_install_read_only` can run here: a private mount namespace and a read-only
    bind mount need CAP_SYS_ADMIN (root, here and in CI), and root ignores file modes, so
    nothing less makes a cache really unwritable."""
    probe = tmp_path / "mount-probe"
    probe.mkdir()
    try:
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", _READ_ONLY + ' && ! touch "$1/x" 2>/dev/null',
             "sh", str(probe)], capture_output=True, check=False)
    except OSError:  # no unshare
        return False
    return done.returncode == 0 and not (probe / "x").exists()


#: Mounts "$1" read-only on itself, in the mount namespace of `unshare -m` (private to it:
#: unshare makes the mounts private, so nothing outside sees this one).
_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"'


def _install_read_only(cache: Path, venv: Venv, ca_file: Path, index: LocalIndex,
                       tmp_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`secinstall install` in a process that sees `cache` mounted read-only, its temporary
    files in `tmp_dir`."""
    return _install_in_process(_read_only(cache), cache, venv, ca_file, index, tmp_dir, *args)


def _read_only(cache: Path) -> list[str]:
    """The command to start a process with that sees `cache` mounted read-only."""
    return ["unshare", "-m", "sh", "-c", _READ_ONLY + ' && shift && exec "$@"', "sh", str(cache)]


def _install_in_process(prefix: list[str], cache: Path, venv: Venv, ca_file: Path,
                        index: LocalIndex, tmp_dir: Path,
                        *args: str) -> subprocess.CompletedProcess[str]:
    """`secinstall install` in a process of its own, started by `prefix` (the command that
    sets up what it may write), its temporary files in `tmp_dir`."""
    env = {**os.environ, "TMPDIR": str(tmp_dir),
           "PYTHONPATH": str(Path(secinstall.__file__).parents[1])}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "secinstall", "install", "--cert", str(ca_file),
         "--index-url", index.url, "--cache-dir", str(cache), "--python", str(venv.python),
         *args], capture_output=True, text=True, env=env, check=False)


@pytest.mark.parametrize(("modules", "link_mode"), [
    (3, "hardlink"),  # compiled in this process
    (PYC_PER_WORKER, "hardlink"),  # in worker processes
    (3, "copy"),
])
def test_read_only_cache_still_gives_bytecode_compiled_now(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    modules: int, link_mode: str,
) -> None:
    """A cache that can't be written (a read-only mount, another user's, baked into a CI
    image): every compilable file still gets its bytecode, compiled by this install from
    the verified sources, not taken from the cache, and the cache isn't changed."""
    if not _read_only_mount_works(tmp_path):
        pytest.skip("needs `unshare -m` and bind mounts (root with CAP_SYS_ADMIN) to make "
                    "a cache really read-only")
    files: dict[str, str | bytes] = {f"ro/m{i}.py": f"X = {i}\n" for i in range(modules)}
    files |= {"ro/__init__.py": '__version__ = "1.0"\n', "ro/sub/__init__.py": "",
              "ro/sub/deep.py": "Y = 'deep'\n", "ro-1.0.data/purelib/rotop.py": "Z = 3\n",
              "ro/py2.py": "print 'hello'\n", "ro/data.txt": "some data\n"}
    wheel = make_wheel("ro", "1.0", files=files)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    cache = tmp_path / "cache"
    tree = _tree(tmp_path)
    tag = sys.implementation.cache_tag
    # What was left in the cache by whoever filled it: no bytecode for this interpreter
    # (another Python filled it, or --no-compile), but for one file, bytecode that isn't
    # what its source compiles to.
    for pycache in tree.rglob("__pycache__"):
        shutil.rmtree(pycache)
    (tree / "ro" / "__pycache__").mkdir()
    (tree / "ro" / "__pycache__" / f"m0.{tag}.pyc").write_bytes(
        (venv.purelib / "ro" / "__pycache__" / f"m1.{tag}.pyc").read_bytes())
    before = snapshot(cache)

    other = _venv_like(venv, tmp_path, "other")
    reqs = tmp_path / "requirements.txt"
    (tmp_path / "tmp").mkdir()
    done = _install_read_only(cache, other, ca_file, index, tmp_path / "tmp",
                              "-r", str(reqs), "--link-mode", link_mode)
    assert done.returncode == 0, done.stderr
    assert snapshot(cache) == before, "the cache was changed"
    assert not list((tmp_path / "tmp").iterdir()), "temporary files were left"

    record = (other.purelib / "ro-1.0.dist-info" / "RECORD").read_text(encoding="utf-8")
    sources = [p for p in other.purelib.rglob("*.py") if p.name != "py2.py"]
    assert len(sources) == modules + 4
    expected_dir = tmp_path / "expected"
    for source in sources:
        member = source.relative_to(other.purelib).as_posix()
        pyc = Path(importlib.util.cache_from_source(str(source)))
        assert pyc.is_file(), f"no bytecode for {member}"
        assert f"{pyc.relative_to(other.purelib).as_posix()},," in record
        # Valid for the installed source: the header names its modification time and size.
        header, st = pyc.read_bytes()[:16], source.stat()
        assert header[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(header[4:8], "little") == 0  # timestamp-based
        assert int.from_bytes(header[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
        assert int.from_bytes(header[12:16], "little") == st.st_size
        # What the verified source compiles to, as with a writable cache.
        cached_source = tree / (member if member != "rotop.py"
                                else "ro-1.0.data/purelib/rotop.py")
        expected = expected_dir / f"{member}c"
        py_compile.compile(str(cached_source), str(expected), doraise=True)
        assert _code(pyc) == _code(expected), f"wrong bytecode for {member}"
    assert not list((other.purelib / "ro" / "__pycache__").glob("py2.*"))
    assert "ro/__pycache__/py2." not in record
    check = "import ro.m0, ro.sub.deep, rotop; print(ro.m0.X, ro.sub.deep.Y, rotop.Z)"
    assert run_in(other, check).stdout.split() == ["0", "deep", "3"]


def _code(pyc: Path) -> tuple[bytes, object, str]:
    """The header and the code of a .pyc (compared as code: marshal's bytes may differ
    for equal code), with the file name the code names."""
    data = pyc.read_bytes()
    code = marshal.loads(data[16:])  # noqa: S302 - bytecode this test had compiled
    return data[:16], code, code.co_filename


# --- a cache that can't be written: what it holds is used, the rest kept for this run ------

#: The one warning for a cache that can't be written (the OS reason follows it).
_CANT_WRITE = "can't be written"


def _need_read_only_mount(tmp_path: Path) -> None:
    if not _read_only_mount_works(tmp_path):
        pytest.skip("needs `unshare -m` and bind mounts (root with CAP_SYS_ADMIN) to make "
                    "a cache really read-only")


def _cant_write_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if _CANT_WRITE in line]


def _cant_write_warning(cache: Path, where: Path, reason: str) -> str:
    """The warning, naming the directory whose write was refused first."""
    return (f"warning: the cache at {cache} can't be written ({where}: {reason}): the files "
            "it holds are used (checked again, as always); new ones are kept for this run only")


def _leftovers(cache: Path) -> list[Path]:
    """What an interrupted or refused write would leave in the cache."""
    return [p for p in cache.rglob(".*")
            if p.name.startswith((".part-", ".unpacking-", ".stale-")) or p.name.endswith(".tmp")]


def test_read_only_cache_is_used_and_new_files_are_kept_for_this_run(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cache that can't be written (a read-only mount, another user's, baked into a CI
    image) still gives what it holds, and a file it lacks is downloaded into a layer that
    lives for this run only: the install works, says so once, and changes nothing there."""
    _need_read_only_mount(tmp_path)
    cached, new = make_wheel("rocached", "1.0"), make_wheel("ronew", "2.0")
    index.add(cached)
    index.add(new)
    assert _pinned_install(index, ca_file, venv, tmp_path, cached) == 0
    assert not _cant_write_warnings(capsys.readouterr().err), "a writable cache: no warning"
    cache = tmp_path / "cache"
    before = snapshot(cache)

    reqs = tmp_path / "both.txt"
    reqs.write_text(f"{pin(cached)}\n{pin(new)}\n", encoding="utf-8")
    other = _venv_like(venv, tmp_path, "other")
    (tmp_path / "tmp").mkdir()
    asked = len(index.requests)
    done = _install_read_only(cache, other, ca_file, index, tmp_path / "tmp", "-r", str(reqs))
    assert done.returncode == 0, done.stderr
    assert _cant_write_warnings(done.stderr) == [
        _cant_write_warning(cache, cache / "files" / "sha256", "Read-only file system")]
    downloads = [r for r in index.requests[asked:] if r.endswith(".whl")]
    assert [Path(r).name for r in downloads] == [new.name]  # the cached one was used
    assert snapshot(cache) == before, "the cache was changed"
    assert not list((tmp_path / "tmp").iterdir()), "temporary files were left"
    check = "import rocached, ronew; print(rocached.__version__, ronew.__version__)"
    assert run_in(other, check).stdout.split() == ["1.0", "2.0"]
    # Extracted into this run's layer, as with --no-cache-dir: nothing to protect there.
    assert (other.purelib / "ronew" / "__init__.py").stat().st_mode & 0o200

    # All of it cached: nothing to write, so nothing to warn about.
    third = _venv_like(venv, tmp_path, "third")
    done = _install_read_only(cache, third, ca_file, index, tmp_path / "tmp",
                              "-r", str(tmp_path / "requirements.txt"))
    assert done.returncode == 0, done.stderr
    assert not _cant_write_warnings(done.stderr)
    assert run_in(third, "import rocached; print(rocached.__version__)").stdout.strip() == "1.0"
    assert snapshot(cache) == before
    assert not list((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("damaged", ["tree", "wheel"])
@pytest.mark.parametrize("unwritable", ["cache", "entry"])
def test_damaged_entry_that_cant_be_written_is_replaced_for_this_run(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    unwritable: str, damaged: str,
) -> None:
    """What a cache that can't be written holds, all of it (a read-only mount) or only the
    entry's directory (another user's, or a `sudo` run's), is checked before use as ever: a
    changed tree is extracted again, a changed wheel downloaded again, into this run's
    layer, and the cache is left as it was."""
    if unwritable == "cache":
        _need_read_only_mount(tmp_path)
    prefix = _read_only(tmp_path / "cache") if unwritable == "cache" else denied_prefix(tmp_path)
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    cache = tmp_path / "cache"
    home = _tree(tmp_path).parent
    if damaged == "tree":
        changed = _tree(tmp_path) / MODULE
        changed.chmod(0o644)
        changed.write_text('__version__ = "evil"\n', encoding="utf-8")
    else:
        changed = home / wheel.name
        changed.write_bytes(changed.read_bytes()[:-10] + b"0123456789")
    if unwritable == "cache":
        # The first write refused: the tree's staging directory, or the download's file.
        where = home if damaged == "tree" else cache / "files" / "sha256"
        reason = "Read-only file system"
    else:
        home.chmod(0o555)
        where, reason = home, "Permission denied"
    before = snapshot(cache)

    other = _venv_like(venv, tmp_path, "other")
    (tmp_path / "tmp").mkdir()
    asked = len(index.requests)
    done = _install_in_process(prefix, cache, other, ca_file, index, tmp_path / "tmp",
                               "-r", str(tmp_path / "requirements.txt"))
    assert done.returncode == 0, done.stderr
    assert _cant_write_warnings(done.stderr) == [_cant_write_warning(cache, where, reason)]
    downloads = [Path(r).name for r in index.requests[asked:] if r.endswith(".whl")]
    assert downloads == ([wheel.name] if damaged == "wheel" else [])
    assert snapshot(cache) == before, "the cache was changed"
    assert not list((tmp_path / "tmp").iterdir()), "temporary files were left"
    assert (other.purelib / MODULE).read_text(encoding="utf-8") == '__version__ = "1.0"\n'
    assert _imports(other) == "1.0"


# --- a cache partly writable: a directory of it another user's (shared, or a `sudo` run's) --

@pytest.mark.parametrize("tmp_on", ["the cache's filesystem", "another filesystem"])
def test_new_file_whose_place_in_the_cache_cant_be_written_is_kept_for_this_run(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    tmp_on: str,
) -> None:
    """A cache whose root is writable can hold a directory that isn't (another user's, or a
    `sudo` run's): a file that goes there is downloaded into the layer for this run (moved
    there, or copied when that is on another filesystem), the files the cache holds are
    used, the install says so once, naming that directory, and leaves nothing behind."""
    prefix = denied_prefix(tmp_path)
    cached, new = make_wheel("pwcached", "1.0"), make_wheel("pwnew", "2.0")
    index.add(cached)
    index.add(new)
    assert _pinned_install(index, ca_file, venv, tmp_path, cached) == 0
    cache = tmp_path / "cache"
    denied = cache / "files" / "sha256" / sha256(new)[:2]  # where `new` goes
    denied.mkdir(exist_ok=True)
    denied.chmod(0o555)
    before = snapshot(cache)
    if tmp_on == "the cache's filesystem":
        tmp = tmp_path / "tmp"
        tmp.mkdir()
    else:
        shm = Path("/dev/shm")
        if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("needs /dev/shm on another filesystem than the test's temporary "
                        "directory")
        tmp = Path(tempfile.mkdtemp(dir=shm))

    try:
        reqs = tmp_path / "both.txt"
        reqs.write_text(f"{pin(cached)}\n{pin(new)}\n", encoding="utf-8")
        other = _venv_like(venv, tmp_path, "other")
        asked = len(index.requests)
        done = _install_in_process(prefix, cache, other, ca_file, index, tmp, "-r", str(reqs))
        assert done.returncode == 0, done.stderr
        assert _cant_write_warnings(done.stderr) == [
            _cant_write_warning(cache, denied, "Permission denied")]
        downloads = [Path(r).name for r in index.requests[asked:] if r.endswith(".whl")]
        assert downloads == [new.name]  # the cached one was used
        assert snapshot(cache) == before, "the cache was changed"
        assert not list(tmp.iterdir()), "temporary files were left"
    finally:
        if tmp_on != "the cache's filesystem":
            shutil.rmtree(tmp)
    check = "import pwcached, pwnew; print(pwcached.__version__, pwnew.__version__)"
    assert run_in(other, check).stdout.split() == ["1.0", "2.0"]


def test_damaged_tree_that_cant_all_be_removed_is_replaced_for_this_run(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    """A damaged tree with a directory in it that can't be written can't be replaced in the
    cache: the install extracts the wheel for this run and says so; what is left of the
    damaged tree stays where it was (no half-removed copy under another name), to be
    checked, and found damaged, again next time."""
    prefix = denied_prefix(tmp_path)
    wheel = _linked_wheel(make_wheel)
    index.add(wheel)
    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 0
    cache, tree = tmp_path / "cache", _tree(tmp_path)
    (tree / MODULE).chmod(0o644)
    (tree / MODULE).write_text('__version__ = "evil"\n', encoding="utf-8")
    (tree / "linked").chmod(0o555)

    other = _venv_like(venv, tmp_path, "other")
    (tmp_path / "tmp").mkdir()
    done = _install_in_process(prefix, cache, other, ca_file, index, tmp_path / "tmp",
                               "-r", str(tmp_path / "requirements.txt"))
    assert done.returncode == 0, done.stderr
    # Named by the tree: which of its directories stopped the removal isn't said by
    # every Python's rmtree.
    assert _cant_write_warnings(done.stderr) == [
        _cant_write_warning(cache, tree, "Permission denied")]
    assert not _leftovers(cache)
    assert (tree / MODULE).read_text(encoding="utf-8") == '__version__ = "evil"\n'
    assert not list((tmp_path / "tmp").iterdir()), "temporary files were left"
    assert (other.purelib / MODULE).read_text(encoding="utf-8") == '__version__ = "1.0"\n'
    assert _imports(other) == "1.0"


def test_a_cache_write_failing_otherwise_is_an_error(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, make_wheel: WheelMaker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only a write refused for want of permission goes to the layer for this run: another
    failure (here a file where the cache needs a directory) stops the install, saying
    where, and leaves no download in progress behind."""
    wheel = make_wheel("pwnotdir", "1.0")
    index.add(wheel)
    cache = tmp_path / "cache"
    in_the_way = cache / "files" / "sha256" / sha256(wheel)[:2]
    in_the_way.parent.mkdir(parents=True)
    in_the_way.write_text("not a directory\n", encoding="utf-8")

    assert _pinned_install(index, ca_file, venv, tmp_path, wheel) == 1
    err = capsys.readouterr().err
    assert f"error: can't write to the cache at {cache}: [Errno 20] Not a directory: " \
           f"'{in_the_way / sha256(wheel)}'" in err
    assert not _cant_write_warnings(err)
    assert not _leftovers(cache)
    assert not (venv.purelib / "pwnotdir").exists()
