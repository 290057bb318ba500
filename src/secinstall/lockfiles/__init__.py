"""Lock files: PEP 751 `pylock.toml` (read into a `Plan`, written from a verified run) and
hashed requirements files (written)."""

from __future__ import annotations

from .pylock import is_lock_path, load_pylock, plan_from_pylock, pylock_text, write_pylock
from .requirements import requirements_text, write_requirements

__all__ = [
    "is_lock_path",
    "load_pylock",
    "plan_from_pylock",
    "pylock_text",
    "requirements_text",
    "write_pylock",
    "write_requirements",
]
