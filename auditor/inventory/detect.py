"""A file's format from its first bytes: magic numbers (rules/formats.yaml `magic`), then structure."""
from __future__ import annotations

import functools
import struct

from auditor import rules
from auditor.parsers.pickle_start import FRAME, PROTO, looks_like_pickle

HEAD = 4096
UNKNOWN_SIZE = 1 << 62    # the size to give for a head whose whole length is not known (a cut stream)


@functools.cache
def _magic() -> tuple[tuple[bytes, str], ...]:
    """(prefix, format) pairs in the order they are tried; prefixes are written with Python escapes."""
    return tuple((str(entry["bytes"]).encode("latin-1").decode("unicode_escape").encode("latin-1"),
                  str(entry["format"])) for entry in rules.load("formats.yaml")["magic"])



# Opcodes that can begin a protocol 0/1 pickle, with what must follow them to be plausible.
_PICKLE0_STARTS = (b"(dp", b"(lp", b"(tp", b"(i", b"(c", b"}q", b"]q", b")", b"}(", b"](", b"(S'", b"(V")


def detect(head: bytes, size: int) -> str:
    """The format of a file from its first bytes (HEAD of them) and its size."""
    if size == 0 or not head:
        return "empty"
    for magic, name in _magic():
        if head.startswith(magic):
            return name
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"MZ":
        return "pe"
    if _is_safetensors(head, size):
        return "safetensors"
    if _could_be_pickle(head) and _is_pickle(head, size):
        return "pickle"
    if len(head) >= 8 and head[:8] in (b"\x00\x00\x00\x00\x00\x00\x00\x00",) and b"HDF" in head[:1100]:
        return "hdf5"
    if _is_onnx(head):   # before text: a small ONNX file can be valid UTF-8 with no NUL byte
        return "onnx"
    if _is_text(head):
        return "text"
    if head[0] in (0x0A, 0x12, 0x08, 0x1A):
        return "protobuf" if head[0] != 0x0A else "sentencepiece"
    return "unknown"


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{" and (head[9:10] in (b'"', b"}", b" ", b"\n"))


def _could_be_pickle(head: bytes) -> bool:
    """The cheap test: a protocol header or frame the pickle VM accepts, or a protocol-0 opening."""
    return (head[0] in (PROTO, FRAME) and looks_like_pickle(head)) or _is_pickle0(head)


def _is_pickle(head: bytes, size: int) -> bool:
    """The VM's word on a candidate: a NOTICE that opens "(c) 2024", a requirements.txt that opens "cython"
    and random bytes after a FRAME begin like a pickle too. The VM is imported only for candidates."""
    from auditor.parsers.picklevm import Bounds, analyze, evident

    analysis = analyze(head, 0, Bounds(max_opcodes=len(head) + 1))
    return evident(analysis, size=size if len(head) < size else 0, lone_import=not _is_text(head))


def _is_pickle0(head: bytes) -> bool:
    if head.startswith(_PICKLE0_STARTS):
        return True
    if head[:1] in (b"c", b"i"):   # GLOBAL / INST: "cmodule\nname\n"
        lines = head[1:200].split(b"\n")
        return len(lines) >= 3 and all(_is_dotted(line) for line in lines[:2])
    return False


def _is_dotted(raw: bytes) -> bool:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return False
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    sample = head
    for cut in range(4):   # a multi-byte character may be split at the end of the sample
        try:
            sample[: len(sample) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def _is_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint) then usually producer_name/opset/graph.
    return len(head) >= 4 and head[0] == 0x08 and head[1] < 0x20 and head[2] in (0x12, 0x1A, 0x22, 0x2A, 0x3A, 0x42)
