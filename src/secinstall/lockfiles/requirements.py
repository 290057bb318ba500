"""Hashed requirements files (pip's `--require-hashes` format) written from a verified run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..errors import RequirementsError
from ..files import write_file
from ..models import VerifiedDist

if TYPE_CHECKING:
    from ..pipeline import Outcome

#: The hash algorithms pip accepts in `--hash` (its STRONG_HASHES); locks are written with them.
STRONG_HASHES = ("sha256", "sha384", "sha512")


def verified_dists(outcome: Outcome, what: str) -> list[VerifiedDist]:
    """The verified distributions of `outcome`, sorted by name; refuses an incomplete run.

    A lock must list every planned distribution with the hashes of a file that was
    downloaded and verified; one that was skipped (already installed) has none.
    """
    verified = {v.dist.name: v for v in outcome.verified}
    missing = sorted(f"{d.name}=={d.version}" for d in outcome.plan.items
                     if d.name not in verified)
    if missing:
        raise RequirementsError(
            f"can't write {what}: {len(missing)} planned distribution(s) were not downloaded "
            f"and verified in this run (already installed?): {', '.join(missing)}",
        )
    return [verified[name] for name in sorted(verified)]


def target_line(outcome: Outcome) -> str:
    target = outcome.target
    tag = target.tags[0] if target.tags else "no tags"
    return f"Python {target.python_version} ({tag})"


def requirements_text(outcome: Outcome, *, filename: str = "requirements.txt") -> str:
    """The hashed requirements file for `outcome`, one `name==version` per distribution."""
    lines = [
        f"# Written by secinstall {__version__} from a verified resolution for "
        f"{target_line(outcome)}.",
        "# Every hash is of the file secinstall downloaded and verified; other platforms",
        "# or Python versions may need other files. Install with:",
        f"#     python -m secinstall install --require-hashes -r {filename}",
    ]
    for v in verified_dists(outcome, filename):
        hashes = [f"--hash={a}:{h}" for a, h in sorted(v.fetched.hashes.items())
                  if a in STRONG_HASHES]
        lines.append(f"{v.dist.name}=={v.dist.version} \\")
        lines += [f"    {h} \\" for h in hashes[:-1]]
        lines.append(f"    {hashes[-1]}")
        if v.dist.via:
            lines.append(f"    # via {', '.join(v.dist.via)}")
    return "\n".join(lines) + "\n"


def write_requirements(outcome: Outcome, path: Path) -> None:
    """Write `requirements_text(outcome)` to `path` (replacing it in one step)."""
    write_file(path, requirements_text(outcome, filename=path.name), RequirementsError)
