"""The parts of an inventory path (`folder/name.ext`, always `/`-separated and relative) as
PurePosixPath would give them, from string operations: scanners ask once per file, and building a
PurePosixPath costs more than the check it serves (~5 us each, a second per 100,000 files and scanner)."""
from __future__ import annotations


def name(path: str) -> str:
    """PurePosixPath(path).name."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def suffix(path: str) -> str:
    """PurePosixPath(path).suffix: the last dot's part of the name, "" for `.env` or `name.`."""
    base = name(path)
    dot = base.rfind(".")
    return base[dot:] if 0 < dot < len(base) - 1 else ""
