"""Tests of secinstall.licenses: the SPDX expression read from core metadata, the one map
from trove classifiers to SPDX ids, and allow / deny lists on licence expressions."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.licenses import canonicalize_license_expression

from secinstall.licenses import (
    CLASSIFIER_SPDX,
    classifier_spdx,
    license_expression,
    license_problems,
)

# -- allow and deny lists ---------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "allow", "deny", "problems"), [
    ("MIT", ["MIT"], [], []),
    ("mit", ["MIT"], [], []),
    ("GPL-3.0-only", ["MIT"], [], ["GPL-3.0-only is not in licenses-allow"]),
    ("MIT OR GPL-3.0-only", ["MIT"], [], []),
    ("MIT AND GPL-3.0-only", ["MIT"], [], ["GPL-3.0-only is not in licenses-allow"]),
    ("(MIT AND GPL-3.0-only) OR Apache-2.0", ["MIT", "Apache-2.0"], ["GPL-3.0-only"], []),
    ("(MIT AND GPL-3.0-only) OR BSD-3-Clause", ["MIT"], ["GPL-3.0-only"],
     ["GPL-3.0-only is in licenses-deny", "BSD-3-Clause is not in licenses-allow"]),
    ("GPL-2.0-only WITH Classpath-exception-2.0", ["GPL-2.0-only"], [], []),
    ("GPL-2.0-only WITH Classpath-exception-2.0", [], ["GPL-2.0-only"],
     ["GPL-2.0-only WITH Classpath-exception-2.0 is in licenses-deny"]),
    ("AGPL-3.0-only", [], ["AGPL-3.0-only"], ["AGPL-3.0-only is in licenses-deny"]),
    ("MIT AND (Apache-2.0 OR AGPL-3.0-only)", [], ["AGPL-3.0-only"], []),
], ids=["allowed", "case", "not-allowed", "or-one-branch", "and-needs-all", "nested",
        "nested-refused", "with-base-allowed", "with-base-denied", "denied",
        "deny-avoided-by-or"])
def test_license_expressions(expression: str, allow: list[str], deny: list[str],
                             problems: list[str]) -> None:
    assert license_problems(expression, allow, deny) == problems


# -- the expression in core metadata ----------------------------------------------------------


@pytest.mark.parametrize(("metadata", "expected"), [
    ({"license_expression": "mit OR apache-2.0"}, ("MIT OR Apache-2.0", "License-Expression")),
    ({"license_expression": "MIT", "license": "GPL",
      "classifier": ["License :: OSI Approved :: GNU General Public License v3 (GPLv3)"]},
     ("MIT", "License-Expression")),
    ({"license": "Apache-2.0"}, ("Apache-2.0", "License field")),
    ({"classifier": ["License :: OSI Approved :: MIT License",
                     "License :: OSI Approved :: Apache Software License"]},
     ("MIT AND Apache-2.0", "classifiers")),
    ({"classifier": ["License :: OSI Approved :: BSD License"]},
     (None, "no License-Expression; classifiers BSD License")),
    ({"license": "BSD-like, see LICENSE"},
     (None, "no License-Expression; License field 'BSD-like, see LICENSE'")),
    ({"license_expression": "Apache 2"}, (None, "invalid License-Expression 'Apache 2'")),
    ({}, (None, "no License-Expression")),
], ids=["expression", "expression-wins", "legacy-spdx", "classifiers", "ambiguous-classifier",
        "free-text", "invalid", "nothing"])
def test_license_expression_from_metadata(metadata: dict[str, Any],
                                          expected: tuple[str | None, str]) -> None:
    assert license_expression(metadata) == expected


@pytest.mark.parametrize(("classifier", "spdx"), [
    ("License :: OSI Approved :: Zero-Clause BSD (0BSD)", "0BSD"),
    ("License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication", "CC0-1.0"),
    ("License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)", "BSL-1.0"),
    ("License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)", "EPL-2.0"),
    ("License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)",
     "LGPL-2.0-or-later"),
], ids=["0BSD", "CC0", "BSL", "EPL", "LGPLv2+"])
def test_classifiers_the_sbom_knew_give_an_expression(classifier: str, spdx: str) -> None:
    # Once only the SBOM's map had these; the policy found no expression in them.
    assert license_expression({"classifier": [classifier]}) == (spdx, "classifiers")
    assert license_expression({"classifier": [classifier,
                                              "License :: OSI Approved :: MIT License"]}) == (
        f"{spdx} AND MIT", "classifiers")


# -- the classifier map -----------------------------------------------------------------------


def test_every_classifier_names_one_canonical_spdx_id() -> None:
    assert len(CLASSIFIER_SPDX) >= 20
    for classifier, spdx in CLASSIFIER_SPDX.items():
        assert classifier.startswith("License :: "), classifier
        assert classifier_spdx(classifier) == spdx
        assert str(canonicalize_license_expression(spdx)) == spdx, classifier
        assert " " not in spdx, classifier


@pytest.mark.parametrize(("classifier", "spdx"), [
    ("License :: OSI Approved :: Apache Software License", None),
    ("License :: OSI Approved :: MIT License", "MIT"),
    ("License :: OSI Approved :: BSD License", None),
    ("License :: OSI Approved :: GNU General Public License (GPL)", None),
    ("License :: OSI Approved", None),
    ("MIT License", None),
    ("Programming Language :: Python :: 3", None),
], ids=["apache-family", "mit", "bsd-family", "gpl-family", "bare-osi", "last-segment-only",
        "not-a-licence"])
def test_classifier_spdx(classifier: str, spdx: str | None) -> None:
    assert classifier_spdx(classifier) == spdx
