"""Where data files live, and verified, atomic downloads of the missing ones.

Search order for a file ``relpath`` (e.g. ``"mnist/train-images-idx3-ubyte.gz"``), first hit
wins:

1. an explicit ``path`` given by the caller: ``path/relpath``, or ``path/<file name>`` (so a
   caller may pass the ``mnist`` folder itself), or ``path`` itself if it is that file;
2. ``$CONVNET_DATA_DIR/relpath``;
3. the user cache ``$XDG_CACHE_HOME/convnet/relpath`` (default ``~/.cache/convnet``).

Layout (the same in the data folder and the cache)::

    mnist/train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
          t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
    cifar-10-batches-py/data_batch_1..5  test_batch  batches.meta
    imagenet_class_index.json
    squeezenet/squeezenet1.1_fp16_weights.npz

A file found nowhere is downloaded into the cache from its canonical source (``RESOURCES``)
unless ``CONVNET_OFFLINE=1``. A download goes to a temporary file next to its destination,
is verified (SHA-256 of the bytes, or of the gunzipped content for MNIST, whose mirrors hold
differently compressed copies of the same data) and only then renamed into place, so the
cache never holds a partial or corrupt file. Network errors, HTTP 5xx and truncated bodies
are retried with exponential back-off; each mirror is tried in turn. When nothing works the
error (:class:`~convnet.errors.DataNotFoundError`) names the file and the folders to put it in.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from convnet._io import atomic_path
from convnet.errors import DataError, DataNotFoundError

__all__ = [
    "Resource",
    "RESOURCES",
    "cache_dir",
    "search_dirs",
    "find_data_file",
    "download_file",
    "offline",
]

_USER_AGENT = "convnet-data/1.0"
# seconds before the first retry (doubling after each); tests set it to 0
DEFAULT_BACKOFF = 1.0
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Resource:
    """A downloadable data file.

    - relpath: where it lives under a data folder (e.g. ``mnist/t10k-labels-idx1-ubyte.gz``).
    - urls: mirrors, tried in order (empty: cannot be downloaded; ``hint`` says why).
    - sha256: of the downloaded bytes, or None.
    - gunzip_sha256: of the gunzipped content (for .gz files whose compression varies).
    - size: expected size in bytes of the download, or None.
    - archive_folder: for a file shipped inside the tar.gz that ``urls`` point to, the folder
      (under the data folder) the archive unpacks to; that folder is unpacked into the cache.
    - hint: extra advice for the "not found" message.
    """

    relpath: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    gunzip_sha256: str | None = None
    size: int | None = None
    archive_folder: str | None = None
    hint: str = ""


_MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# SHA-256 of the *uncompressed* canonical IDX files (the .gz bytes differ between mirrors).
_MNIST = {
    "train-images-idx3-ubyte.gz": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    ),
    "train-labels-idx1-ubyte.gz": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    ),
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

_CIFAR_ARCHIVE = Resource(
    relpath="cifar-10-python.tar.gz",
    urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    size=170_498_071,
    archive_folder="cifar-10-batches-py",
)

RESOURCES: dict[str, Resource] = {
    **{
        f"mnist/{name}": Resource(
            relpath=f"mnist/{name}",
            urls=tuple(m + name for m in _MNIST_MIRRORS),
            gunzip_sha256=digest,
        )
        for name, digest in _MNIST.items()
    },
    **{
        f"cifar-10-batches-py/{name}": Resource(
            relpath=f"cifar-10-batches-py/{name}",
            urls=_CIFAR_ARCHIVE.urls,
            sha256=_CIFAR_ARCHIVE.sha256,
            size=_CIFAR_ARCHIVE.size,
            archive_folder="cifar-10-batches-py",
        )
        for name in (
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
            "data_batch_5",
            "test_batch",
            "batches.meta",
        )
    },
    "imagenet_class_index.json": Resource(
        relpath="imagenet_class_index.json",
        urls=(
            "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json",
        ),
        sha256="a1e7a966a1f601d39e4b43e119b3e7dd4a2ad3ea08cf69847cbaf021013767bc",
        size=35363,
    ),
    "squeezenet/squeezenet1.1_fp16_weights.npz": Resource(
        relpath="squeezenet/squeezenet1.1_fp16_weights.npz",
        sha256="d598605dcf041b9c2df547ba809e85ff8b1e75d57083e496c70db2c0da81a23f",
        hint=(
            "There is no public canonical URL for these weights (SqueezeNet v1.1, the "
            "DeepScale Caffe weights converted to float16 .npz); copy the file there by hand."
        ),
    ),
}


def offline() -> bool:
    """True when downloads are disabled (``CONVNET_OFFLINE`` set to 1/true/yes)."""
    return os.environ.get("CONVNET_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/convnet`` (default ``~/.cache/convnet``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "convnet"


def search_dirs(path: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched, in order: ``path``, ``$CONVNET_DATA_DIR``, the user cache."""
    dirs: list[Path] = []
    if path is not None:
        dirs.append(Path(path).expanduser())
    env = os.environ.get("CONVNET_DATA_DIR")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(cache_dir())
    return dirs


def _candidates(relpath: str, path: str | os.PathLike | None) -> list[Path]:
    out: list[Path] = []
    if path is not None:
        p = Path(path).expanduser()
        # an explicit path may be the data folder, the file's own folder, or the file
        out += [p / relpath, p / Path(relpath).name]
        if p.is_file():
            out.append(p)
    out += [d / relpath for d in search_dirs()]
    return out


def _missing_message(relpath: str, path, reason: str) -> str:
    """One line: what is missing, where to put it, then what was tried."""
    env = os.environ.get("CONVNET_DATA_DIR")
    if env:
        where = f"put it at {Path(env) / relpath} ($CONVNET_DATA_DIR)"
    else:
        where = (
            f"put it at {cache_dir() / relpath}, or set CONVNET_DATA_DIR to a folder "
            f"that holds {relpath}"
        )
    hint = RESOURCES[relpath].hint if relpath in RESOURCES else ""
    searched = ", ".join(str(d / relpath) for d in search_dirs(path))
    return (
        f"data file {relpath!r} not found: {where}."
        + (f" {hint}" if hint else "")
        + f" (searched {searched}; {reason})"
    )


def find_data_file(
    relpath: str,
    path: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool | None = None,
) -> Path:
    """Return the path of data file ``relpath``, downloading it into the cache if needed.

    Inputs:
    - relpath: path under a data folder, with forward slashes, e.g.
      ``"mnist/t10k-images-idx3-ubyte.gz"`` or ``"squeezenet/squeezenet1.1_fp16_weights.npz"``.
    - path: optional explicit folder (or file) searched first.
    - download: if False never download (as under ``CONVNET_OFFLINE=1``).
    - progress: show a progress bar (None: only on a terminal).

    Returns: an existing file's path.

    Raises DataNotFoundError naming the file and where to put it, when it is nowhere and
    cannot be downloaded; DataError when a download fails verification.
    """
    for cand in _candidates(relpath, path):
        if cand.is_file():
            return cand
    res = RESOURCES.get(relpath)
    if res is None or not res.urls:
        reason = "it cannot be downloaded" if res is not None else "it is not a known download"
        raise DataNotFoundError(_missing_message(relpath, path, reason))
    if not download or offline():
        why = "CONVNET_OFFLINE=1 is set" if offline() else "downloading is disabled"
        raise DataNotFoundError(_missing_message(relpath, path, why))
    dest = cache_dir() / relpath
    try:
        if res.archive_folder is not None:
            _download_archive(res, progress)
        else:
            download_file(
                res.urls,
                dest,
                sha256=res.sha256,
                gunzip_sha256=res.gunzip_sha256,
                size=res.size,
                progress=progress,
            )
    except DataNotFoundError as e:
        raise DataNotFoundError(_missing_message(relpath, path, f"download failed: {e}")) from e
    if not dest.is_file():
        raise DataNotFoundError(
            _missing_message(relpath, path, f"the downloaded archive has no {relpath}")
        )
    return dest


def _download_archive(res: Resource, progress: bool | None) -> None:
    """Download a tar.gz, verify it, and unpack ``res.archive_folder`` into the cache."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    archive_name = Path(res.urls[0]).name
    with tempfile.TemporaryDirectory(dir=cache, prefix=".unpack-") as tmp:
        tmp_path = Path(tmp)
        archive = download_file(
            res.urls, tmp_path / archive_name, sha256=res.sha256, size=res.size, progress=progress
        )
        folder = res.archive_folder
        assert folder is not None
        try:
            with tarfile.open(archive, "r:gz") as tf:
                members = [
                    m
                    for m in tf.getmembers()
                    if m.name == folder or m.name.startswith(folder + "/")
                ]
                for m in members:
                    # only plain files and folders, inside the folder: no links, devices,
                    # absolute paths or '..' (checked here too for Pythons without filters)
                    parts = Path(m.name).parts
                    if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in parts:
                        raise DataError(f"{archive_name}: cannot unpack unsafe member {m.name!r}")
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(tmp_path / "x", members=members, filter="data")
                else:  # pragma: no cover - Python < 3.11.4; members were checked above
                    tf.extractall(tmp_path / "x", members=members)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataError(f"{archive_name}: cannot unpack ({type(e).__name__}: {e})") from e
        src = tmp_path / "x" / folder
        dst = cache / folder
        dst.mkdir(parents=True, exist_ok=True)
        # file by file: each rename is atomic, and files already present are kept
        for f in sorted(src.iterdir()):
            if f.is_file() and not (dst / f.name).exists():
                os.replace(f, dst / f.name)


class _Retryable(Exception):
    """A failure worth another attempt at the same URL (network, 5xx, truncation)."""


class _Permanent(Exception):
    """A failure that another attempt at the same URL would repeat (unknown host)."""


def _describe(e: Exception) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    return str(e)


class _BadContent(Exception):
    """The download finished but is not the expected file (checksum or size)."""


def _verify(
    tmp: Path, sha256: str | None, gunzip_sha256: str | None, size: int | None, url: str
) -> None:
    if size is not None and tmp.stat().st_size != size:
        raise _BadContent(f"size {tmp.stat().st_size} bytes, expected {size}")
    if sha256 is not None:
        h = hashlib.sha256()
        with open(tmp, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != sha256:
            raise _BadContent(f"checksum mismatch: sha256 {h.hexdigest()}, expected {sha256}")
    if gunzip_sha256 is not None:
        h = hashlib.sha256()
        try:
            with gzip.open(tmp, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except (OSError, EOFError, zlib.error) as e:
            raise _BadContent(f"not a valid gzip file ({e})") from e
        if h.hexdigest() != gunzip_sha256:
            raise _BadContent(
                f"checksum mismatch: sha256 of the content {h.hexdigest()}, "
                f"expected {gunzip_sha256}"
            )


def _fetch(url: str, tmp: Path, timeout: float, progress: bool | None, desc: str) -> None:
    """Stream ``url`` into ``tmp``; raise _Retryable for transient failures."""
    from tqdm.auto import tqdm  # imported here: only downloads need it

    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            got = 0
            show = progress if progress is not None else _isatty()
            with (
                open(tmp, "wb") as out,
                tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not show) as bar,
            ):
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            if total is not None and got != total:
                raise _Retryable(f"truncated: got {got} of {total} bytes")
    except urllib.error.HTTPError as e:
        if 500 <= e.code < 600 or e.code in (408, 429):
            raise _Retryable(f"HTTP {e.code} {e.reason}") from e
        raise  # other 4xx: the URL is wrong, retrying will not help
    except urllib.error.URLError as e:
        if isinstance(e.reason, socket.gaierror):  # no DNS: offline, or a wrong host name
            raise _Permanent(f"cannot resolve host ({e.reason})") from e
        raise _Retryable(f"{type(e).__name__}: {e.reason}") from e
    except (http.client.HTTPException, OSError, EOFError) as e:
        # connection refused/reset, timeouts, IncompleteRead (server closed early)
        raise _Retryable(f"{type(e).__name__}: {e}") from e


def _isatty() -> bool:
    import sys

    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def download_file(
    urls: str | Sequence[str],
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    gunzip_sha256: str | None = None,
    size: int | None = None,
    retries: int = 3,
    backoff: float | None = None,
    timeout: float = 60.0,
    progress: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Download the first working URL to ``dest``, verified, via a temp file and atomic rename.

    Inputs:
    - urls: one URL or mirrors tried in order.
    - dest: destination file; its folder is created.
    - sha256 / gunzip_sha256 / size: what the bytes (or their gunzipped content) must match;
      a mismatch moves on to the next mirror (retrying the same one would not help).
    - retries: attempts per URL for transient failures (network errors, HTTP 5xx/408/429,
      a body shorter than its Content-Length), with ``backoff * 2**k`` seconds between them
      (``backoff=None``: ``DEFAULT_BACKOFF``, 1 s).
    - timeout: socket timeout in seconds; progress: tqdm bar (None: only on a terminal).

    Returns: ``Path(dest)``. Nothing but the verified file is ever written at ``dest``, and no
    temporary file is left behind on failure.

    Raises DataError (checksum/size mismatch on every mirror) or DataNotFoundError (no mirror
    reachable), naming the file and each mirror's failure.
    """
    if isinstance(urls, str):
        urls = [urls]
    dest = Path(dest)
    if backoff is None:
        backoff = DEFAULT_BACKOFF
    if retries < 1:
        raise ValueError(f"download_file: retries must be >= 1, got {retries}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    only_bad_content = True
    for url in urls:
        for attempt in range(retries):
            try:
                with atomic_path(dest) as tmp:
                    _fetch(url, tmp, timeout, progress, dest.name)
                    _verify(tmp, sha256, gunzip_sha256, size, url)
                return dest
            except _Retryable as e:
                only_bad_content = False
                if attempt + 1 < retries:
                    sleep(backoff * 2**attempt)
                    continue
                failures.append(f"{url}: {e} ({retries} attempts)")
            except _BadContent as e:
                # the same mirror would send the same bytes again: try the next one
                failures.append(f"{url}: {e}")
            except (_Permanent, urllib.error.HTTPError) as e:
                only_bad_content = False
                failures.append(f"{url}: {_describe(e)}")
            break
    detail = "; ".join(failures)
    if only_bad_content:
        raise DataError(f"download of {dest.name} failed verification: {detail}")
    raise DataNotFoundError(f"could not download {dest.name}: {detail}")
