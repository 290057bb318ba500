"""`secinstall serve` in a child process, and the real pip that installs through it."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import secinstall


def secinstall_env(**extra: str) -> dict[str, str]:
    """This process's environment (already cleaned by the autouse fixture), with the
    package importable in a child process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(secinstall.__file__).resolve().parents[1])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServeProcess:
    """`python -m secinstall serve ...` in a child process, stopped with Ctrl-C (SIGINT)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = env or secinstall_env()
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.url = ""
        self.exit_code: int | None = None

    def __enter__(self) -> ServeProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "secinstall", "serve", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        first = self._next_line(timeout=60)
        if "Serving verified wheels at " not in first:
            self.__exit__(None, None, None)
            raise AssertionError(f"serve did not start: {first}{self.text}")
        self.url = first.split("Serving verified wheels at ", 1)[1].split()[0]
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def _next_line(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return "(no output)"
        self.output.append(line)
        return line

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    def wait_for(self, text: str, timeout: float = 30) -> bool:
        """True once the server printed `text` (its output reaches us through a pipe and
        a reader thread, so a line logged before an answer may arrive after it)."""
        deadline = time.monotonic() + timeout
        while text not in self.text:
            if self.proc.poll() is not None and self.lines.empty():
                return text in self.text
            if time.monotonic() > deadline:
                return False
            with contextlib.suppress(queue.Empty):
                self.output.append(self.lines.get(timeout=0.1))
        return True

    @property
    def text(self) -> str:
        """Everything the server printed so far."""
        while not self.lines.empty():
            self.output.append(self.lines.get_nowait())
        return "".join(self.output)

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.exit_code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait()
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
