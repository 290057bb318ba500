"""Tests of secinstall.config: pip's configuration files and PIP_* variables.

Every test passes its own `environ` and file locations: never the process environment,
never the machine's /etc files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from secinstall.config import (
    ConfigFiles,
    Setting,
    config_files,
    environment_warnings,
    load_pip_settings,
)
from secinstall.errors import ConfigError
from secinstall.platforms import parse_python_version


@dataclass
class Layout:
    """pip's configuration files, all under tmp_path."""

    root: Path
    files: ConfigFiles

    @property
    def global_xdg(self) -> Path:
        return self.files.global_files[0]

    @property
    def global_etc(self) -> Path:
        return self.files.global_files[1]

    @property
    def user_legacy(self) -> Path:
        return self.files.user_files[0]

    @property
    def user(self) -> Path:
        return self.files.user_files[1]

    @property
    def site(self) -> Path:
        return self.files.site_files[0]

    @property
    def env_file(self) -> Path:
        return self.root / "env" / "pip.conf"

    def write(self, path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def load(
        self, environ: dict[str, str] | None = None, *, isolated: bool = False
    ) -> dict[str, Setting]:
        return load_pip_settings(
            {"HOME": str(self.root / "home"), **(environ or {})},
            files=self.files, isolated=isolated,
        )

    def values(
        self, environ: dict[str, str] | None = None, *, isolated: bool = False
    ) -> dict[str, object]:
        return {key: s.value for key, s in self.load(environ, isolated=isolated).items()}


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    home = tmp_path / "home"
    return Layout(
        tmp_path,
        ConfigFiles(
            global_files=(tmp_path / "xdg/pip/pip.conf", tmp_path / "etc/pip.conf"),
            user_files=(home / ".pip/pip.conf", home / ".config/pip/pip.conf"),
            site_files=(tmp_path / "venv/pip.conf",),
        ),
    )


def config_error(layout: Layout, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        layout.load(environ)
    return info.value


# --- where the files are -------------------------------------------------------------


def test_linux_locations() -> None:
    files = config_files(
        {"HOME": "/home/u", "XDG_CONFIG_DIRS": "/opt/xdg:relative: /etc/xdg2 ",
         "XDG_CONFIG_HOME": "/cfg"},
        site_prefix=Path("/venv"), platform="linux",
    )
    assert files == ConfigFiles(
        # Relative XDG entries are ignored (platformdirs); pip adds /etc on Unix.
        global_files=(Path("/opt/xdg/pip/pip.conf"), Path("/etc/xdg2/pip/pip.conf"),
                      Path("/etc/pip.conf")),
        user_files=(Path("/home/u/.pip/pip.conf"), Path("/cfg/pip/pip.conf")),
        site_files=(Path("/venv/pip.conf"),),
    )


def test_linux_default_locations() -> None:
    files = config_files({"HOME": "/home/u", "XDG_CONFIG_HOME": "not/absolute"},
                         site_prefix=Path("/venv"), platform="linux")
    assert files.global_files == (Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf"))
    assert files.user_files[1] == Path("/home/u/.config/pip/pip.conf")


def test_macos_locations(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    files = config_files(env, site_prefix=Path("/venv"), platform="darwin")
    assert files.global_files == (Path("/Library/Application Support/pip/pip.conf"),
                                  Path("/etc/pip.conf"))
    assert files.user_files == (tmp_path / ".pip/pip.conf", tmp_path / ".config/pip/pip.conf")
    # pip prefers ~/Library/Application Support/pip when that directory exists.
    (tmp_path / "Library/Application Support/pip").mkdir(parents=True)
    files = config_files(env, site_prefix=Path("/venv"), platform="darwin")
    assert files.user_files[1] == tmp_path / "Library/Application Support/pip/pip.conf"


def test_windows_locations() -> None:
    files = config_files(
        {"USERPROFILE": r"C:\Users\u", "APPDATA": r"C:\Users\u\AppData\Roaming",
         "ProgramData": r"C:\ProgramData"},
        site_prefix=Path("venv"), platform="win32",
    )
    assert files == ConfigFiles(
        global_files=(Path(r"C:\ProgramData", "pip", "pip.ini"),),
        user_files=(Path(r"C:\Users\u", "pip", "pip.ini"),
                    Path(r"C:\Users\u\AppData\Roaming", "pip", "pip.ini")),
        site_files=(Path("venv", "pip.ini"),),
    )


# --- precedence ----------------------------------------------------------------------

LEVELS = ["global_xdg", "global_etc", "user_legacy", "user", "site", "env_file", "variable"]


@pytest.mark.parametrize("top", LEVELS)
def test_precedence(layout: Layout, top: str) -> None:
    """Each source overrides all those before it in LEVELS; `top` is the last present."""
    environ = {"PIP_CONFIG_FILE": str(layout.env_file)}
    for level in LEVELS[: LEVELS.index(top) + 1]:
        if level == "variable":
            environ["PIP_INDEX_URL"] = "https://variable.example"
        else:
            layout.write(getattr(layout, level), f"[global]\nindex-url = https://{level}.example\n")
    if top != "env_file":
        # User files are skipped only when PIP_CONFIG_FILE names an existing file.
        layout.env_file.unlink(missing_ok=True)
    settings = layout.load(environ)
    assert settings["index-url"].value == f"https://{top}.example"
    expected_origin = (
        "environment PIP_INDEX_URL" if top == "variable"
        else f"{getattr(layout, top)} [global]"
    )
    assert settings["index-url"].origin == expected_origin


def test_install_section_beats_global_section_in_every_file(layout: Layout) -> None:
    # pip orders by section first ([global] < [install] < environment), then by file:
    # [install] in a global file beats [global] in a user file.
    layout.write(layout.global_etc, "[install]\nretries = 1\n[global]\nretries = 2\n")
    layout.write(layout.user, "[global]\nretries = 3\ntimeout = 4\n")
    layout.write(layout.site, "[install]\ntimeout = 5\n[download]\ntimeout = 6\n")
    settings = layout.load()
    assert settings["retries"] == Setting(1, f"{layout.global_etc} [install]")
    assert settings["timeout"] == Setting(5.0, f"{layout.site} [install]")


def test_config_file_devnull_disables_all_files(layout: Layout) -> None:
    for path in (layout.global_etc, layout.user, layout.site):
        layout.write(path, "[global]\nindex-url = https://file.example\nretries = 9\n")
    values = layout.values({"PIP_CONFIG_FILE": os.devnull, "PIP_RETRIES": "2"})
    assert values == {"retries": 2}


def test_config_file_that_exists_skips_user_files(layout: Layout) -> None:
    layout.write(layout.global_etc, "[global]\nretries = 1\n")
    layout.write(layout.user, "[global]\nretries = 2\ntimeout = 2\n")
    layout.write(layout.env_file, "[global]\nproxy = http://proxy.example\n")
    values = layout.values({"PIP_CONFIG_FILE": str(layout.env_file)})
    assert values == {"retries": 1, "proxy": "http://proxy.example"}


def test_config_file_that_does_not_exist_keeps_user_files(layout: Layout) -> None:
    layout.write(layout.user, "[global]\nretries = 2\n")
    values = layout.values({"PIP_CONFIG_FILE": str(layout.root / "missing.conf")})
    assert values == {"retries": 2}


def test_isolated_ignores_user_files_and_variables(layout: Layout) -> None:
    # pip's --isolated: global, site and $PIP_CONFIG_FILE files still apply.
    layout.write(layout.global_etc, "[global]\nretries = 1\n")
    layout.write(layout.user_legacy, "[global]\ntimeout = 2\n")
    layout.write(layout.user, "[global]\ntimeout = 3\n")
    layout.write(layout.site, "[global]\nproxy = http://site.example\n")
    layout.write(layout.env_file, "[global]\ncert = /env/ca.pem\n")
    environ = {"PIP_CONFIG_FILE": str(layout.env_file), "PIP_PRE": "yes"}
    assert layout.values(environ, isolated=True) == {
        "retries": 1, "proxy": "http://site.example", "cert": "/env/ca.pem"}
    layout.env_file.unlink()
    assert layout.values(environ, isolated=False) == {
        "retries": 1, "timeout": 3.0, "proxy": "http://site.example", "pre": True}


# --- names and values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "key", "value"),
    [
        pytest.param("no-index", "yes", "no-index", True, id="bool-yes"),
        pytest.param("no-index", "Off", "no-index", False, id="bool-off"),
        pytest.param("require-hashes", "1", "require-hashes", True, id="bool-1"),
        pytest.param("pre", "f", "pre", False, id="bool-f"),
        pytest.param("upgrade", "true", "upgrade", True, id="upgrade"),
        pytest.param("no-dependencies", "on", "no-deps", True, id="alias-no-dependencies"),
        pytest.param("no-cache-dir", "true", "no-cache-dir", True, id="no-cache-dir-true"),
        # pip's quirk: any valid boolean disables the cache, even "false".
        pytest.param("no-cache-dir", "false", "no-cache-dir", True, id="no-cache-dir-false"),
        # pip's quirk: no-compile = no means --no-compile.
        pytest.param("no-compile", "no", "no-compile", True, id="no-compile-no"),
        pytest.param("no-compile", "yes", "no-compile", False, id="no-compile-yes"),
        pytest.param("compile", "no", "no-compile", True, id="compile-no"),
        pytest.param("quiet", "2", "quiet", 2, id="count-int"),
        pytest.param("verbose", "yes", "verbose", 1, id="count-bool"),
        pytest.param("quiet", "off", "quiet", 0, id="count-off"),
        pytest.param("timeout", "2.5", "timeout", 2.5, id="float"),
        pytest.param("default-timeout", "60", "timeout", 60.0, id="alias-default-timeout"),
        pytest.param("retries", "7", "retries", 7, id="int"),
        pytest.param("retries", "0x10", "retries", 16, id="int-hex-like-optparse"),
        pytest.param("pypi-url", "https://i.example", "index-url", "https://i.example",
                     id="alias-pypi-url"),
        pytest.param("extra-index-url", "https://a.example https://b.example",
                     "extra-index-url", ("https://a.example", "https://b.example"), id="list"),
        pytest.param("trusted-host", "a.example", "trusted-host", ("a.example",),
                     id="list-of-one"),
        pytest.param("constraint", "c1.txt c2.txt", "constraint", ("c1.txt", "c2.txt"),
                     id="constraint-list"),
        pytest.param("requirement", "r.txt", "requirement", ("r.txt",), id="requirement-list"),
        pytest.param("cert", "~/ca.pem", "cert", "/home/u/ca.pem", id="path-expands-home"),
        pytest.param("cache-dir", "/var/cache/pip", "cache-dir", "/var/cache/pip", id="path"),
        pytest.param("target", "~/t", "target", "~/t", id="target-not-expanded"),
        pytest.param("report", "-", "report", "-", id="report"),
        pytest.param("python", "/usr/bin/python3", "python", "/usr/bin/python3", id="python"),
        pytest.param("dry-run", "1", "dry-run", True, id="dry-run"),
        pytest.param("break-system-packages", "1", "break-system-packages", True,
                     id="break-system-packages"),
    ],
)
def test_values_from_a_variable(
    layout: Layout, name: str, raw: str, key: str, value: object
) -> None:
    var = "PIP_" + name.upper().replace("-", "_")
    settings = layout.load({"HOME": "/home/u", var: raw})
    assert settings == {key: Setting(value, f"environment {var}")}


def test_values_from_a_file(layout: Layout) -> None:
    layout.write(
        layout.user,
        "[global]\n"
        "Extra_Index_URL =\n"  # names are case- and underscore-insensitive
        "    https://one.example/simple\n"
        "    https://two.example/simple\n"
        "find-links = /wheels  https://links.example/\n"
        "cert: ~/ca.pem\n"
        "index-url = https://x.example # not a comment\n"
        "[DEFAULT]\n"
        "no-input = yes\n",
    )
    home = str(layout.root / "home")
    assert layout.values() == {
        "extra-index-url": ("https://one.example/simple", "https://two.example/simple"),
        "find-links": ("/wheels", "https://links.example/"),
        "cert": f"{home}/ca.pem",
        # configparser (and so pip) has no inline comments.
        "index-url": "https://x.example # not a comment",
        "no-input": True,
    }


def test_unknown_and_empty_values_are_ignored(layout: Layout) -> None:
    layout.write(layout.user, "[global]\nindex-url = https://file.example\nuser-agent = x\n"
                              "[download]\nretries = 3\n")
    values = layout.values({
        "PIP_INDEX_URL": "",  # empty values don't override (pip drops them)
        "PIP_SOME_FUTURE_OPTION": "1",
        "PIP_VERSION": "not an option",
        "pip_retries": "4",  # only upper-case PIP_ is pip's prefix
    })
    assert values == {"index-url": "https://file.example"}


def test_later_alias_wins(layout: Layout) -> None:
    layout.write(layout.user, "[global]\ntimeout = 1\n[install]\ndefault-timeout = 2\n")
    assert layout.values()["timeout"] == 2.0


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "words"),
    [
        pytest.param("timeout", "abc", "not a number", id="timeout"),
        pytest.param("retries", "1.5", "not an integer", id="retries"),
        pytest.param("no-index", "maybe", "not a boolean; use yes/no", id="bool"),
        pytest.param("no-cache-dir", "please", "not a boolean; use yes/no", id="no-cache-dir"),
        pytest.param("quiet", "-1", "not a non-negative integer", id="count-negative"),
        pytest.param("verbose", "lots", "not a non-negative integer", id="count-word"),
    ],
)
def test_bad_values_name_their_source(layout: Layout, name: str, raw: str, words: str) -> None:
    layout.write(layout.site, f"[install]\n{name} = {raw}\n")
    assert config_error(layout).message.startswith(
        f"{layout.site} [install]: {name} = {raw!r} is {words}")
    var = "PIP_" + name.upper().replace("-", "_")
    layout.site.unlink()
    assert config_error(layout, {var: raw}).message.startswith(
        f"environment {var}: {name} = {raw!r} is {words}")


def test_overridden_bad_value_is_still_an_error(layout: Layout) -> None:
    # pip checks every value in order, even one a later source replaces.
    layout.write(layout.global_etc, "[global]\ntimeout = abc\n")
    error = config_error(layout, {"PIP_TIMEOUT": "5"})
    assert error.message.startswith(f"{layout.global_etc} [global]: timeout")


def test_all_problems_at_once(layout: Layout) -> None:
    layout.write(layout.user, "[global]\ntimeout = abc\nretries = x\n")
    error = config_error(layout, {"PIP_PRE": "perhaps"})
    assert error.message.endswith("(and 2 more problems)")
    assert [d.split(": ", 1)[0] for d in error.details] == [
        f"{layout.user} [global]", f"{layout.user} [global]", "environment PIP_PRE"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("index-url = https://no-section.example\n", id="no-section-header"),
        pytest.param("[global]\ntimeout = 1\ntimeout = 2\n", id="duplicate-option"),
    ],
)
def test_malformed_file(layout: Layout, text: str) -> None:
    layout.write(layout.user, text)
    assert config_error(layout).message.startswith(
        f"{layout.user}: not a valid configuration file")


# --- environment warnings ------------------------------------------------------------


def test_environment_warnings() -> None:
    environ = {"REQUESTS_CA_BUNDLE": "/a.pem", "CURL_CA_BUNDLE": "/b.pem",
               "SSL_CERT_FILE": "/c.pem", "SSL_CERT_DIR": "", "PIP_CERT": "/d.pem"}
    linux = environment_warnings(environ, platform="linux")
    assert [m.split(" ", 1)[0] for m in linux] == [
        "REQUESTS_CA_BUNDLE=/a.pem", "CURL_CA_BUNDLE=/b.pem", "SSL_CERT_FILE=/c.pem"]
    assert "--cert" in linux[0]
    # On macOS and Windows truststore asks the OS, which ignores SSL_CERT_FILE.
    assert len(environment_warnings(environ, platform="darwin")) == 2
    assert environment_warnings({}, platform="linux") == []


# --- pip as the oracle ---------------------------------------------------------------

# Runs pip's own option parser for `pip install` with the configuration files replaced
# by ours (pip's tests patch the same function), in the environment given.
PIP_ORACLE = r"""
import json, os, sys
import pip._internal.configuration as configuration
from pip._internal.commands import create_command
spec = json.loads(sys.argv[1])
Kind = configuration.Kind

def parse(files, isolated):
    configuration.get_configuration_files = lambda: files
    options, _ = create_command("install", isolated=isolated).parser.parse_args([])
    return vars(options)

values = parse({Kind.GLOBAL: spec["global"], Kind.USER: spec["user"], Kind.SITE: spec["site"]},
               spec["isolated"])
for name in [name for name in os.environ if name.startswith("PIP_")]:
    del os.environ[name]
baseline = parse({Kind.GLOBAL: [], Kind.USER: [], Kind.SITE: []}, False)
changed = sorted(d for d in values if values[d] != baseline[d])
print(json.dumps({"values": values, "changed": changed}, default=str))
"""

# secinstall key -> pip's dest.
PIP_DEST = {
    "index-url": "index_url", "extra-index-url": "extra_index_urls", "find-links": "find_links",
    "no-index": "no_index", "cert": "cert", "trusted-host": "trusted_hosts",
    "require-hashes": "require_hashes", "pre": "pre", "timeout": "timeout",
    "retries": "retries", "cache-dir": "cache_dir", "no-deps": "ignore_dependencies",
    "upgrade": "upgrade", "force-reinstall": "force_reinstall",
    "ignore-installed": "ignore_installed", "target": "target_dir", "prefix": "prefix_path",
    "root": "root_path",
    "python": "python", "dry-run": "dry_run", "report": "json_report_file", "quiet": "quiet",
    "verbose": "verbose", "constraint": "constraints", "requirement": "requirements",
    "proxy": "proxy", "disable-pip-version-check": "disable_pip_version_check",
    "no-input": "no_input", "break-system-packages": "override_externally_managed",
    "upgrade-strategy": "upgrade_strategy", "require-virtualenv": "require_venv",
    "platform": "platforms", "python-version": "python_version",
    "implementation": "implementation", "abi": "abis",
    "warn-conflicts": "warn_about_conflicts", "warn-script-location": "warn_script_location",
    "log": "log", "progress-bar": "progress_bar", "no-color": "no_color",
    "client-cert": "client_cert",
}


def as_pip_would(settings: dict[str, Setting]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, setting in settings.items():
        value = setting.value
        if key == "no-cache-dir":
            out["cache_dir"] = False
        elif key == "no-compile":
            out["compile"] = not value
        elif key == "python-version":  # pip keeps it parsed
            out["python_version"] = list(parse_python_version(str(value)))
        else:
            out[PIP_DEST[key]] = list(value) if isinstance(value, tuple) else value
    if "no-cache-dir" in settings:
        out["cache_dir"] = False  # pip: --no-cache-dir wins over cache-dir
    return out


ORACLE_CASES = [
    pytest.param(
        {"global_etc": "[global]\nindex-url = https://g.example\nretries = 2\n"
                       "[install]\nupgrade = yes\n",
         "user": "[global]\ntimeout = 9\nretries = 3\n[install]\nretries = 010\n",
         "site": "[global]\nfind-links =\n  /w1\n  /w2\nno-compile = no\n"},
        {"PIP_QUIET": "2", "PIP_NO_CACHE_DIR": "off", "PIP_TRUSTED_HOST": "a.example b.example"},
        False, id="all-levels"),
    pytest.param(
        {"user": "[global]\nindex-url = https://user.example\n",
         "env_file": "[install]\nno-deps = true\ncert = ~/ca.pem\n"},
        {"PIP_CONFIG_FILE": "{env_file}", "PIP_DEFAULT_TIMEOUT": "3"},
        False, id="config-file-skips-user"),
    pytest.param(
        {"global_etc": "[global]\nretries = 4\n", "user": "[global]\npre = yes\n",
         "env_file": "[global]\nproxy = http://p.example\n"},
        {"PIP_CONFIG_FILE": "{env_file}", "PIP_TIMEOUT": "3"},
        True, id="isolated"),
    pytest.param(
        {"global_xdg": "[global]\ncompile = no\nverbose = yes\n",
         "user_legacy": "[install]\nno-dependencies = 1\ncache-dir = ~/c\n",
         "user": "[install]\ndefault-timeout = 4\ntimeout = 5\n"},
        {"PIP_CONFIG_FILE": os.devnull, "PIP_TARGET": "/t", "PIP_DRY_RUN": "1",
         "PIP_ROOT": "/r"},
        False, id="devnull"),
    pytest.param(
        {"user": "[global]\ncache-dir = /c\nno-cache-dir = no\n[install]\nreport = out.json\n"
                 "force-reinstall = on\nignore-installed = 1\ndisable-pip-version-check = 1\n"
                 "constraint = c.txt\nrequirement = r.txt\nprefix = /p\nno-input = yes\n"
                 "break-system-packages = on\nupgrade-strategy = eager\n"
                 "no-warn-conflicts = no\nno-warn-script-location = no\n"},
        {"PIP_PYTHON": "/usr/bin/python3", "PIP_REQUIRE_HASHES": "1", "PIP_NO_INDEX": "1",
         "PIP_REQUIRE_VIRTUALENV": "1",
         "PIP_EXTRA_INDEX_URL": "https://e.example"},
        False, id="everything-else"),
    pytest.param(
        {"user": "[install]\nplatform =\n  manylinux2014_aarch64\n  linux_aarch64\n"
                 "abi = cp312\n"},
        {"PIP_PYTHON_VERSION": "3.12", "PIP_IMPLEMENTATION": "cp"},
        False, id="platform-options"),
    pytest.param(
        {"user": "[global]\nlog-file = ~/pip.log\nverbose = 2\nno-color = yes\n"
                 "[install]\nquiet = yes\n"},
        {"PIP_PROGRESS_BAR": "off"},
        False, id="output-options"),
    pytest.param(
        {"user": "[global]\nlocal-log = /tmp/a.log\nclient-cert = ~/client.pem\n"},
        {"PIP_LOG": "/tmp/b.log", "PIP_NO_COLOR": "0", "PIP_PROGRESS_BAR": "raw"},
        False, id="log-alias"),
]


@pytest.mark.parametrize(("files", "environ", "isolated"), ORACLE_CASES)
def test_same_result_as_pips_own_parser(
    layout: Layout, files: dict[str, str], environ: dict[str, str], isolated: bool
) -> None:
    for level, text in files.items():
        layout.write(getattr(layout, level), text)
    env = {key: value.format(env_file=layout.env_file) for key, value in environ.items()}
    env = {"HOME": str(layout.root / "home"), "XDG_CACHE_HOME": str(layout.root / "cache"),
           **env}
    ours = as_pip_would(load_pip_settings(env, files=layout.files, isolated=isolated))
    spec = {"isolated": isolated,
            "global": [str(p) for p in layout.files.global_files],
            "user": [str(p) for p in layout.files.user_files],
            "site": [str(p) for p in layout.files.site_files]}
    proc = subprocess.run([sys.executable, "-c", PIP_ORACLE, json.dumps(spec)],
                          env=env, capture_output=True, text=True, check=True)
    theirs = json.loads(proc.stdout)
    assert ours
    # pip's booleans are strtobool's 1/0, equal to True/False.
    assert {dest: theirs["values"][dest] for dest in ours} == ours
    # ...and pip took nothing from the configuration that secinstall missed.
    assert set(theirs["changed"]) <= set(ours)
