"""`--require-lock FILE`: whatever resolved the plan, install nothing the lock doesn't pin."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import ResolveError
from ..models import Plan, PlannedDist
from ..target import Target
from .pylock import plan_from_pylock


def restrict_to_lock(plan: Plan, lock_path: Path, target: Target) -> Plan:
    """`plan` with the lock's hashes as pins; anything the lock doesn't pin is refused."""
    locked, _ = plan_from_pylock(lock_path, target)
    by_name = {d.name: d for d in locked.items}
    problems, items = [], []
    for dist in plan.items:
        entry = by_name.get(dist.name)
        if entry is None or entry.version != dist.version:
            have = f" (it locks {entry.version})" if entry else ""
            problems.append(f"{dist.name} {dist.version} is not in {lock_path}{have}")
            continue
        items.append(dataclasses.replace(dist, pinned=_agreed(dist, entry, lock_path)))
    if problems:
        raise ResolveError(
            f"--require-lock {lock_path}: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            details=problems,
        )
    return dataclasses.replace(plan, items=tuple(items), require_hashes=True)


def _agreed(dist: PlannedDist, entry: PlannedDist, lock_path: Path) -> dict[str, frozenset[str]]:
    """The lock's hashes, narrowed to the user's own pins when there are both: a file
    must then satisfy both, never either."""
    if not dist.pinned:
        return dict(entry.pinned)
    common = {algo: dist.pinned[algo] & entry.pinned[algo]
              for algo in dist.pinned.keys() & entry.pinned.keys()}
    common = {algo: hashes for algo, hashes in common.items() if hashes}
    if not common:
        raise ResolveError(f"{dist.name} {dist.version}: your pinned hashes and those in "
                           f"{lock_path} have nothing in common")
    return common
