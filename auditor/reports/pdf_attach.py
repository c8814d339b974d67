"""The PDF's associated files, the JSON result and the CycloneDX BOM, rendered and deflated on the other core.

Both are as long as the inventory (31 MB and 47 MB at 100k files), so rendering and compressing them is most of
a large PDF's work. `Attachments.start()` forks one child per document, each writing its zlib stream into an
anonymous temporary file while the parent lays out the pages; the parent copies them from those files into the
PDF in 1 MiB chunks, so no process holds them whole. Where there is no fork (or one core, or a small result, for
which forking costs more than it saves, or other threads running), or a child fails, the parent renders that
document itself into the same file: the output is the same bytes either way.
"""
from __future__ import annotations

import itertools
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from typing import IO

from isal import isal_zlib

from auditor.model import AuditResult
from auditor.reports.pdf_doc import Attachment

LEVEL = 1               # ISA-L's level 1: a sixth of the size, at ~1 GB/s (5x zlib's level 1, and smaller)
FORK_FILES = 2000       # fork for results with at least this many files
_CHUNK = 1 << 20
_BATCH = 1 << 16
_TRAILER = struct.Struct(">QQ")         # (stored, size) at the end of a document's file
DOCUMENTS = (("auditor-result.json", "application/json", "The canonical auditor result (auditor.report/v1)"),
             ("bom.cdx.json", "application/vnd.cyclonedx+json",
              "CycloneDX 1.6 ML-BOM with the no-direct-connection declarations"))


def _pieces(result: AuditResult, index: int) -> Iterable[str]:
    if index == 0:
        from auditor.reports import json_report
        return json_report.iter_render(result)
    from auditor.reports import cyclonedx
    return cyclonedx.iter_render(result)


def write(pieces: Iterable[str], out: IO[bytes]) -> None:
    """One document as a zlib stream (made by ISA-L: the same format, any inflater reads it), then its
    (stored, size) pair; pieces are compressed 64 KiB at a time (a call per ~400-byte piece costs 20% more)."""
    z = isal_zlib.compressobj(LEVEL)
    stored = size = have = 0
    batch: list[str] = []
    for piece in itertools.chain(pieces, [""]):
        batch.append(piece)
        have += len(piece)
        if have < _BATCH and piece:
            continue
        data = "".join(batch).encode("utf-8")
        size += len(data)
        chunk = z.compress(data)
        stored += len(chunk)
        out.write(chunk)
        batch, have = [], 0
    chunk = z.flush()
    out.write(chunk)
    out.write(_TRAILER.pack(stored + len(chunk), size))
    out.flush()


def _anonymous_file() -> IO[bytes]:
    """A file with no name, gone when closed: in memory (memfd) on Linux, else tempfile's (importing tempfile
    costs ~5 ms of every PDF's start)."""
    if hasattr(os, "memfd_create"):
        try:
            return open(os.memfd_create("auditor-attachment", os.MFD_CLOEXEC), "w+b")
        except OSError:
            pass
    import tempfile
    return tempfile.TemporaryFile()


class _Child:
    """One document written into its own temporary file, by a forked child or (failing that) in this process."""

    def __init__(self, result: AuditResult, index: int) -> None:
        self.result, self.index = result, index
        self.file = _anonymous_file()
        self.pid = 0

    def start(self) -> None:
        try:
            pid = os.fork()
        except OSError:
            return
        if pid == 0:                        # the child: write, then leave without running any of the parent's cleanup
            code = 1
            try:
                write(_pieces(self.result, self.index), self.file)
                code = 0
            finally:
                os._exit(code)
        self.pid = pid

    def _wait(self) -> bool:
        pid, self.pid = self.pid, 0
        if not pid:
            return False
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

    def finish(self) -> tuple[int, int]:
        """(stored, size) of the document in the file; rendered here when there was no child or it failed."""
        if not self._wait():
            self.file.seek(0)
            self.file.truncate()
            write(_pieces(self.result, self.index), self.file)
        self.file.seek(-_TRAILER.size, os.SEEK_END)
        stored, size = _TRAILER.unpack(self.file.read(_TRAILER.size))
        return stored, size

    def chunks(self, length: int) -> Iterator[bytes]:
        self.file.seek(0)
        while length > 0:
            chunk = self.file.read(min(_CHUNK, length))
            if not chunk:
                raise OSError("an attachment's temporary file ended early")
            length -= len(chunk)
            yield chunk

    def close(self) -> None:
        """Stop a child still running (the PDF failed before it was needed) and drop the file."""
        if self.pid:
            import signal
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._wait()
        self.file.close()


class Attachments:
    """The two documents, each by its own child: with the parent's pages, three processes share the two cores
    (at 100k files the BOM takes ~1.7 s, the JSON ~1.3 s, the pages ~1 s)."""

    def __init__(self, result: AuditResult) -> None:
        self.result = result
        self.children = [_Child(result, i) for i in range(len(DOCUMENTS))]

    def start(self) -> Attachments:
        if len(self.result.files) < FORK_FILES or not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
            return self
        if threading.active_count() > 1:    # another thread may hold a lock the child would need (and 3.12 warns)
            return self
        for child in reversed(self.children):   # the BOM first: the longer one (it imports cyclonedx itself)
            child.start()
        return self

    def finish(self) -> Iterator[Attachment]:
        """Each document once its child is done: the writer asks for one only when it reaches it, so the
        pages and fonts are compressed and written while the children still run."""
        for (name, mime, desc), child in zip(DOCUMENTS, self.children, strict=True):
            stored, size = child.finish()
            yield Attachment(name, mime, desc, stored, size, child.chunks(stored))

    def close(self) -> None:
        for child in self.children:
            child.close()
