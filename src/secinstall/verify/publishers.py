"""The publisher policy: which files need provenance, who may publish each project
(pins), and trust on first use — the first verified publisher of a project is recorded
in the environment, and a later change (an account or CI takeover looks like this) is
refused until the user accepts it."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName

from ..errors import AttestationError, PublisherDriftError
from ..files import write_atomic
from ..models import AttestationEvidence, AttestationPolicy, FetchedFile, Publisher

TRUST_FILE = "publishers.json"


def same_publisher(a: Publisher, b: Publisher) -> bool:
    """Same kind and repository (GitHub and GitLab names are case-insensitive)."""
    return a.kind == b.kind and a.repository.lower() == b.repository.lower()


class TrustFile:
    """`<env>/.secinstall/publishers.json`: the trusted publisher of each project."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / TRUST_FILE
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.entries = dict(data.get("projects", {}))
            # Checked now, so a hand-edited file fails here with a message, not later.
            for entry in self.entries.values():
                publisher = entry["publisher"]
                if not isinstance(publisher["kind"], str) \
                        or not isinstance(publisher["repository"], str):
                    raise ValueError("a publisher's kind and repository must be strings")
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
            reason = f"no {exc} in an entry" if isinstance(exc, KeyError) else str(exc)
            raise AttestationError(
                f"the trusted-publisher file {self.path} is unreadable ({reason}); fix or "
                "remove it (removing it forgets every trusted publisher)",
            ) from exc

    def trusted(self, name: NormalizedName) -> Publisher | None:
        entry = self.entries.get(name)
        if not entry:
            return None
        p = entry["publisher"]
        return Publisher(p["kind"], p["repository"], p.get("workflow"), p.get("environment"))

    def update(self, verified: Mapping[NormalizedName, AttestationEvidence]) -> None:
        """Record the publishers just verified (new projects, and accepted changes)."""
        changed = False
        for name, evidence in verified.items():
            pub = evidence.publisher
            if pub is None:
                continue
            old = self.trusted(name)
            if old is not None and old == pub:
                continue
            self.entries[name] = {
                "publisher": {k: v for k, v in asdict(pub).items() if v is not None},
                "identity": evidence.identity,
                "first_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "file": evidence.filename,
            }
            changed = True
        if not changed:
            return
        text = json.dumps({"version": 1, "projects": dict(sorted(self.entries.items()))},
                          indent=2) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, text)
        except OSError as exc:
            raise AttestationError(f"can't record the trusted publishers in {self.path}: "
                                   f"{exc.strerror or exc}") from exc


def check_attestation(fetched: FetchedFile, policy: AttestationPolicy,
                      trust: TrustFile | None) -> tuple[AttestationEvidence | None, str | None]:
    """(evidence, note) for one file under `policy`; raises when the policy refuses it."""
    dist = fetched.dist
    if policy.mode == "off":
        return None, "attestations not checked (--attestations off)"
    pins = policy.pins.get(dist.name, ())
    if fetched.provenance is None:
        if pins:
            raise AttestationError(
                f"{dist.file.filename}: no provenance found, but {dist.name} has a pinned "
                f"publisher ({', '.join(map(str, pins))})",
            )
        if policy.mode == "require":
            raise AttestationError(
                f"{dist.file.filename}: no PEP 740 provenance found, and --attestations "
                "require is set (use --attestations auto to install it with a warning)",
            )
        # Otherwise leaving the provenance out would get around trust on first use.
        old = trust.trusted(dist.name) if trust is not None else None
        if old is not None and dist.name not in policy.accept_change:
            raise PublisherDriftError(
                f"publisher drift for {dist.name}: it was published by {old} before, "
                f"{dist.file.filename} has no PEP 740 provenance. If you expected this "
                f"change, accept it with --accept-publisher-change {dist.name}",
            )
        return None, "no provenance"
    from .attestations import load_provenance, verify_file

    try:
        loaded = load_provenance(fetched.provenance, source=fetched.provenance_source or "?")
        evidence = verify_file(dist.file.filename, fetched.sha256, loaded,
                               instance=policy.instance, publishers=pins)
    except ImportError as exc:
        # secinstall's core (as get-secinstall.py installs it) runs without the verifier;
        # fail closed rather than skip the check.
        raise AttestationError(
            f"{dist.file.filename} has PEP 740 provenance, but it can't be verified: "
            f"{exc.name or exc} is not installed (secinstall was installed without its "
            "other dependencies); install sigstore and pypi-attestations, or pass "
            "--attestations off (weakens security; reported)",
        ) from exc
    if trust is not None and evidence.publisher is not None:
        old = trust.trusted(dist.name)
        if old is not None and not same_publisher(old, evidence.publisher) \
                and dist.name not in policy.accept_change:
            raise PublisherDriftError(
                f"publisher drift for {dist.name}: it was published by {old} before, "
                f"{dist.file.filename} is published by {evidence.publisher}. If you "
                f"expected this change, accept it with --accept-publisher-change {dist.name}",
            )
    return evidence, None
