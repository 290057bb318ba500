"""Tests of secinstall.index: PEP 691 JSON and PEP 503 HTML pages, find-links, the Finder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import faults
from tests.support.index import LocalIndex
from tests.support.wheels import WheelMaker, build_sdist

from secinstall.client import Client
from secinstall.errors import FetchError
from secinstall.index import Finder, fetch_project, list_find_links, parse_html, parse_json
from secinstall.models import IndexFile
from secinstall.tls import create_context

PAGE = "https://mirror.example/simple/demo/"
SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture
def client(ca_file: Path) -> Iterator[Client]:
    with Client(ssl_context=create_context([ca_file]), retries=0) as made:
        yield made


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- PEP 691 JSON -------------------------------------------------------------------------------


def test_parse_json_realistic_page() -> None:
    page = {
        "meta": {"api-version": "1.3", "_last-serial": 42},
        "name": "demo",
        "versions": ["1.0", "2.0"],
        "files": [
            {   # relative URL, several hashes (md5 is not one we use), yanked without reason
                "filename": "demo-1.0-py3-none-any.whl",
                "url": "../../files/demo-1.0-py3-none-any.whl",
                "hashes": {"sha256": SHA_A.upper(), "md5": "c" * 32, "blake2b_256": "d" * 64},
                "requires-python": ">=3.8",
                "yanked": True,
                "size": 1234,
                "upload-time": "2024-01-02T03:04:05.000000Z",
                "core-metadata": {"sha256": "e" * 64},
            },
            {   # absolute URL elsewhere, yanked with a reason, provenance (api 1.3)
                "filename": "demo-2.0.tar.gz",
                "url": "https://files.example/demo-2.0.tar.gz",
                "hashes": {"sha256": SHA_B},
                "requires-python": None,
                "yanked": "broken build",
                "provenance": "/integrity/demo-2.0.tar.gz.provenance",
            },
            {   # the least an index must give
                "filename": "demo-2.0-py3-none-any.whl",
                "url": "demo-2.0-py3-none-any.whl",
                "hashes": {},
                "yanked": False,
            },
        ],
    }
    files = parse_json(json.dumps(page).encode(), PAGE, "https://mirror.example/simple/")
    assert files == [
        IndexFile(
            filename="demo-1.0-py3-none-any.whl",
            url="https://mirror.example/files/demo-1.0-py3-none-any.whl",
            hashes={"sha256": SHA_A},
            requires_python=">=3.8",
            yanked="",
            upload_time="2024-01-02T03:04:05.000000Z",
            size=1234,
            origin="https://mirror.example/simple/",
        ),
        IndexFile(
            filename="demo-2.0.tar.gz",
            url="https://files.example/demo-2.0.tar.gz",
            hashes={"sha256": SHA_B},
            yanked="broken build",
            provenance_url="https://mirror.example/integrity/demo-2.0.tar.gz.provenance",
            origin="https://mirror.example/simple/",
        ),
        IndexFile(
            filename="demo-2.0-py3-none-any.whl",
            url="https://mirror.example/simple/demo/demo-2.0-py3-none-any.whl",
            hashes={},
            origin="https://mirror.example/simple/",
        ),
    ]


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b'{"meta": {}, "name": "demo"}', b'{"files": [{"url": "x"}]}',
     b'{"files": 3}', b"[]"],
    ids=["html", "no-files", "no-filename", "files-not-a-list", "not-an-object"],
)
def test_parse_json_malformed_names_the_page(body: bytes) -> None:
    with pytest.raises(FetchError) as info:
        parse_json(body, PAGE, "origin")
    assert info.value.message.startswith(f"{PAGE} is not a valid PEP 691 JSON project page")


# -- PEP 503 HTML -------------------------------------------------------------------------------


HTML_PAGE = f"""<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.1">
    <title>Links for demo</title>
  </head>
  <body>
    <h1>Links for demo</h1>
    <a href="../../files/demo-1.0-py3-none-any.whl#sha256={SHA_A.upper()}"
       data-requires-python="&gt;=3.8,&lt;4">demo-1.0-py3-none-any.whl</a><br/>
    <A HREF="https://files.example/demo-1.1.tar.gz#md5=0123" DATA-YANKED="">demo-1.1.tar.gz</A>
    <a href="demo%2Bextra-1.2-py3-none-any.whl#sha512={"f" * 128}"
       data-yanked="bad &amp; broken">demo+extra-1.2</a>
    <a href="demo-2.0-py3-none-any.whl" data-provenance="demo-2.0-py3-none-any.whl.provenance"
       data-dist-info-metadata="sha256={SHA_B}">demo-2.0</a>
    <a href="../">parent</a>
    <a href="demo-2.0.txt">notes</a>
    <a name="anchor-without-href">nothing</a>
    <a href="demo-3.0-py3-none-any.whl.metadata">metadata</a>
  </body>
</html>
"""


def test_parse_html_realistic_page() -> None:
    files = parse_html(HTML_PAGE.encode(), PAGE, "origin")
    assert files == [
        IndexFile(
            filename="demo-1.0-py3-none-any.whl",
            url="https://mirror.example/files/demo-1.0-py3-none-any.whl",
            hashes={"sha256": SHA_A},
            requires_python=">=3.8,<4",
            origin="origin",
        ),
        IndexFile(
            filename="demo-1.1.tar.gz",
            url="https://files.example/demo-1.1.tar.gz",
            hashes={},  # md5 is not a hash secinstall trusts
            yanked="",
            origin="origin",
        ),
        IndexFile(
            filename="demo+extra-1.2-py3-none-any.whl",
            url="https://mirror.example/simple/demo/demo%2Bextra-1.2-py3-none-any.whl",
            hashes={"sha512": "f" * 128},
            yanked="bad & broken",
            origin="origin",
        ),
        IndexFile(
            filename="demo-2.0-py3-none-any.whl",
            url="https://mirror.example/simple/demo/demo-2.0-py3-none-any.whl",
            hashes={},
            provenance_url=(
                "https://mirror.example/simple/demo/demo-2.0-py3-none-any.whl.provenance"),
            origin="origin",
        ),
    ]


def test_parse_html_base_element() -> None:
    page = (b'<html><head><base href="/mirror/pkgs/"></head><body>'
            b'<a href="demo-1.0-py3-none-any.whl#sha256=' + SHA_A.encode() + b'">d</a>'
            b'<a href="demo-1.0.tar.gz" data-provenance="prov/demo-1.0.tar.gz.provenance">s</a>'
            b"</body></html>")
    files = parse_html(page, PAGE, "origin")
    assert [f.url for f in files] == [
        "https://mirror.example/mirror/pkgs/demo-1.0-py3-none-any.whl",
        "https://mirror.example/mirror/pkgs/demo-1.0.tar.gz",
    ]
    assert files[1].provenance_url == (
        "https://mirror.example/mirror/pkgs/prov/demo-1.0.tar.gz.provenance")


def test_parse_html_yanked_attribute_without_value() -> None:
    # `<a data-yanked>` is the attribute with an empty value (HTML), i.e. yanked, no reason.
    page = b'<a href="demo-1.0-py3-none-any.whl" data-yanked>demo</a>'
    assert [f.yanked for f in parse_html(page, PAGE, "origin")] == [""]


def test_parse_html_empty_page() -> None:
    assert parse_html(b"<html><body><h1>nothing here</h1></body></html>", PAGE, "o") == []


# -- against the local index -----------------------------------------------------------------------


def test_fetch_project_json(client: Client, index: LocalIndex, make_wheel: WheelMaker,
                            tmp_path: Path) -> None:
    old = make_wheel("Demo.Pkg", "1.0")
    new = make_wheel("demo-pkg", "2.0")
    sdist = build_sdist(tmp_path, "demo-pkg", "2.0")
    index.add(old, yanked="broken", upload_time="2024-01-02T03:04:05.000000Z")
    index.add(new, provenance=b"{}", requires_python=">=3.10")
    index.add(sdist, yanked="")
    index.add(make_wheel("other", "1.0"))

    files = fetch_project(client, index.url, "Demo_Pkg")

    assert index.requests == ["/simple/demo-pkg/"]  # asked by its normalised name
    by_name = {f.filename: f for f in files}
    assert sorted(by_name) == sorted([old.name, new.name, sdist.name])
    assert by_name[old.name] == IndexFile(
        filename=old.name, url=f"{index.base_url}/files/{old.name}",
        hashes={"sha256": _sha256(old)}, yanked="broken",
        upload_time="2024-01-02T03:04:05.000000Z", size=old.stat().st_size, origin=index.url,
    )
    assert by_name[new.name].requires_python == ">=3.10"
    assert by_name[new.name].provenance_url == f"{index.base_url}/files/{new.name}.provenance"
    assert by_name[new.name].yanked is None
    assert by_name[sdist.name].yanked == ""


def test_html_page_says_what_the_json_page_says(
    client: Client, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    """The index's PEP 503 page (which it serves to clients that prefer HTML) parses to the
    same files as its PEP 691 page, except for what HTML can't carry (size, upload time)."""
    index.add(make_wheel("demo", "1.0"), yanked="", upload_time="2024-01-02T03:04:05Z")
    index.add(make_wheel("demo", "1.1"), yanked="no <good> & bad", requires_python=">=3.8,<4")
    index.add(make_wheel("demo", "2.0"), provenance=b"{}")

    from_json = fetch_project(client, index.url, "demo")
    page = client.get(index.url + "demo/", accept="text/html")
    assert page.headers["Content-Type"] == "text/html"
    from_html = parse_html(page.body, page.url, index.url)

    assert len(from_json) == 3
    assert from_html == [dataclasses.replace(f, size=None, upload_time=None) for f in from_json]


def test_fetch_project_html_from_a_file_index(client: Client, tmp_path: Path) -> None:
    """A PEP 503 index on disk (`--index-url file://...`) is read as HTML."""
    project = tmp_path / "simple" / "demo"
    project.mkdir(parents=True)
    (project / "index.html").write_text(
        '<a href="../../files/demo-1.0-py3-none-any.whl#sha256=' + SHA_A
        + '" data-requires-python="&gt;=3.8">demo-1.0-py3-none-any.whl</a>\n')
    index_url = (tmp_path / "simple").as_uri() + "/"

    files = fetch_project(client, index_url, "Demo")

    assert files == [IndexFile(
        filename="demo-1.0-py3-none-any.whl",
        url=(tmp_path / "files" / "demo-1.0-py3-none-any.whl").as_uri(),
        hashes={"sha256": SHA_A}, requires_python=">=3.8", origin=index_url,
    )]
    assert fetch_project(client, index_url, "missing") == []


def test_fetch_project_unknown_is_empty(client: Client, index: LocalIndex) -> None:
    assert fetch_project(client, index.url, "no-such-project") == []


def test_fetch_project_broken_json_is_an_error(
    client: Client, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    index.add(make_wheel("demo", "1.0"))
    index.misbehave("/simple/demo/", faults.body(b'{"files": [{"url": "x"}]}'))
    with pytest.raises(FetchError, match=f"{index.url}demo/ is not a valid PEP 691"):
        fetch_project(client, index.url, "demo")


# -- find-links -----------------------------------------------------------------------------------


def test_list_find_links_directory(client: Client, tmp_path: Path, make_wheel: WheelMaker) -> None:
    links = tmp_path / "links"
    links.mkdir()
    wheel = make_wheel("demo", "1.0")
    (links / wheel.name).write_bytes(wheel.read_bytes())
    sdist = build_sdist(links, "demo", "0.9")
    (links / "README.txt").write_text("not a distribution\n")
    (links / "sub.whl.d").mkdir()

    expected = [
        IndexFile(filename=name, url=(links / name).as_uri(), hashes={}, origin=str(links))
        for name in sorted([wheel.name, sdist.name])
    ]
    assert list_find_links(client, str(links)) == expected
    as_url = list_find_links(client, links.as_uri())
    assert [(f.filename, f.url) for f in as_url] == [(f.filename, f.url) for f in expected]
    one = list_find_links(client, str(links / wheel.name))
    assert [f.filename for f in one] == [wheel.name]
    assert list_find_links(client, str(tmp_path / "missing")) == []


def test_list_find_links_html_page(
    client: Client, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    wheel = make_wheel("demo", "1.0")
    index.add(wheel)
    files = list_find_links(client, index.url + "demo/")
    assert [(f.filename, dict(f.hashes)) for f in files] == [
        (wheel.name, {"sha256": _sha256(wheel)})]
    assert list_find_links(client, index.url + "missing/") == []


def test_finder_files_many(
    client: Client, index: LocalIndex, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    index.add(make_wheel("demo-pkg", "1.0"))
    index.add(make_wheel("other", "2.0"))
    links = tmp_path / "links"
    links.mkdir()
    local = make_wheel("demo_pkg", "1.1")
    (links / local.name).write_bytes(local.read_bytes())
    unrelated = make_wheel("third", "3.0")
    (links / unrelated.name).write_bytes(unrelated.read_bytes())

    finder = Finder(client, [index.url], [str(links)])
    found = finder.files_many(["Demo.Pkg", "other", "missing"], workers=3)

    assert list(found) == ["Demo.Pkg", "other", "missing"]
    assert [f.filename for f in found["Demo.Pkg"]] == [
        "demo_pkg-1.0-py3-none-any.whl", "demo_pkg-1.1-py3-none-any.whl"]
    assert [f.origin for f in found["Demo.Pkg"]] == [index.url, str(links)]
    assert [f.filename for f in found["other"]] == ["other-2.0-py3-none-any.whl"]
    assert found["missing"] == []
    assert sorted(index.requests) == ["/simple/demo-pkg/", "/simple/missing/", "/simple/other/"]


def test_finder_without_indexes_uses_only_find_links(
    client: Client, index: LocalIndex, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    wheel = make_wheel("demo", "1.0")
    index.add(wheel)
    finder = Finder(client, [], [index.url + "demo/"])
    assert [f.filename for f in finder.files("demo")] == [wheel.name]
    assert finder.files("other") == []
    assert index.requests == ["/simple/demo/"]  # the find-links page is read once
