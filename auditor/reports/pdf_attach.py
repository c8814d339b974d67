"""The PDF's associated files, the JSON result and the CycloneDX BOM, rendered and deflated on the other core.

Both are as long as the inventory (31 MB and 47 MB at 100k files), so rendering and compressing them is most of
a large PDF's work. `Attachments.start()` forks a child that writes the two zlib streams into an anonymous
temporary file while the parent lays out the pages; the parent copies them from that file into the PDF in
1 MiB chunks, so neither process holds them whole. Where there is no fork (or one core, or a small result, for
which forking costs more than it saves), or the child fails, the parent renders them itself into the same file:
the output is the same bytes either way.
"""
from __future__ import annotations

import os
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from typing import IO

from auditor.model import AuditResult
from auditor.reports.pdf_doc import Attachment

LEVEL = 1               # zlib level: a quarter of the size, at ~100 MB/s
FORK_FILES = 2000       # fork for results with at least this many files
_CHUNK = 1 << 20
_TRAILER = struct.Struct(">QQQQ")       # (stored, size) of the JSON, then of the BOM
DOCUMENTS = (("auditor-result.json", "application/json", "The canonical auditor result (auditor.report/v1)"),
             ("bom.cdx.json", "application/vnd.cyclonedx+json",
              "CycloneDX 1.6 ML-BOM with the no-direct-connection declarations"))


def _pieces(result: AuditResult) -> list[Iterable[str]]:
    from auditor.reports import cyclonedx, json_report
    return [json_report.iter_render(result), cyclonedx.iter_render(result)]


def write(result: AuditResult, out: IO[bytes]) -> None:
    """Both documents as zlib streams, one after the other, then their (stored, size) pairs."""
    sizes: list[int] = []
    for pieces in _pieces(result):
        z = zlib.compressobj(LEVEL)
        stored = size = 0
        for piece in pieces:
            data = piece.encode("utf-8")
            size += len(data)
            chunk = z.compress(data)
            stored += len(chunk)
            out.write(chunk)
        chunk = z.flush()
        out.write(chunk)
        sizes += [stored + len(chunk), size]
    out.write(_TRAILER.pack(*sizes))
    out.flush()


class Attachments:
    def __init__(self, result: AuditResult) -> None:
        self.result = result
        self.file = tempfile.TemporaryFile()
        self.pid = 0

    def start(self) -> Attachments:
        if len(self.result.files) < FORK_FILES or not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
            return self
        from auditor.reports import cyclonedx, json_report  # noqa: F401  (imported before the fork, not in the child)
        try:
            pid = os.fork()
        except OSError:
            return self
        if pid == 0:                                # the child: write, then leave without any cleanup of the parent's
            code = 1
            try:
                write(self.result, self.file)
                code = 0
            finally:
                os._exit(code)
        self.pid = pid
        return self

    def _wait(self) -> bool:
        pid, self.pid = self.pid, 0
        if not pid:
            return False
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

    def finish(self) -> list[Attachment]:
        """The two attachments, reading from the child's file (or rendered here when there was no child)."""
        if not self._wait():
            self.file.seek(0)
            self.file.truncate()
            write(self.result, self.file)
        self.file.seek(-_TRAILER.size, os.SEEK_END)
        json_stored, json_size, bom_stored, bom_size = _TRAILER.unpack(self.file.read(_TRAILER.size))
        spans = ((0, json_stored, json_size), (json_stored, bom_stored, bom_size))
        return [Attachment(name, mime, desc, stored, size, self._chunks(start, stored))
                for (name, mime, desc), (start, stored, size) in zip(DOCUMENTS, spans, strict=True)]

    def _chunks(self, start: int, length: int) -> Iterator[bytes]:
        self.file.seek(start)
        while length > 0:
            chunk = self.file.read(min(_CHUNK, length))
            if not chunk:
                raise OSError("the attachments file ended early")
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
