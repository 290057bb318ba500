"""Licences: what a distribution's core metadata says it is licensed under, as one SPDX
expression (PEP 639 License-Expression, else the legacy License field, else the licence
trove classifiers), the one map from classifiers to SPDX ids, and whether an expression
passes an allow / deny list. The policy rules (`policy_checks.py`) and the SBOM's
components (`component.py`) both read licences through this module. packaging.licenses is
imported only when used."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

#: Trove classifiers that name exactly one SPDX licence (PEP 639 deprecates them; they are
#: read only when a distribution has no License-Expression). The others ("BSD License",
#: "Apache Software License", GPL without a version) name a family, so they map to
#: nothing: an SBOM records them as the named licences they are.
CLASSIFIER_SPDX: Mapping[str, str] = MappingProxyType({
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Zero-Clause BSD (0BSD)": "0BSD",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)":
        "GPL-2.0-or-later",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)":
        "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)":
        "LGPL-2.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)":
        "LGPL-3.0-or-later",
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)":
        "AGPL-3.0-or-later",
})


#: For the policy's allow / deny lists only: a family classifier that in practice means one
#: licence (Apache 1.x was retired in 2004; projects under 2.0 declare this classifier).
#: An allow list of Apache-2.0 would otherwise refuse every such distribution as unknown.
_POLICY_READINGS: Mapping[str, str] = MappingProxyType({
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
})


def classifier_spdx(classifier: str) -> str | None:
    """The SPDX id a trove classifier names, or None (not a licence, or a family)."""
    return CLASSIFIER_SPDX.get(classifier)


def license_expression(metadata: Mapping[str, Any]) -> tuple[str | None, str]:
    """(SPDX expression, where it was read) from core metadata as PEP 566 JSON."""
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    expression = metadata.get("license_expression")
    legacy = str(metadata.get("license") or "").strip()
    for text, where in ((expression, "License-Expression"), (legacy, "License field")):
        if text and len(str(text)) < 200 and "\n" not in str(text):
            try:
                return str(canonicalize_license_expression(str(text))), where
            except InvalidLicenseExpression:
                if where == "License-Expression":
                    return None, f"invalid License-Expression {text!r}"
    classifiers = [c for c in metadata.get("classifier") or () if c.startswith("License ::")]
    named = [c.rsplit(" :: ", 1)[-1] for c in classifiers]
    ids = [classifier_spdx(c) or _POLICY_READINGS.get(c) for c in classifiers]
    if ids and all(ids):
        # No rule says how several classifiers combine: AND is the safe reading.
        return " AND ".join(dict.fromkeys(i for i in ids if i)), "classifiers"
    what = [f"License field {legacy[:40]!r}"] if legacy else []
    what += [f"classifiers {', '.join(named)}"] if named else []
    return None, "no License-Expression" + (f"; {'; '.join(what)}" if what else "")


def license_problems(expression: str, allow: Iterable[str], deny: Iterable[str]) -> list[str]:
    """Why `expression` is not allowed (empty when it is): AND needs every part allowed,
    OR one of them; `X WITH exception` counts as X unless listed itself."""
    allowed = {a.casefold() for a in allow}
    denied = {d.casefold() for d in deny}
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    pos = 0

    def leaf() -> list[str]:
        nonlocal pos
        if tokens[pos] == "(":
            pos += 1
            result = either()
            pos += 1  # ")"
            return result
        name = tokens[pos]
        pos += 1
        if pos + 1 < len(tokens) and tokens[pos].upper() == "WITH":
            name, pos = f"{name} WITH {tokens[pos + 1]}", pos + 2
        keys = {name.casefold(), name.split(" WITH ")[0].casefold()}
        if name.casefold() in denied or (keys & denied and name.casefold() not in allowed):
            return [f"{name} is in licenses-deny"]
        if allowed and not keys & allowed:
            return [f"{name} is not in licenses-allow"]
        return []

    def both() -> list[str]:
        nonlocal pos
        found = leaf()
        while pos < len(tokens) and tokens[pos].upper() == "AND":
            pos += 1
            found += leaf()
        return found

    def either() -> list[str]:
        nonlocal pos
        options = [both()]
        while pos < len(tokens) and tokens[pos].upper() == "OR":
            pos += 1
            options.append(both())
        return [] if any(not o for o in options) else [p for o in options for p in o]

    return either()
