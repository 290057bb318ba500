"""What an install leaves broken in its environment, said as pip says it after an install:
a distribution that requires another which is not installed, or not in a version its
requirement accepts. pip's resolver, which secinstall runs, plans only what it is asked
for: a pin (`packaging==25.0`), `--no-deps` elsewhere or a lock can still leave another
distribution's requirement unmet, and it would otherwise go unsaid until that one fails.

pip's rule (`check_install_conflicts`): only the distributions the install touched are
looked at, with those that require one of them; requirements are evaluated for the
target without extras. A warning, as in pip: the install stands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion

from .install import installed_requires
from .models import InstalledDist
from .target import applies

#: pip's own words before the list (it runs no resolver over what is already installed).
HEADLINE = ("this install leaves dependency conflicts in the environment (pip's resolver "
            "does not take into account all the packages that are installed):")


def find_conflicts(installed: Mapping[NormalizedName, InstalledDist],
                   changed: Mapping[NormalizedName, Sequence[str]],
                   markers: Mapping[str, str]) -> list[str]:
    """pip's lines for what is wrong, after an install, among `changed` (the
    distributions it installed, with their Requires-Dist) and the distributions of
    `installed` (the environment now) that require one of them (their METADATA read)."""
    requires = {name: _parsed(texts) for name, texts in changed.items()}
    affected = set(changed)
    for name, other in installed.items():
        if name not in affected:
            requires[name] = _parsed(installed_requires(other))
            if any(canonicalize_name(r.name) in changed for r in requires[name]):
                affected.add(name)
    lines = []
    for name in sorted(affected):
        if (dist := installed.get(name)) is None:  # not there after all: nothing to judge
            continue
        for req in requires[name]:
            if not applies(req, markers):
                continue
            have = installed.get(canonicalize_name(req.name))
            if have is None:
                lines.append(f"{dist.name} {dist.version} requires {req}, which is not "
                             "installed.")
            elif not _accepts(req, have.version):
                lines.append(f"{dist.name} {dist.version} requires {req}, but you have "
                             f"{have.name} {have.version} which is incompatible.")
    return lines


def _parsed(texts: Iterable[str]) -> list[Requirement]:
    found = []
    for text in texts:
        try:
            found.append(Requirement(text))
        except InvalidRequirement:  # another tool's metadata: not this check's business
            continue
    return found


def _accepts(req: Requirement, version: str) -> bool:
    try:
        return req.specifier.contains(version, prereleases=True)
    except InvalidVersion:  # a legacy version no specifier can judge: not reported
        return True
