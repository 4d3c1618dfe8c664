"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file convnet writes (models, checkpoints, images, figures, JSON, downloads) goes
through :func:`atomic_path`: the data is written to a temporary file in the destination's
folder (so the final rename stays on one file system), flushed to disk with ``fsync``, then
renamed over the destination with ``os.replace`` (atomic on POSIX and Windows). On any error
the temporary file is removed and the previous file is left as it was.

The temporary file is created with mode 0o666 like a plain ``open(path, "w")``, so the
umask applies (0o644 under umask 022); when the destination already exists, its mode is
kept, as ``open`` would keep it. (``tempfile.mkstemp`` would give 0o600.)
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_path",
    "atomic_write",
    "atomic_save_npz",
    "atomic_write_text",
    "atomic_save_figure",
]


def _create_temp(path: Path) -> Path:
    """Create an empty, new file next to ``path`` with the mode a plain open() would give."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            os.close(os.open(tmp, flags, 0o666))  # the kernel applies the umask
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file next to {path}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write; on success it replaces ``path`` atomically.

    For writers that want a file name rather than a file object (a download, a library that
    opens the file itself). The folder of ``path`` is created. On an exception inside the
    block the temporary file is removed, ``path`` is untouched and the exception propagates.

    Example::

        with atomic_path("weights.bin") as tmp:
            fetch(url, tmp)
            verify(tmp)          # raising here keeps the old weights.bin
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path)
    try:
        yield tmp
        _fsync(tmp)
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # keep an existing file's mode
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", encoding: str | None = None
) -> Iterator[IO[Any]]:
    """``open(path, mode)`` that replaces ``path`` atomically when the block ends without error.

    Inputs:
    - path: destination; its folder is created.
    - mode: ``"wb"`` (default) or ``"w"`` (text; ``encoding`` defaults to UTF-8).

    Yields the open file object (of the temporary file).
    """
    if mode not in ("w", "wt", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w', 'wt' or 'wb', got {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as f:
        yield f


def atomic_save_npz(path: str | os.PathLike, arrays: Mapping[str, Any],
                    compressed: bool = False) -> Path:  # fmt: skip
    """Write ``arrays`` as an .npz to ``path`` atomically; the name is used as given.

    (``np.savez`` given a file name would append ``.npz``; given a file object it does not.)
    """
    import numpy as np

    save = np.savez_compressed if compressed else np.savez
    with atomic_write(path, "wb") as f:
        save(f, **arrays)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def atomic_save_figure(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """``fig.savefig(path, **savefig_kwargs)`` atomically; the format is the suffix (else PNG)."""
    path = Path(path)
    fmt = savefig_kwargs.pop("format", None) or (path.suffix[1:].lower() or "png")
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=fmt, **savefig_kwargs)
    return path
