"""The one spelling of a Hugging Face repo id (`org/name`), for every part of the tool.

An org starts with a letter or digit; both parts are ASCII letters, digits, `_`, `.` and `-`, at most
96 characters each (the Hub's own limits). Single names (`gpt2`) are legacy ids of the public Hub.
"""
from __future__ import annotations

import re

PART = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}"
REPO_ID = re.compile(rf"^{PART}/[A-Za-z0-9_.-]{{1,96}}$")
SINGLE_NAME = re.compile(rf"^{PART}$")


def is_repo_id(text: str) -> bool:
    """`org/name`, and not a path spelling such as `./x` or `a/..`."""
    return bool(REPO_ID.match(text)) and ".." not in text.split("/") and not text.endswith("/.")


def org_of(repo_id: str) -> str:
    return repo_id.split("/", 1)[0] if "/" in repo_id else ""
