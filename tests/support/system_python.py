"""A Python installation that is not a virtual environment, as an operating system's is,
made without touching the machine's: a copy of the base interpreter's binary beside
symlinks to its standard library, with a site-packages of its own. Writing PEP 668's
`EXTERNALLY-MANAGED` into its stdlib directory makes it externally managed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

MARKER = "EXTERNALLY-MANAGED"
#: The message the tests' marker gives (written with continuation lines, as Debian's is).
MANAGED_ERROR = ("To install Python packages system-wide, use the distributor's packages:\n"
                 "    apt install python3-xyz\n"
                 "  For anything else, make a virtual environment.")
_FACTS = ("import json, sys, sysconfig; print(json.dumps({'prefix': sys.prefix, "
          "'base_prefix': sys.base_prefix, 'paths': sysconfig.get_paths()}))")


@dataclass(frozen=True)
class SystemPython:
    prefix: Path
    python: Path
    stdlib: Path
    purelib: Path

    @property
    def marker(self) -> Path:
        return self.stdlib / MARKER

    def manage(self, error: str = MANAGED_ERROR) -> Path:
        """Make it externally managed: the marker, whose message is `error`."""
        text = error.replace("\n", "\n\t")  # continuation lines of an INI value
        self.marker.write_text(f"[externally-managed]\nError={text}\n", encoding="utf-8")
        return self.marker


def make_system_python(root: Path) -> SystemPython | str:
    """The installation at `root`, or why this machine's interpreter can't give one (then
    the caller skips)."""
    if os.name == "nt":
        return "the copied interpreter needs a POSIX layout (bin/, lib/pythonX.Y/)"
    base = sys.base_prefix
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    binary = Path(base, "bin", f"python{version}")
    stdlib = Path(sysconfig.get_paths(vars={"base": base, "platbase": base,
                                            "installed_base": base,
                                            "installed_platbase": base})["stdlib"])
    if not binary.is_file() or not stdlib.is_relative_to(base):
        return f"the base interpreter's layout is not {base}/bin/python{version} with its " \
               f"standard library under {base} (stdlib: {stdlib})"
    (root / "bin").mkdir(parents=True)
    python = root / "bin" / binary.name
    shutil.copy2(binary, python)
    own_stdlib = root / stdlib.relative_to(base)
    own_stdlib.mkdir(parents=True)
    for entry in stdlib.iterdir():
        # Never the base's own marker: writing ours through a symlink would change it.
        if entry.name not in ("site-packages", MARKER):
            (own_stdlib / entry.name).symlink_to(entry)
    (own_stdlib / "site-packages").mkdir()
    made = SystemPython(prefix=root, python=python, stdlib=own_stdlib,
                        purelib=own_stdlib / "site-packages")
    facts = subprocess.run([str(python), "-I", "-c", _FACTS], capture_output=True, text=True,
                           check=False)
    if facts.returncode != 0:
        return f"the copied interpreter {python} doesn't run: {facts.stderr.strip()}"
    found = json.loads(facts.stdout)
    got = {key: Path(found[key]).resolve() for key in ("prefix", "base_prefix")}
    got |= {key: Path(found["paths"][key]).resolve() for key in ("stdlib", "purelib")}
    wanted = {"prefix": root.resolve(), "base_prefix": root.resolve(),
              "stdlib": own_stdlib.resolve(), "purelib": made.purelib.resolve()}
    if got != wanted:
        return f"the copied interpreter {python} describes itself as {got}, not {wanted}"
    return made


def assert_refused(code: int, err: str, system: SystemPython) -> None:
    """`secinstall install` into `system`, externally managed, was refused as it should
    be: exit code 1, the marker's message, and what to do instead."""
    assert code == 1, err
    assert "Traceback" not in err
    assert "externally managed environment (PEP 668)" in err
    assert str(system.marker) in err
    # The marker's own text, every line of it, as pip shows it.
    for line in MANAGED_ERROR.splitlines():
        assert line.strip() in err
    assert f"{system.python} -m venv .venv" in err
    assert "secinstall install --python .venv" in err
    assert "--break-system-packages" in err


def imports_demo(python: Path, attribute: str = "__version__") -> str:
    """What `python` (PYTHONPATH dropped, the rest of the environment kept, PYTHONUSERBASE
    too) says of `import demo`: `demo.<attribute>`, or the error."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run([str(python), "-c", f"import demo; print(demo.{attribute})"],
                          capture_output=True, text=True, env=env, check=False)
    return done.stdout.strip() or done.stderr.strip()


def fragment_weakenings(root: Path) -> list[str]:
    """The weakenings the one SBOM fragment under `<root>/.secinstall` records."""
    (fragment,) = (root / ".secinstall" / "sbom").glob("*.cdx.json")
    props = json.loads(fragment.read_text(encoding="utf-8"))["metadata"]["properties"]
    return [p["value"] for p in props if p["name"] == "secinstall:weakened"]


def set_pip_switch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: str,
                   where: str) -> None:
    """Turn pip's boolean setting `key` on, as a PIP_* variable ("variable") or in a
    configuration file's [install] section (anything else)."""
    if where == "variable":
        monkeypatch.setenv("PIP_" + key.upper().replace("-", "_"), "1")
    else:
        config = tmp_path / "pip.conf"
        config.write_text(f"[install]\n{key} = true\n", encoding="utf-8")
        monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
