"""Tests of secinstall.requirements: pip's requirements-file format, on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from secinstall.errors import RequirementsError
from secinstall.requirements import RequirementSet, parse_files, parse_requirement

A256 = "a" * 64
B256 = "B" * 64
C384 = "c" * 96
D512 = "d" * 128

Write = Callable[[str, str], Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def parse(path: Path) -> RequirementSet:
    return parse_files([path], environ={})


def error_of(
    path: Path | None = None,
    *,
    requirements: Sequence[str | Path] = (),
    constraints: Sequence[str | Path] = (),
    args: Sequence[str] = (),
) -> RequirementsError:
    with pytest.raises(RequirementsError) as info:
        parse_files([*([path] if path else []), *requirements], constraints, args=args,
                    environ={})
    return info.value


# --- what parses ---------------------------------------------------------------------


def test_hashes_on_continuation_lines_with_comments(write: Write) -> None:
    path = write(
        "requirements.txt",
        "# pinned by hand\n"
        "\n"
        "requests==2.31.0 \\\n"
        f"    --hash=sha256:{A256} \\\n"
        f"    --hash sha256:{B256}   # the wheel\n"
        "   \n"
        f"idna==3.4 --hash=sha384:{C384} --hash=sha512:{D512}\n",
    )
    reqs = parse(path).requirements
    assert [(str(r.req), r.source) for r in reqs] == [
        ("requests==2.31.0", f"{path}:3"),
        ("idna==3.4", f"{path}:7"),
    ]
    # Several hashes of one algorithm merge; digests are lower-cased.
    assert reqs[0].hashes == {"sha256": frozenset({A256, B256.lower()})}
    assert reqs[1].hashes == {"sha384": frozenset({C384}), "sha512": frozenset({D512})}
    assert all(r.is_pinned and not r.is_constraint for r in reqs)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("Foo_Bar==1.0", "Foo_Bar==1.0", id="plain"),
        pytest.param("foo[security,socks]==1.0", "foo[security,socks]==1.0", id="extras"),
        pytest.param('foo==1.0; python_version < "3.12"', 'foo==1.0; python_version < "3.12"',
                     id="marker"),
        pytest.param('foo==1.0 ;python_version<"3.12"', 'foo==1.0; python_version < "3.12"',
                     id="marker-tight"),
        pytest.param("foo>=1,<2", "foo<2,>=1", id="range"),
        pytest.param("foo @ https://files.example/foo-1.0-py3-none-any.whl",
                     "foo @ https://files.example/foo-1.0-py3-none-any.whl", id="url"),
        pytest.param('foo @ https://files.example/foo-1.0-py3-none-any.whl ; os_name == "nt"',
                     'foo @ https://files.example/foo-1.0-py3-none-any.whl ; os_name == "nt"',
                     id="url-marker"),
        pytest.param("foo @ file:///wheels/foo-1.0-py3-none-any.whl",
                     "foo @ file:///wheels/foo-1.0-py3-none-any.whl", id="file-url"),
        pytest.param("foo @ https://files.example/foo-1.0.whl#sha256=" + A256,
                     "foo @ https://files.example/foo-1.0.whl#sha256=" + A256,
                     id="url-fragment-is-not-a-comment"),
        pytest.param("foo==1.0 # comment", "foo==1.0", id="trailing-comment"),
        pytest.param("foo==1.0\t# comment", "foo==1.0", id="comment-after-tab"),
        pytest.param("foo==1.0 ;", "foo==1.0", id="empty-marker"),
    ],
)
def test_requirement_forms(write: Write, line: str, expected: str) -> None:
    path = write("r.txt", line + "\n")
    (req,) = parse(path).requirements
    assert str(req.req) == expected
    assert req.source == f"{path}:1"
    # The command line takes the same strings, without the comment handling.
    if "#" not in line:
        assert str(parse_requirement(line).req) == str(req.req)


def test_comment_line_ends_a_continuation(write: Write) -> None:
    # pip's join_lines: a comment line after `\` closes the joined line.
    path = write("r.txt", "foo==1.0\\\n# a comment\nbar==2.0\n")
    reqs = parse(path).requirements
    assert [(str(r.req), r.source) for r in reqs] == [
        ("foo==1.0", f"{path}:1"),
        ("bar==2.0", f"{path}:3"),
    ]


def test_continuation_on_the_last_line(write: Write) -> None:
    path = write("r.txt", f"foo==1.0 \\\n --hash=sha256:{A256} \\")
    (req,) = parse(path).requirements
    assert req.hashes == {"sha256": frozenset({A256})}


def test_environment_variables_follow_pips_rule(write: Write) -> None:
    path = write(
        "r.txt",
        "--index-url ${INDEX}/simple\n"
        "--extra-index-url $INDEX/other\n"  # only ${NAME} is expanded
        "--extra-index-url ${lower}/x\n"  # names are upper case, digits and _
        "--extra-index-url ${UNSET_1}/y\n"  # unset: left as written
        "foo==${FOO_VERSION}\n",
    )
    env = {"INDEX": "https://mirror.example", "lower": "no", "FOO_VERSION": "2.0"}
    result = parse_files([path], environ=env)
    assert result.index_url == "https://mirror.example/simple"
    assert result.extra_index_urls == ("$INDEX/other", "${lower}/x", "${UNSET_1}/y")
    assert str(result.requirements[0].req) == "foo==2.0"


def test_index_options(write: Write, tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    path = write(
        "r.txt",
        "-i https://first.example/simple\n"
        "--index-url=https://second.example/simple\n"
        "--extra-index-url https://extra.example/simple\n"
        "--extra-index-url=https://extra.example/simple\n"
        "-f wheels\n"
        "--find-links https://links.example/\n"
        "-f not-here\n"
        "--trusted-host a.example --trusted-host=b.example\n"
        "--no-index\n--require-hashes\n--pre\n"
        "--prefer-binary\n--only-binary :all:\n",
    )
    result = parse(path)
    assert result == RequirementSet(
        requirements=(),
        constraints=(),
        index_url="https://second.example/simple",  # the last one wins
        extra_index_urls=("https://extra.example/simple",),
        # A find-links path is relative to the file when it exists there (pip's rule).
        find_links=(str(tmp_path / "wheels"), "https://links.example/", "not-here"),
        no_index=True,
        require_hashes=True,
        trusted_hosts=("a.example", "b.example"),
        pre=True,
    )


def test_includes_are_relative_to_the_including_file(write: Write, tmp_path: Path) -> None:
    write("sub/base.txt", "-c ../constraints/c.txt\nbase==1.0\n")
    write("constraints/c.txt", "shared==2.0\n-r ../extra.txt\n")
    write("extra.txt", "extra==3.0\n")
    top = write("top.txt", "--requirement=sub/base.txt\ntop==1.0\n")
    result = parse(top)
    sub = os.path.join(str(tmp_path), "sub", "base.txt")
    assert [(str(r.req), r.source) for r in result.requirements] == [
        # -r inside a constraints file still adds requirements, as in pip.
        ("extra==3.0", f"{tmp_path / 'extra.txt'}:1"),
        ("base==1.0", f"{sub}:2"),
        ("top==1.0", f"{top}:2"),
    ]
    assert [(str(c.req), c.is_constraint) for c in result.constraints] == [("shared==2.0", True)]


def test_relative_paths_keep_the_path_as_given(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("sub/base.txt", "base==1.0\n")
    write("top.txt", "-r sub/base.txt\n")
    monkeypatch.chdir(tmp_path)
    (req,) = parse_files(["top.txt"], environ={}).requirements
    assert req.source == os.path.join("sub", "base.txt") + ":1"


def test_a_file_included_twice_is_not_a_double_requirement(write: Write) -> None:
    write("common.txt", "common==1.0\n")
    a = write("a.txt", "-r common.txt\na==1\n")
    b = write("b.txt", "-r common.txt\nb==1\n")
    result = parse_files([a, b], environ={})
    assert [str(r.req) for r in result.requirements] == ["common==1.0", "a==1", "b==1"]


def test_constraints_files(write: Write) -> None:
    cons = write("c.txt", f"foo==1.0 --hash=sha256:{A256}\nfoo<2\n")
    result = parse_files(constraints=[cons], args=["foo"], environ={})
    assert [(str(r.req), r.source) for r in result.requirements] == [("foo", "command line")]
    # Several constraints on one project are allowed: all apply.
    assert [(str(c.req), c.source, c.is_constraint) for c in result.constraints] == [
        ("foo==1.0", f"{cons}:1", True),
        ("foo<2", f"{cons}:2", True),
    ]
    assert result.constraints[0].hashes == {"sha256": frozenset({A256})}


def test_file_url_for_a_requirements_file(write: Write) -> None:
    path = write("r.txt", "foo==1\n")
    (req,) = parse_files([path.as_uri()], environ={}).requirements
    assert str(req.req) == "foo==1"


@pytest.mark.parametrize(
    ("data", "label"),
    [
        pytest.param(b"\xef\xbb\xbffoo==1.0\n", "utf-8-bom", id="utf-8-bom"),
        pytest.param("foo==1.0\n".encode("utf-16"), "utf-16", id="utf-16-bom"),
        pytest.param(b"# -*- coding: latin-1 -*-\n# caf\xe9\nfoo==1.0\n", "pep263",
                     id="pep263-coding-line"),
    ],
)
def test_encodings(tmp_path: Path, data: bytes, label: str) -> None:
    path = tmp_path / f"{label}.txt"
    path.write_bytes(data)
    assert [str(r.req) for r in parse(path).requirements] == ["foo==1.0"]


def test_identical_duplicates_are_merged(write: Write) -> None:
    a = write("a.txt", "foo==1.0\n")
    result = parse_files([a], args=["foo==1.0"], environ={})
    assert [(str(r.req), r.source) for r in result.requirements] == [("foo==1.0", "command line")]


def test_same_project_with_different_markers_is_kept(write: Write) -> None:
    # Universal lock files pin one version per environment this way.
    path = write(
        "r.txt",
        'foo==1.0 ; python_version < "3.12"\nfoo==2.0 ; python_version >= "3.12"\n',
    )
    assert [str(r.req.specifier) for r in parse(path).requirements] == ["==1.0", "==2.0"]


def test_parse_requirement_from_the_command_line() -> None:
    req = parse_requirement("Requests[socks]>=2")
    assert (req.req.name, req.req.extras, req.source, req.hashes) == (
        "Requests", {"socks"}, "command line", {})
    assert not req.is_pinned


# --- what is refused, with file:line -------------------------------------------------

REFUSED = [
    pytest.param("-e .", ["--editable .: editable", "name @ URL"], id="editable-dir"),
    pytest.param("--editable=git+https://example.com/x.git#egg=x", ["editable", "name @ URL"],
                 id="editable-vcs"),
    pytest.param("./dist/foo-1.0-py3-none-any.whl", ["no such wheel file"],
                 id="missing-wheel-path"),
    pytest.param("/srv/pkg", ["looks like a path", "name @ URL"], id="absolute-path"),
    # A user that doesn't exist: the path as written, as os.path.expanduser leaves it.
    pytest.param("~nosuchuser/foo-1.0-py3-none-any.whl", ["no such wheel file"],
                 id="unknown-user-wheel"),
    pytest.param("~nosuchuser/pkg", ["looks like a path"], id="unknown-user-path"),
    pytest.param("./", ["'./' is a directory, a project's source", "wheels only",
                        "python -m build --wheel"], id="project-dir"),
    pytest.param("./dist/foo-1.0.tar.gz", ["looks like a path", "name @ URL"],
                 id="sdist-path"),
    pytest.param("https://files.example/foo-1.0.tar.gz",
                 ["URL without a project name", "name @ URL"], id="bare-url"),
    pytest.param("https://files.example/not-a-wheel.whl", ["Invalid wheel filename"],
                 id="bad-wheel-url"),
    pytest.param("git+https://example.com/x.git", ["is a version-control URL", "wheels only"],
                 id="bare-vcs"),
    pytest.param("foo @ ./foo.whl", ["must be absolute"], id="relative-url"),
    pytest.param("foo=1.0", ["Invalid requirement", "Did you mean =="], id="single-equals"),
    pytest.param("foo==1.0 extra-junk", ["Invalid requirement"], id="garbage"),
    pytest.param("--no-binary :all:", ["--no-binary :all:: not supported", "wheels only"],
                 id="no-binary"),
    pytest.param("--use-feature=fast-deps", ["--use-feature"], id="use-feature"),
    pytest.param("--no-require-hashes", ["--no-require-hashes: not supported"],
                 id="no-require-hashes"),
    pytest.param("--frobnicate", ["no such option: --frobnicate"], id="unknown-option"),
    pytest.param("--index-url", ["requires 1 argument"], id="option-without-value"),
    pytest.param(f"--hash=sha256:{A256}", ["without a requirement", "\\"],
                 id="hash-without-requirement"),
    pytest.param("foo==1 --index-url https://x.example", ["only --hash", "--index-url"],
                 id="option-after-requirement"),
    pytest.param(f"foo==1 --hash=sha256:{A256} bar==2", ["unexpected 'bar==2'"],
                 id="two-requirements-on-a-line"),
    pytest.param(f"foo==1 --hash=md5:{'a' * 32}", ["'md5' is not allowed", "sha256"],
                 id="hash-md5"),
    pytest.param("foo==1 --hash=sha256:abc", ["64 hexadecimal characters, got 3"],
                 id="hash-too-short"),
    pytest.param(f"foo==1 --hash=sha256:{'g' * 64}", ["64 hexadecimal"], id="hash-not-hex"),
    pytest.param(f"foo==1 --hash={A256}", ["hash name followed by a value"],
                 id="hash-without-algorithm"),
    pytest.param("foo==1 --hash='sha256:x", ["No closing quotation"], id="unbalanced-quote"),
]


@pytest.mark.parametrize(("line", "words"), REFUSED)
def test_refused_lines_name_file_and_line(write: Write, line: str, words: list[str]) -> None:
    path = write("requirements.txt", f"# header\nok==1.0\n{line}\n")
    error = error_of(path)
    assert error.message.startswith(f"{path}:3: ")
    for word in words:
        assert word in error.message


def test_every_problem_is_reported_at_once(write: Write) -> None:
    path = write("r.txt", "ok==1\n-e .\nfoo=1\nbar==1 --hash=sha1:x\n")
    error = error_of(path)
    assert error.message.startswith(f"{path}:2: ")
    assert error.message.endswith("(and 2 more problems)")
    assert [d.split(": ", 1)[0] for d in error.details] == [f"{path}:{n}" for n in (2, 3, 4)]


def test_double_requirement_names_both_places(write: Write) -> None:
    a = write("a.txt", "Foo==1.0\n")
    b = write("b.txt", "# other\n\nfoo[x]==2.0\n")
    error = error_of(requirements=[a, b])
    assert "Double requirement given" in error.message
    assert f"{b}:3" in error.message and f"{a}:1" in error.message


def test_double_requirement_between_argument_and_file(write: Write) -> None:
    path = write("r.txt", "foo==2.0\n")
    error = error_of(requirements=[path], args=["foo==1.0"])
    assert f"{path}:1" in error.message and "command line" in error.message


def test_include_cycle_is_refused(write: Write) -> None:
    a = write("a.txt", "a==1\n-r b.txt\n")
    b = write("b.txt", "b==1\n-r a.txt\n")
    error = error_of(a)
    assert error.message.startswith(f"{b}:2: ")
    assert "includes itself" in error.message
    assert str(a.resolve()) in error.message and str(b.resolve()) in error.message


def test_self_include_is_refused(write: Write) -> None:
    a = write("a.txt", "-r ./a.txt\n")
    assert error_of(a).message.startswith(f"{a}:1: ")


def test_missing_include_names_the_including_line(write: Write, tmp_path: Path) -> None:
    a = write("a.txt", "x==1\n-c missing.txt\n")
    error = error_of(a)
    assert error.message.startswith(f"{a}:2: could not open constraints file ")
    assert str(tmp_path / "missing.txt") in error.message


def test_missing_file(tmp_path: Path) -> None:
    error = error_of(tmp_path / "nope.txt")
    assert error.message == f"could not open requirements file {tmp_path / 'nope.txt'}: " \
                            "No such file or directory"


@pytest.mark.parametrize(
    "name",
    ["https://example.com/requirements.txt", "http://example.com/constraints.txt"],
    ids=["https", "http"],
)
def test_url_files_are_refused(name: str) -> None:
    error = error_of(requirements=[name])
    assert "fetching requirements files from URLs is not supported; download it first" in str(
        error)


def test_url_include_is_refused(write: Write) -> None:
    path = write("r.txt", "-r https://example.com/r.txt\n")
    assert error_of(path).message.startswith(f"{path}:1: https://example.com/r.txt: fetching")


@pytest.mark.parametrize("name", ["pylock.toml", "pylock.dev.toml"])
def test_pylock_files_are_not_supported_yet(write: Write, name: str) -> None:
    path = write(name, "lock-version = '1.0'\n")
    assert "pylock.toml files are not supported yet" in error_of(path).message


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    path.write_bytes(b"# caf\xe9\nfoo==1\n")
    error = error_of(path)
    assert error.message.startswith(f"{path}: cannot be decoded")
    assert "coding" in error.message


def test_constraints_cannot_have_extras(write: Write) -> None:
    cons = write("c.txt", "foo[bar]==1\n")
    error = error_of(constraints=[cons])
    assert error.message.startswith(f"{cons}:1: constraints cannot have extras")


def test_invalid_command_line_requirement() -> None:
    with pytest.raises(RequirementsError, match=r"^command line: Invalid requirement: 'foo=1'"):
        parse_requirement("foo=1")


def test_command_line_problems_are_collected_with_file_problems(write: Write) -> None:
    path = write("r.txt", "-e .\n")
    error = error_of(requirements=[path], args=["./here"])
    assert [d.split(":", 1)[0] for d in error.details] == ["command line", str(path)]


# --- pip as the oracle ---------------------------------------------------------------

PIP_ORACLE = r"""
import json, sys
from pip._internal.network.session import PipSession
from pip._internal.req.req_file import parse_requirements
out = []
for r in parse_requirements(sys.argv[1], PipSession()):
    hashes = {k: sorted(v) for k, v in (r.options or {}).get("hashes", {}).items()}
    out.append([r.requirement, hashes, r.line_source, r.constraint])
print(json.dumps(out))
"""


def test_same_result_as_pips_own_parser(write: Write, tmp_path: Path) -> None:
    write("sub/c.txt", "pinned<3 # constraint\n")
    path = write(
        "requirements.txt",
        "# -*- coding: utf-8 -*-\n"
        "--index-url https://pypi.org/simple\n"
        "requests[socks]==2.31.0 \\\n"
        f"    --hash=sha256:{A256} \\\n"
        "    # a comment ends the continuation\n"
        f"idna==3.4 ; python_version >= \"3.8\" --hash sha256:{A256}\\\n"
        f"  --hash=sha512:{D512}\n"
        "attrs @ https://files.example/attrs-23.1.0-py3-none-any.whl\n"
        "six==${SIX_VERSION} #pinned\n"
        "-c sub/c.txt\n",
    )
    env = {"SIX_VERSION": "1.16.0"}
    ours = parse_files([path], environ=env)
    proc = subprocess.run(
        [sys.executable, "-c", PIP_ORACLE, str(path)],
        env={**env, "PIP_CONFIG_FILE": os.devnull, "PATH": os.environ.get("PATH", "")},
        capture_output=True, text=True, check=True,
    )
    theirs = json.loads(proc.stdout)
    mine = [
        [str(r.req), {k: sorted(v) for k, v in r.hashes.items()},
         "line {} of {}".format(*reversed(r.source.rsplit(":", 1))), r.is_constraint]
        for r in (*ours.requirements, *ours.constraints)
    ]
    normalized = [[str(parse_requirement(t[0]).req), *t[1:]] for t in theirs]
    # pip names nested files by absolute path, secinstall as written; compare the ends.
    for row in (*mine, *normalized):
        row[2] = row[2].replace(str(tmp_path) + os.sep, "")
    assert sorted(map(json.dumps, mine)) == sorted(map(json.dumps, normalized))
    assert ours.index_url == "https://pypi.org/simple"


def test_wheel_path_or_url_alone_names_its_project(tmp_path: Path) -> None:
    """As in pip, a wheel given by path or URL needs no `name @`: its file name names it."""
    wheel = tmp_path / "dist" / "Foo_Bar-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"not checked here")
    local = parse_requirement(str(wheel))
    assert local.req.name == "foo-bar"
    assert local.req.url == wheel.resolve().as_uri()
    remote = parse_requirement("https://files.example/foo-1.0-py3-none-any.whl")
    assert (remote.req.name, remote.req.url) == (
        "foo", "https://files.example/foo-1.0-py3-none-any.whl")
