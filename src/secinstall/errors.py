"""The exception tree: one `SecinstallError` root and a subclass per pipeline stage.

Messages are for users: they name the file or project, say what was expected and what
was found, and (where there is one) the flag that changes the outcome. `details` holds
extra lines shown with `-v`.
"""

from __future__ import annotations

from collections.abc import Sequence


def first_few(items: Sequence[str], limit: int = 5, sep: str = ", ") -> str:
    """`items` joined with `sep`, cut after the first `limit` (for a warning; -v lists
    them all)."""
    if len(items) <= limit:
        return sep.join(items)
    return sep.join([*items[:limit], f"and {len(items) - limit} more (-v lists them)"])


class SecinstallError(Exception):
    """Base of every error secinstall raises on purpose."""

    #: Process exit code the CLI uses for this error.
    exit_code = 1

    def __init__(self, message: str, *, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        #: What the run had to say before it failed (e.g. a transaction it recovered):
        #: shown as warnings, as they would have been after a success.
        self.notes: list[str] = []

    def __str__(self) -> str:
        return self.message


class ConfigError(SecinstallError):
    """Bad options, configuration files or environment variables."""


class RequirementsError(SecinstallError):
    """A requirements or constraints file (or argument) that can't be used."""


class TargetError(SecinstallError):
    """The target interpreter or directory can't be used."""


class ExternallyManagedError(TargetError):
    """The target environment is externally managed (PEP 668): its distributor's tools
    install into it, not pip or secinstall, unless --break-system-packages is given."""


class VirtualenvRequiredError(TargetError):
    """--require-virtualenv, and the target is not in a virtual environment."""

    exit_code = 3  # pip's VIRTUALENV_NOT_FOUND


class ResolveError(SecinstallError):
    """What to install could not be decided."""


class HashesRequiredError(ResolveError):
    """Hash-checking mode is on and some distributions have no pinned hash."""


class SdistRefusedError(ResolveError):
    """Only a source distribution exists, and building runs arbitrary code."""


class TLSError(SecinstallError):
    """A secure connection could not be set up (fails closed, never falls back)."""


class FetchError(SecinstallError):
    """A download or index request failed."""


class NoVulnerabilityData(FetchError):
    """An index's JSON API answered 404 or 410 for a version: it has no vulnerability data
    to give, which must not be taken for "no known vulnerabilities"."""

    def __init__(self, message: str, *, url: str, status: int) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class VerificationError(SecinstallError):
    """A distribution did not pass verification."""


class HashMismatchError(VerificationError):
    """A file's sha256 differs from a hash known for it."""


class AttestationError(VerificationError):
    """A PEP 740 attestation or provenance object did not verify."""


class PublisherDriftError(AttestationError):
    """A project's verified publisher differs from the one trusted before."""


class PolicyError(VerificationError):
    """A verified distribution is not allowed by the policy."""


class WheelError(VerificationError):
    """A wheel is malformed or does not fit the target."""


class InstallError(SecinstallError):
    """Writing to the environment failed; the transaction was rolled back."""


class LockedError(InstallError):
    """Another secinstall process holds the environment's lock."""
