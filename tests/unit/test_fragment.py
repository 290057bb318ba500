"""The SBOM fragment built in a process of its own: the same text as built here, and
nothing lost when that process can't do it."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from tests.support.sbom import INDEX, dist, outcome, schema_errors

from secinstall import fragment
from secinstall.fragment import NICENESS, FragmentBuilder
from secinstall.pipeline import Outcome
from secinstall.sbom import fragment_json
from secinstall.target import Target
from secinstall.unpack import Unpacked

BUNDLED = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
           "components": [{"type": "library", "name": "zlib", "version": "1.3.1",
                           "bom-ref": "zlib", "licenses": [{"license": {"id": "Zlib"}}]}]}


def with_tree(tmp_path: Path, result: Outcome) -> Outcome:
    """`result` with an unpacked tree for each wheel; the first one's bundles a PEP 770
    SBOM."""
    infos, trees = dict(result.wheel_info), []
    for n, v in enumerate(result.verified):
        info = dataclasses.replace(infos[v.dist.name],
                                   dist_info_dir=f"{v.dist.name}-{v.dist.version}.dist-info")
        root = tmp_path / f"tree-{n}"
        (root / info.dist_info_dir).mkdir(parents=True)
        if n == 0:
            sboms = root / info.dist_info_dir / "sboms"
            sboms.mkdir()
            (sboms / "zlib.cdx.json").write_text(json.dumps(BUNDLED), encoding="utf-8")
        infos[v.dist.name] = info
        trees.append(Unpacked(v.fetched, info, root, {}))
    return dataclasses.replace(result, wheel_info=infos, unpacked=trees)


def comparable(text: str) -> dict[str, Any]:
    """The document without what differs from one build to the next."""
    document: dict[str, Any] = json.loads(text)
    document.pop("serialNumber")
    document["metadata"].pop("timestamp")
    return document


def test_the_process_builds_the_same_fragment(target: Target, tmp_path: Path) -> None:
    result = with_tree(tmp_path, outcome(
        target, dist("demo", "1.0", meta={"license_expression": "MIT"}),
        dist("app", "2.0", requires=["demo"])))
    builder = FragmentBuilder()
    try:
        for v, tree in zip(result.verified, result.unpacked, strict=True):
            builder.verified(v, tree)  # its part is made now, before the rest is known
        builder.send(result, indexes=[INDEX], weakened=["attestations off"])
        built = builder.result()
    finally:
        builder.close()

    assert built is not None
    text, when = built
    assert when.tzinfo is not None
    here = fragment_json(result, indexes=[INDEX], weakened=["attestations off"])
    assert comparable(text) == comparable(here)
    assert schema_errors(text) is None
    demo = next(c for c in json.loads(text)["components"] if c["name"] == "demo")
    assert [c["name"] for c in demo["components"]] == ["zlib"]


# "part missing": the install's facts name a distribution it was never given.
@pytest.mark.parametrize("how", ["no interpreter", "fails", "says nothing useful", "closed",
                                 "part missing"])
def test_a_failed_process_leaves_the_fragment_to_this_one(
        target: Target, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "no interpreter":
        monkeypatch.setattr(sys, "executable", str(Path(sys.prefix) / "no-such-python"))
    elif how == "fails":
        monkeypatch.setattr(fragment, "_CHILD", "import sys; sys.stdin.read(); sys.exit(3)")
    elif how == "says nothing useful":
        monkeypatch.setattr(fragment, "_CHILD", "import sys; sys.stdin.read(); print('{')")
    builder = FragmentBuilder()
    if how == "closed":
        builder.close()
    builder.send(outcome(target, dist("demo", "1.0")), indexes=[INDEX], weakened=[])
    assert builder.result() is None
    builder.close()  # again: harmless


def test_a_process_gone_mid_message_leaves_no_pipe_open(
        target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child exits while the writer is sending more than a pipe holds: the writer
    meets a broken pipe, and `result` still closes both ends (a pipe left open is a
    ResourceWarning, which is an error in the tests and noise for users)."""
    monkeypatch.setattr(fragment, "_CHILD", "import sys; sys.exit(3)")
    big = outcome(target, dist("demo", "1.0", meta={"summary": "x" * 1_000_000}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        builder = FragmentBuilder()
        builder.send(big, indexes=[INDEX], weakened=[])
        assert builder.result() is None
        del builder
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no process priorities here")
def test_the_process_runs_at_a_lower_priority_than_the_install() -> None:
    # On a two-core CI runner its work otherwise slows the verifying threads down.
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    builder = FragmentBuilder()
    try:
        proc = builder._proc
        assert proc is not None
        niceness = ours
        deadline = time.monotonic() + 30
        # The child lowers its priority first thing; until then it has ours.
        while niceness == ours and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
            niceness = os.getpriority(os.PRIO_PROCESS, proc.pid)
        assert niceness == min(19, ours + NICENESS)
    finally:
        builder.close()
