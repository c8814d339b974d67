"""Write outputs atomically: a temp file beside the target, then rename. Nothing half-written is left."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write(path: str | Path, data: str | bytes) -> None:
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if path.exists() and not path.is_file():
        # /dev/null, /dev/stdout, a FIFO: a rename would replace the device node itself.
        with open(path, "wb") as fh:
            fh.write(payload)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
