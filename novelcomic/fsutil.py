"""Atomic writes and content hashes. Nothing the pipeline makes is ever left half-written."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask, read once (reading it means setting it, which is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed over ``target``.

    The temporary file keeps ``target``'s suffix (ffmpeg and Pillow pick formats from it). If
    the block raises, or the process is killed, ``target`` is untouched and the temporary file
    is removed (or, after SIGKILL, left as ``.*.part*`` which nothing ever reads).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=".part" + (suffix if suffix is not None else target.suffix), dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private (0600); finished outputs get the usual umask-based mode.
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(target)


def atomic_write_text(target: str | Path, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_DIGESTS: dict[str, tuple[tuple[int, int], str]] = {}


def file_digest(path: str | Path) -> str:
    """:func:`sha256_file`, remembered per process until the file changes (mtime, size): for
    input files hashed once per shot (a LoRA, a workflow, a place's picture)."""
    st = os.stat(path)
    stamp, key = (st.st_mtime_ns, st.st_size), str(path)
    hit = _DIGESTS.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    digest = sha256_file(path)
    _DIGESTS[key] = (stamp, digest)
    return digest


def hash_inputs(*parts: Any) -> str:
    """A stable hash of JSON-able inputs (pydantic models are dumped first)."""

    def default(obj: Any) -> Any:
        if hasattr(obj, "model_dump"):
            return obj.model_dump(mode="json")
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"cannot hash {type(obj).__name__}")

    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=default)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]
