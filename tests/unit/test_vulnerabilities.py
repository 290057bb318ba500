"""Tests of secinstall.vulnerabilities without a network: OSV matching, a local OSV
database, the index's JSON API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.support.files import write
from tests.support.osv import RANGE, osv

from secinstall.errors import ConfigError
from secinstall.models import IndexFile
from secinstall.vulnerabilities import (
    PYPI_INDEXES,
    Advisory,
    OsvDatabase,
    audited_index,
    ignored,
    index_of,
    json_api_url,
    merge,
    osv_affects,
    parse_json_api,
)

INDEX = "https://index.example/simple/"


@pytest.mark.parametrize(("version", "affected"), [
    ("0.1", True), ("1.0", True), ("1.1a1", True), ("1.1", False), ("1.5", False),
    ("2.0", True), ("2.2", True), ("2.2.1", False), ("not a version", False),
], ids=lambda v: str(v))
def test_osv_ranges(version: str, affected: bool) -> None:
    assert osv_affects(osv("X", **RANGE)["affected"][0], version) is affected


def test_osv_versions_list_compares_normalised_versions() -> None:
    entry = osv("X", versions=["1.0", "2.0.0"])["affected"][0]
    assert osv_affects(entry, "1.0.0") and osv_affects(entry, "2.0")
    assert not osv_affects(entry, "1.0.1")


def test_osv_database(tmp_path: Path) -> None:
    write(tmp_path / "PYSEC-1.json", json.dumps(osv("PYSEC-1", "Lib", **RANGE)))
    write(tmp_path / "sub" / "GHSA-2.json", json.dumps({**osv("GHSA-2", versions=["1.0"]),
                                                        "aliases": ["PYSEC-1"]}))
    write(tmp_path / "W.json", json.dumps({**osv("W", versions=["1.0"]), "withdrawn": "2024"}))
    npm = osv("N", versions=["1.0"])
    npm["affected"][0]["package"]["ecosystem"] = "npm"
    write(tmp_path / "N.json", json.dumps(npm))
    db = OsvDatabase(tmp_path)
    found = merge(db.advisories("LIB", "1.0"))
    assert [(a.id, a.aliases, a.fixed_in) for a in found] == [
        ("PYSEC-1", ("CVE-PYSEC-1", "GHSA-2"), ("1.1",))]
    assert db.advisories("lib", "1.2") == []
    write(tmp_path / "broken.json", "{")
    with pytest.raises(ConfigError, match=r"broken\.json is not a readable OSV record"):
        OsvDatabase(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        OsvDatabase(tmp_path / "missing")


def test_json_api_answer_and_ignore_list() -> None:
    data = {"vulnerabilities": [
        {"id": "GHSA-a", "aliases": ["CVE-1"], "fixed_in": ["2.0"], "details": "Bad.\nMore",
         "link": "https://osv.dev/GHSA-a", "withdrawn": None},
        {"id": "PYSEC-b", "aliases": [], "fixed_in": [], "withdrawn": "2024-01-01"}]}
    found = parse_json_api(data, "https://x/pypi/lib/1.0/json")
    assert found == [Advisory("GHSA-a", ("CVE-1",), ("2.0",), "Bad.", "https://osv.dev/GHSA-a",
                              ("https://x/pypi/lib/1.0/json",))]
    assert found[0].describe() == "GHSA-a (CVE-1), fixed in 2.0"
    assert ignored(found[0], ["cve-1"]) and not ignored(found[0], ["CVE-2"])


def test_json_api_location() -> None:
    assert json_api_url("https://pypi.org/simple", "Foo_Bar", "1.0") == \
        "https://pypi.org/pypi/foo-bar/1.0/json"
    assert json_api_url("https://host/find-links/", "x", "1") is None
    pypi_file = IndexFile("x-1-py3-none-any.whl",
                          "https://files.pythonhosted.org/packages/x-1-py3-none-any.whl", {},
                          origin="pip report")
    assert index_of(pypi_file, []) == "https://pypi.org/simple/"
    listed = IndexFile("lib-1.0-py3-none-any.whl", "https://index.example/files/lib-1.0.whl",
                       {}, origin=INDEX)
    assert index_of(listed, [INDEX]) == INDEX
    assert index_of(listed, []) is None


def test_audit_asks_the_one_index_a_distribution_came_from() -> None:
    """`audit`'s rule is the install path's: the recorded index, else the PyPI instance of
    the file host; only if it is a vulnerability index; the first one when nothing is
    recorded (another tool installed it)."""
    private = "https://user:token@private.example/simple"
    test_pypi = IndexFile("x-1-py3-none-any.whl", "https://test-files.pythonhosted.org/"
                          "packages/x-1-py3-none-any.whl", {}, origin="/work/pylock.toml")
    assert audited_index(test_pypi, PYPI_INDEXES)[0] == "https://test.pypi.org/simple/"
    assert audited_index(test_pypi, PYPI_INDEXES[:1]) == (
        None, "installed by secinstall from https://test-files.pythonhosted.org/packages/"
              "x-1-py3-none-any.whl, which is not in vulnerability-indexes")
    # The fragment records the index without its credentials; it is asked with them.
    listed = IndexFile("lib-1.0-py3-none-any.whl", "https://private.example/files/lib.whl",
                       {}, origin="https://****@private.example/simple/")
    assert audited_index(listed, [*PYPI_INDEXES, private]) == (
        private, "installed by secinstall from https://****@private.example/simple/")
    assert audited_index(listed, PYPI_INDEXES)[0] is None
    assert audited_index(None, [INDEX, *PYPI_INDEXES])[0] == INDEX
    assert audited_index(None, []) == (None, "not installed by secinstall")
