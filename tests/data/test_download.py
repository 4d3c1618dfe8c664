"""Verified atomic downloads, against a local HTTP server on 127.0.0.1 (no network needed).

Fixtures served: a good file, a corrupted one (checksum mismatch), a truncated one
(Content-Length larger than the body), a permanent HTTP 500, a flaky one (500 once, then
good), a gzip file re-compressed differently, and a small CIFAR-style tar.gz. After every
failure the destination must not exist and no temporary file may be left in its folder.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from convnet.data import store
from convnet.data.cifar10 import load_cifar10
from convnet.data.store import Resource, download_file, find_data_file
from convnet.errors import ConvnetError, DataError, DataNotFoundError

GOOD = bytes(range(256)) * 40  # 10 KiB
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()
CONTENT = b"IDX-like payload " * 500
GZ_A = gzip.compress(CONTENT, compresslevel=9, mtime=0)
GZ_B = gzip.compress(CONTENT, compresslevel=1, mtime=12345)  # other bytes, same content


def _cifar_tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    d = {
        b"batch_label": b"tiny",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"x.png"] * n,
    }
    # protocol 4: Python 3 writes bytes under protocol 2 via _codecs.encode, which the
    # restricted unpickler (rightly) refuses; the real files come from Python 2
    return pickle.dumps(d, protocol=4)


TAR = _cifar_tarball(
    {
        "cifar-10-batches-py/data_batch_1": _batch(30, 1),
        "cifar-10-batches-py/test_batch": _batch(20, 2),
        "cifar-10-batches-py/batches.meta": pickle.dumps({b"label_names": [b"a"] * 10}, 4),
        "cifar-10-batches-py/readme.html": b"<html></html>",
        "outside.txt": b"not part of the folder",
    }
)
EVIL_TAR = _cifar_tarball({"cifar-10-batches-py/../../escaped": b"x"})

HITS: Counter = Counter()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, body: bytes, length: int | None = None, status: int = 200):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        HITS[self.path] += 1
        if self.path == "/good.bin":
            self._send(GOOD)
        elif self.path == "/corrupt.bin":
            self._send(GOOD[:-1] + b"\x00")
        elif self.path == "/truncated.bin":
            self._send(GOOD[:4000], length=len(GOOD))
            self.close_connection = True
        elif self.path == "/error500":
            self._send(b"boom", status=500)
        elif self.path == "/flaky.bin":
            if HITS[self.path] == 1:
                self._send(b"try again", status=503)
            else:
                self._send(GOOD)
        elif self.path == "/a.gz":
            self._send(GZ_B)
        elif self.path == "/cifar.tar.gz":
            self._send(TAR)
        elif self.path == "/evil.tar.gz":
            self._send(EVIL_TAR)
        else:
            self._send(b"not found", status=404)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache and data dir, no back-off sleeps, downloads allowed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CONVNET_DATA_DIR", raising=False)
    monkeypatch.delenv("CONVNET_OFFLINE", raising=False)
    monkeypatch.setattr(store, "DEFAULT_BACKOFF", 0.0)
    HITS.clear()


def assert_clean(folder):
    """Nothing half-written: no temp/partial files in the folder."""
    if folder.exists():
        left = [p.name for p in folder.iterdir() if p.name.startswith(".") or "part" in p.name]
        assert left == [], left


def test_good_file(server, tmp_path):
    dest = tmp_path / "d" / "good.bin"
    out = download_file(server + "/good.bin", dest, sha256=GOOD_SHA, size=len(GOOD), progress=True)
    assert out == dest and dest.read_bytes() == GOOD
    assert_clean(dest.parent)


def test_checksum_mismatch_never_reaches_destination(server, tmp_path):
    dest = tmp_path / "d" / "x.bin"
    with pytest.raises(DataError, match="checksum mismatch") as e:
        download_file(server + "/corrupt.bin", dest, sha256=GOOD_SHA)
    assert "x.bin" in str(e.value)
    assert not dest.exists()
    assert_clean(dest.parent)
    assert HITS["/corrupt.bin"] == 1  # a bad checksum is not retried on the same mirror


def test_truncated_is_retried_then_fails(server, tmp_path):
    dest = tmp_path / "d" / "t.bin"
    with pytest.raises(DataNotFoundError, match="truncated|IncompleteRead"):
        download_file(server + "/truncated.bin", dest, sha256=GOOD_SHA, retries=2)
    assert HITS["/truncated.bin"] == 2
    assert not dest.exists()
    assert_clean(dest.parent)


def test_truncated_without_checksum_still_rejected(server, tmp_path):
    dest = tmp_path / "d" / "t.bin"
    with pytest.raises(DataNotFoundError):
        download_file(server + "/truncated.bin", dest, retries=1)
    assert not dest.exists()
    assert_clean(dest.parent)


def test_http_500_retries_then_error(server, tmp_path):
    dest = tmp_path / "d" / "e.bin"
    sleeps = []
    with pytest.raises(DataNotFoundError, match="HTTP 500") as e:
        download_file(server + "/error500", dest, retries=3, backoff=0.5, sleep=sleeps.append)
    assert isinstance(e.value, ConvnetError)
    assert HITS["/error500"] == 3
    assert sleeps == [0.5, 1.0]  # exponential back-off between the three attempts
    assert not dest.exists()
    assert_clean(dest.parent)


def test_flaky_server_succeeds_on_retry(server, tmp_path):
    dest = tmp_path / "f.bin"
    download_file(server + "/flaky.bin", dest, sha256=GOOD_SHA, retries=2)
    assert dest.read_bytes() == GOOD and HITS["/flaky.bin"] == 2


def test_404_not_retried_and_next_mirror_used(server, tmp_path):
    dest = tmp_path / "m.bin"
    download_file([server + "/missing", server + "/good.bin"], dest, sha256=GOOD_SHA)
    assert HITS["/missing"] == 1 and dest.read_bytes() == GOOD


def test_gzip_verified_on_content(server, tmp_path):
    # the mirror's .gz bytes differ from ours, the uncompressed content is the same
    digest = hashlib.sha256(CONTENT).hexdigest()
    assert GZ_A != GZ_B
    dest = tmp_path / "a.gz"
    download_file(server + "/a.gz", dest, gunzip_sha256=digest)
    assert gzip.decompress(dest.read_bytes()) == CONTENT
    with pytest.raises(DataError, match="checksum"):
        download_file(server + "/a.gz", tmp_path / "b.gz", gunzip_sha256="0" * 64)
    assert not (tmp_path / "b.gz").exists()


def test_no_network_names_file_and_folder(tmp_path, monkeypatch):
    # a port nothing listens on: connection refused, like being offline
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rel = "imagenet_class_index.json"
    monkeypatch.setitem(
        store.RESOURCES, rel, Resource(rel, urls=(f"http://127.0.0.1:{port}/x.json",))
    )
    with pytest.raises(DataNotFoundError) as e:
        find_data_file(rel)
    msg = str(e.value)
    assert rel in msg and str(store.cache_dir()) in msg and "download failed" in msg
    assert not (store.cache_dir() / rel).exists()


def test_offline_never_contacts_server(server, monkeypatch, tmp_path):
    rel = "imagenet_class_index.json"
    monkeypatch.setitem(store.RESOURCES, rel, Resource(rel, urls=(server + "/good.bin",)))
    monkeypatch.setenv("CONVNET_OFFLINE", "1")
    monkeypatch.setenv("CONVNET_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DataNotFoundError, match="CONVNET_OFFLINE") as e:
        find_data_file(rel)
    assert str(tmp_path / "data" / rel) in str(e.value)
    assert HITS["/good.bin"] == 0
    assert isinstance(e.value, FileNotFoundError)


def test_find_data_file_downloads_into_cache_once(server, monkeypatch):
    rel = "imagenet_class_index.json"
    monkeypatch.setitem(
        store.RESOURCES, rel, Resource(rel, urls=(server + "/good.bin",), sha256=GOOD_SHA)
    )
    p = find_data_file(rel, progress=False)
    assert p == store.cache_dir() / rel and p.read_bytes() == GOOD
    assert find_data_file(rel) == p and HITS["/good.bin"] == 1  # second call: from the cache


def test_bad_download_never_reaches_cache(server, monkeypatch):
    rel = "imagenet_class_index.json"
    monkeypatch.setitem(
        store.RESOURCES, rel, Resource(rel, urls=(server + "/corrupt.bin",), sha256=GOOD_SHA)
    )
    with pytest.raises(DataError):
        find_data_file(rel)
    assert not (store.cache_dir() / rel).exists()
    assert_clean(store.cache_dir())


def test_squeezenet_weights_say_where_to_put_them():
    with pytest.raises(DataNotFoundError, match="no public canonical URL") as e:
        find_data_file("squeezenet/squeezenet1.1_fp16_weights.npz")
    assert str(store.cache_dir() / "squeezenet" / "squeezenet1.1_fp16_weights.npz") in str(e.value)


def _patch_cifar(monkeypatch, url, sha):
    for name in ("data_batch_1", "test_batch"):
        rel = f"cifar-10-batches-py/{name}"
        monkeypatch.setitem(
            store.RESOURCES,
            rel,
            Resource(rel, urls=(url,), sha256=sha, archive_folder="cifar-10-batches-py"),
        )


def test_cifar_archive_download_and_unpack(server, monkeypatch):
    _patch_cifar(monkeypatch, server + "/cifar.tar.gz", hashlib.sha256(TAR).hexdigest())
    d = load_cifar10(validation=10)
    assert d["X_train"].shape == (20, 3, 32, 32) and d["X_test"].shape == (20, 3, 32, 32)
    folder = store.cache_dir() / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == [
        "batches.meta",
        "data_batch_1",
        "readme.html",
        "test_batch",
    ]
    assert not (store.cache_dir() / "outside.txt").exists()
    assert_clean(store.cache_dir())
    assert HITS["/cifar.tar.gz"] == 1


def test_cifar_archive_with_path_traversal_rejected(server, monkeypatch, tmp_path):
    _patch_cifar(monkeypatch, server + "/evil.tar.gz", hashlib.sha256(EVIL_TAR).hexdigest())
    with pytest.raises(DataError, match="unpack"):
        find_data_file("cifar-10-batches-py/data_batch_1")
    assert not any(p.name == "escaped" for p in tmp_path.rglob("*"))
    assert_clean(store.cache_dir())


def test_search_order(tmp_path, monkeypatch):
    rel = "imagenet_class_index.json"
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    for d in (explicit, env, store.cache_dir()):
        d.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(d.name)
    monkeypatch.setenv("CONVNET_DATA_DIR", str(env))
    assert find_data_file(rel, explicit).read_text() == "explicit"
    assert find_data_file(rel).read_text() == "env"
    os.remove(env / rel)
    assert find_data_file(rel).read_text() == "convnet"  # the cache folder's name
    # the explicit path may also be the file itself
    assert find_data_file(rel, explicit / rel) == explicit / rel
