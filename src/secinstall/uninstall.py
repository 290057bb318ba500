"""Uninstall distributions as pip does (every file their RECORD lists, and their modules'
bytecode), as one transaction under the environment's lock, recorded by an SBOM fragment
like an install."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from .errors import InstallError, SecinstallError
from .install import find_installed, remove_distribution
from .models import InstalledDist
from .target import Target
from .transaction import Transaction, environment_change


@dataclass
class Uninstalled:
    """What an uninstall did."""

    #: Each distribution removed, with the number of its files removed.
    removed: list[tuple[InstalledDist, int]] = field(default_factory=list)
    #: The names given that are not installed (skipped, as pip skips them).
    skipped: list[str] = field(default_factory=list)
    #: Warnings: a transaction recovered first, files left alone, no fragment written.
    notes: list[str] = field(default_factory=list)
    #: The SBOM fragment that records the removal.
    sbom: Path | None = None


def uninstall(target: Target, names: Sequence[str], *, weakened: Sequence[str] = (),
              log: Callable[[str], None] = lambda _m: None) -> Uninstalled:
    """Remove the distributions `names` from `target`, all or none of them."""
    done = Uninstalled()
    with environment_change(target.state_dir, log) as recovered:
        done.notes += recovered
        try:
            _remove(target, names, weakened, done)
        except SecinstallError as exc:
            exc.notes[:0] = done.notes
            raise
    return done


def _remove(target: Target, names: Sequence[str], weakened: Sequence[str],
            done: Uninstalled) -> None:
    installed = find_installed(target)
    found: dict[str, InstalledDist] = {}
    for name in names:
        key = canonicalize_name(name)
        if key in installed:
            found.setdefault(key, installed[key])
        elif name not in done.skipped:
            done.skipped.append(name)
    for dist in found.values():
        _refuse_without_record(dist)
    if not found:
        return
    try:
        with Transaction(target.state_dir) as txn:
            for dist in found.values():
                before = txn.moved
                done.notes += remove_distribution(txn, dist, target)
                done.removed.append((dist, txn.moved - before))
            from .sbom import write_removal_fragment

            done.sbom = write_removal_fragment(txn, target, list(found.values()),
                                               weakened=weakened, notes=done.notes)
            txn.commit()
    except SecinstallError as exc:
        # Said only now that the transaction's undo has run.
        exc.message += "; every change was rolled back, nothing was uninstalled"
        raise


def _refuse_without_record(dist: InstalledDist) -> None:
    """pip refuses a distribution without RECORD (`UninstallMissingRecord`): which files
    are its is not known. Checked for every name before anything is removed."""
    record = dist.dist_info / "RECORD"
    if record.is_file():
        return
    by = f" (its INSTALLER says {dist.installer})" if dist.installer else ""
    raise InstallError(
        f"Cannot uninstall {dist.name} {dist.version}: no RECORD file was found in "
        f"{dist.dist_info}, so which files are its is not known{by}. Remove it with the "
        "tool that installed it, or delete its files and that directory by hand. Nothing "
        "was uninstalled.")
