"""The developer and CI entry points: tests, lint, typecheck, bandit and the lock files."""

from __future__ import annotations

import os
from pathlib import Path

import nox
import nox.command

nox.options.sessions = ["tests", "lint", "typecheck", "bandit"]
nox.options.default_venv_backend = "virtualenv"

ROOT = Path(__file__).parent
REQUIREMENTS = ROOT / "requirements"

# The pins in requirements/*.txt carry hashes of PyPI's files. A machine's pip config can
# add local indexes, find-links or a constraints file: a local build of a pinned release
# has another hash and fails --require-hashes, and a constraints file can veto a pin. So
# the installs see no pip config at all, only PyPI (PIP_CERT/SSL_CERT_FILE stay for TLS).
_PIP_ENV_CLEARED = (
    "PIP_FIND_LINKS",
    "PIP_EXTRA_INDEX_URL",
    "PIP_INDEX_URL",
    "PIP_NO_INDEX",
    "PIP_CONSTRAINT",
    "PIP_REQUIREMENT",
    "PIP_PRE",
    "PIP_ONLY_BINARY",
    "PIP_NO_BINARY",
    "PIP_USER",
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_REQUIRE_VIRTUALENV",
    "PIP_BREAK_SYSTEM_PACKAGES",
)
INSTALL_ENV: dict[str, str | None] = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    **dict.fromkeys(_PIP_ENV_CLEARED),
}

# The lock files: every dependency pinned with the hashes of all its files, resolved for
# every platform and Python >= 3.10, from PyPI only.
LOCKED = ("nox", "tests", "lint", "typecheck", "bandit", "lock", "bench", "runtime")

# pytest.ExitCode.NO_TESTS_COLLECTED; pytest is not importable from nox's own environment.
PYTEST_NO_TESTS_COLLECTED = 5


def install_locked(session: nox.Session, name: str) -> None:
    """Install requirements/<name>.txt, every file checked against its pinned hash."""
    session.install(
        "--require-hashes",
        "--only-binary=:all:",
        "-r",
        str(REQUIREMENTS / f"{name}.txt"),
        env=INSTALL_ENV,
    )


def install_project(session: nox.Session) -> None:
    """Install secinstall itself; its dependencies and flit_core come from the lock file."""
    # --force-reinstall: a reused session (-R) has an older build of the same version.
    session.install("--no-deps", "--no-build-isolation", "--force-reinstall", str(ROOT),
                    env=INSTALL_ENV)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (extra arguments go to pytest)."""
    install_locked(session, "tests")
    install_project(session)
    # Only pytest gets PYTHONWARNINGS=error: pip's own warnings in the installs above are
    # not ours to fix.
    try:
        session.run("pytest", "-n", "auto", *session.posargs, env={"PYTHONWARNINGS": "error"})
    except nox.command.CommandFailed as exc:
        if exc.return_code == PYTEST_NO_TESTS_COLLECTED:
            session.error(
                "pytest collected no tests (exit code 5): a run that tests nothing is a "
                "failure; check testpaths in pyproject.toml and the arguments after --"
            )
        raise


@nox.session
def lint(session: nox.Session) -> None:
    """Check the code with ruff (rules in pyproject.toml)."""
    install_locked(session, "lint")
    session.run("ruff", "check", *(session.posargs or ["."]))


@nox.session
def typecheck(session: nox.Session) -> None:
    """Check types with mypy --strict over src, tests and this file (pyproject.toml)."""
    install_locked(session, "typecheck")
    session.run("mypy", *session.posargs)


@nox.session
def bandit(session: nox.Session) -> None:
    """Scan src/ with bandit (settings in pyproject.toml)."""
    install_locked(session, "bandit")
    session.run("bandit", "-c", "pyproject.toml", "-r", "src", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Time secinstall against pip and uv on a local index (benchmarks/README.md).

    Extra arguments go to benchmarks/bench.py, e.g. `nox -s bench -- --repeat 3`.
    """
    install_locked(session, "bench")
    install_project(session)
    session.run("python", str(ROOT / "benchmarks" / "bench.py"), *session.posargs)


@nox.session(default=False)
def bootstrap(session: nox.Session) -> None:
    """Build dist/get-secinstall.py, the single-file bootstrap, from src/, vendor/ and
    requirements/runtime.txt (the pins it installs; `nox -s lock` first if pyproject.toml's
    dependencies changed: the build refuses a lock that misses one).

    The same sources give the same bytes. Extra arguments go to the builder, e.g.
    `nox -s bootstrap -- -o get-secinstall.py`.
    """
    # The lock has flit_core, which builds secinstall's wheel for the script to embed.
    install_locked(session, "tests")
    install_project(session)
    session.run("python", "-m", "secinstall.bootstrap", "--root", str(ROOT), "build",
                *session.posargs)


@nox.session(default=False)
def vendor(session: nox.Session) -> None:
    """Re-vendor vendor/ from the wheels vendor/vendor.txt pins (see vendor/README.md).

    secinstall downloads and verifies them (pins, RECORD, attestations) from PyPI.
    """
    install_locked(session, "tests")
    install_project(session)
    session.run("python", "-m", "secinstall.bootstrap", "--root", str(ROOT), "vendor",
                "--cache-dir", str(ROOT / ".nox" / "_vendor-cache"), *session.posargs)


@nox.session(default=False)
def sbom(session: nox.Session) -> None:
    """Practise what we preach: install secinstall's own runtime dependencies with
    secinstall (hash-pinned, verified, transactional) into a fresh environment, then write
    that environment's SBOM to dist/secinstall.cdx.json."""
    install_locked(session, "tests")
    install_project(session)
    tmp = Path(session.create_tmp())
    target = tmp / "runtime-env"
    session.run("python", "-m", "venv", "--without-pip", "--clear", str(target))
    session.run("python", "-m", "secinstall", "install", "--isolated", "--require-hashes",
                "-r", str(REQUIREMENTS / "runtime.txt"), "--python", str(target),
                env=INSTALL_ENV)
    wheel_dir = tmp / "wheel"
    session.run("python", "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "-w", str(wheel_dir), str(ROOT), env=INSTALL_ENV)
    (wheel,) = wheel_dir.glob("secinstall-*.whl")
    session.run("python", "-m", "secinstall", "install", "--isolated", "--no-deps",
                "--python", str(target), str(wheel), env=INSTALL_ENV)
    out = ROOT / "dist" / "secinstall.cdx.json"
    out.parent.mkdir(exist_ok=True)
    session.run("python", "-m", "secinstall", "sbom", "--python", str(target), "-o", str(out))


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Re-resolve requirements/*.in into the hash-pinned requirements/*.txt.

    Extra arguments go to every `uv pip compile`, e.g. `nox -s lock -- --upgrade`.
    """
    install_locked(session, "lock")
    for name in LOCKED:
        session.run(
            "uv",
            "pip",
            "compile",
            "--quiet",
            # Only PyPI: no uv.toml, no pip config, no local indexes in the output.
            "--no-config",
            "--index-url",
            "https://pypi.org/simple",
            # The OS trust store, so TLS works behind an intercepting proxy too.
            "--system-certs",
            "--universal",
            "--python-version",
            "3.10",
            # Metadata from wheels only; never fetch an interpreter or run a build.
            "--no-build",
            "--no-python-downloads",
            "--generate-hashes",
            "--custom-compile-command",
            "nox -s lock",
            *session.posargs,
            str(REQUIREMENTS / f"{name}.in"),
            "--output-file",
            str(REQUIREMENTS / f"{name}.txt"),
            env={
                **INSTALL_ENV,
                "UV_INDEX_URL": None,
                "UV_EXTRA_INDEX_URL": None,
                "UV_INDEX": None,
                "UV_DEFAULT_INDEX": None,
                "UV_FIND_LINKS": None,
                "UV_CONSTRAINT": None,
                "UV_OVERRIDE": None,
            },
        )
