"""7z archives, extracted in memory under one cap on their total output (py7zr does the decoding)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from auditor.model import Limits
from auditor.parsers.archive import DEFAULT_LIMITS, Anomaly, Archive, _memory_member, unsafe_name
from auditor.parsers.decompress import ratio_cap


class SevenZipCap(Exception):
    """Raised from inside py7zr's extraction when the output passes the cap (it stops decompressing)."""


def _capped_7z_factory(cap: int) -> Any:
    from py7zr.io import Py7zBytesIO, WriterFactory

    class _Product(Py7zBytesIO):
        def __init__(self, filename: str, factory: _Factory) -> None:
            super().__init__(filename, cap)
            self.factory = factory

        def write(self, s: bytes | bytearray) -> int:
            self.factory.total += len(s)
            if self.factory.total > cap:
                raise SevenZipCap(f"members expand past {cap} bytes")
            return int(self._buffer.write(s))

    class _Factory(WriterFactory):
        def __init__(self) -> None:
            self.total = 0
            self.products: dict[str, _Product] = {}

        def create(self, filename: str) -> _Product:
            product = _Product(filename, self)
            self.products[filename] = product
            return product

    return _Factory()


def read_7z(source: str | Path | bytes, limits: Limits = DEFAULT_LIMITS) -> Archive:
    """A 7z archive, extracted in memory with one cap on its total output: the smaller of the limit and
    the ratio cap of the archive's size (py7zr is stopped as soon as the output passes it)."""
    archive = Archive("7z")
    try:
        import py7zr
    except ImportError:
        archive.anomalies.append(Anomaly("unreadable", "", "py7zr is not installed"))
        return archive
    raw = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    cap = min(limits.max_decompressed_bytes, ratio_cap(len(raw), limits.max_compression_ratio))
    factory = _capped_7z_factory(cap)
    try:
        with py7zr.SevenZipFile(io.BytesIO(raw), mode="r") as z:
            infos = [i for i in z.list() if not i.is_directory]
            total = sum(i.uncompressed or 0 for i in infos)
            if len(infos) > limits.max_archive_members:
                archive.anomalies.append(Anomaly("limit", "", f"more than {limits.max_archive_members} members"))
                infos = infos[:limits.max_archive_members]
            if total > cap:
                archive.anomalies.append(Anomaly("bomb", "", f"members declare {total} bytes in all, more than "
                                                 f"{cap} for a {len(raw)}-byte archive"))
            z.extract(targets=[i.filename for i in infos], factory=factory)
    except SevenZipCap as exc:
        archive.anomalies.append(Anomaly("bomb", "", f"{exc}; only what came out before was analysed"))
    except Exception as exc:  # noqa: BLE001 - py7zr raises many types on hostile input
        archive.anomalies.append(Anomaly("unreadable", "", f"{type(exc).__name__}: {exc}"))
    for name, product in factory.products.items():
        product.seek(0)
        archive.members.append(_memory_member(name, product.read(), "7z"))
    for member in archive.members:
        why = unsafe_name(member.name)
        if why:
            archive.anomalies.append(Anomaly("path-traversal", member.name, why))
    return archive
