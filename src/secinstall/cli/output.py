"""Where human-readable messages go; the CLI is the only part of secinstall that prints."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError


class Output:
    """Messages by verbosity (stderr when a report or document takes stdout)."""

    def __init__(self, verbosity: int, stream: TextIO, log: TextIO | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream
        #: pip's --log: every message, whatever the verbosity, appended with its time.
        self.log = log

    def logged(self, message: str) -> None:
        """`message` in the --log file only."""
        if self.log is not None:
            stamp = datetime.now().astimezone().isoformat(timespec="milliseconds")
            self.log.write(f"{stamp} {message}\n")

    def info(self, message: str) -> None:
        self.logged(message)
        if self.verbosity >= 0:
            print(message, file=self.stream)

    def debug(self, message: str) -> None:
        self.logged(message)
        if self.verbosity >= 1:
            print(message, file=self.stream)

    def warn(self, message: str) -> None:
        self.logged(f"warning: {message}")
        if self.verbosity >= -1:
            print(f"warning: {message}", file=sys.stderr)

    def error(self, message: str, details: Sequence[str] = (), *,
              show_details: bool = False) -> None:
        """An error, always shown; its `details` with `show_details`, else a hint that -v
        shows them (the log has them all)."""
        print(f"error: {message}", file=sys.stderr)
        self.logged(f"error: {message}")
        for line in details:
            self.logged(f"    {line}")
        if show_details:
            for line in details:
                print(f"    {line}", file=sys.stderr)
        elif details:
            print("    (run with -v for details)", file=sys.stderr)


def output_path(value: str, option: str) -> Path:
    """The file `option` names for writing, checked before any work is done: a failure
    found after an install would leave it done with its report lost."""
    path = Path(value)
    parent = path.parent
    if path.is_dir():
        raise ConfigError(f"{option} {value}: that is a directory; name a file in it")
    if not parent.is_dir():
        raise ConfigError(f"{option} {value}: the directory {parent} doesn't exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {value}: the directory {parent} can't be written")
    return path
