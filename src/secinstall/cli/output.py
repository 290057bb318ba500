"""Where human-readable messages go; the CLI is the only part of secinstall that prints."""

from __future__ import annotations

import sys
from typing import TextIO


class Output:
    """Messages by verbosity (stderr when a report or document takes stdout)."""

    def __init__(self, verbosity: int, stream: TextIO) -> None:
        self.verbosity = verbosity
        self.stream = stream

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            print(message, file=self.stream)

    def debug(self, message: str) -> None:
        if self.verbosity >= 1:
            print(message, file=self.stream)

    def warn(self, message: str) -> None:
        if self.verbosity >= -1:
            print(f"warning: {message}", file=sys.stderr)
