"""Progress display for long work: a rich progress bar on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
import threading
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, description: str, total: int | None) -> None: ...
    def advance(self, amount: int) -> None: ...
    def stop(self) -> None: ...


class NoProgress:
    def start(self, description: str, total: int | None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def stop(self) -> None:
        pass


class RichProgress:
    """A byte-counting progress bar on stderr (rich is imported only when one is shown)."""

    def __init__(self, color: bool = True) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as _RichProgress

        self._bar: Any = _RichProgress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True, no_color=not color or None), transient=True,
        )
        self._task: Any = None
        self._lock = threading.Lock()

    def start(self, description: str, total: int | None) -> None:
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        with self._lock:
            self._bar.advance(self._task, amount)

    def stop(self) -> None:
        self._bar.stop()


def make_progress(enabled: bool, color: bool = True) -> Progress:
    if enabled and sys.stderr.isatty():
        try:
            return RichProgress(color)
        except ImportError:
            # rich is not part of the core install path (get-secinstall.py runs without it).
            return NoProgress()
    return NoProgress()
