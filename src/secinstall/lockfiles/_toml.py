"""A TOML writer for the subset lock files use (the standard library only reads TOML)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}
_SCALARS = (str, int, dt.datetime)


def toml_dumps(table: Mapping[str, Any]) -> str:
    """TOML for a table of strings, integers, booleans, datetimes, arrays and tables.

    Tables whose values are all scalars are written inline (`hashes = {sha256 = "..."}`),
    arrays of such tables one per line; other tables and arrays of tables get headers.
    """
    out: list[str] = []
    _table(table, (), out)
    return "\n".join(out).lstrip("\n") + "\n"


def _flat(value: Any) -> bool:
    """True for what is written inline: scalars, arrays of them, tables of them."""
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, Mapping):
        return all(isinstance(v, _SCALARS) or _scalar_list(v) for v in value.values())
    return _scalar_list(value)


def _scalar_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, _SCALARS) for v in value)


def _table(table: Mapping[str, Any], path: tuple[str, ...], out: list[str]) -> None:
    # A table's own keys must all come before the headers of its sub-tables.
    later: list[tuple[str, Any]] = []
    for key, value in table.items():
        tables = isinstance(value, (list, tuple)) and bool(value) \
            and all(isinstance(v, Mapping) for v in value)
        if (isinstance(value, Mapping) and not _flat(value)) \
                or (tables and not all(_flat(v) for v in value)):
            later.append((key, value))
        elif tables:
            items = "".join(f"    {_value(v)},\n" for v in value)
            out.append(f"{_key(key)} = [\n{items}]")
        else:
            out.append(f"{_key(key)} = {_value(value)}")
    for key, value in later:
        header = ".".join(_key(k) for k in (*path, key))
        if isinstance(value, Mapping):
            out.append(f"\n[{header}]")
            _table(value, (*path, key), out)
        else:
            for item in value:
                out.append(f"\n[[{header}]]")
                _table(item, (*path, key), out)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    chars = (_ESCAPES.get(c) or (f"\\u{ord(c):04X}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
             for c in text)
    return '"' + "".join(chars) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"{value} does not fit a TOML integer (64 bits)")
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.datetime):
        when: dt.datetime = value
        if when.tzinfo is not None:
            # TOML offsets have no seconds; UTC avoids offsets such as +05:30:15.
            when = when.astimezone(dt.timezone.utc)
        return when.isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"can't write a {type(value).__name__} as TOML")
