"""Downloads over loopback HTTP: resume after a cut connection, checksum mismatch, atomic extraction."""
from __future__ import annotations

import hashlib
import http.server
import io
import random
import tarfile
import threading

import pytest

from course_utils.data import DataError, download as dl
from course_utils.data import registry

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD with Range support; the first full request is cut off after `cut` bytes."""

    cut = None
    requests: list = []
    payload = PAYLOAD

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        data = type(self).payload
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if type(self).cut is not None and not rng:
            self.wfile.write(body[:type(self).cut])
            self.wfile.flush()
            self.connection.shutdown(2)  # drop the connection mid-file
            return
        self.wfile.write(body)


@pytest.fixture()
def server():
    _Handler.cut, _Handler.requests, _Handler.payload = None, [], PAYLOAD
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"
    httpd.shutdown()
    httpd.server_close()


def test_plain_download_verifies_sha256(server, tmp_path):
    out = dl.download(server, tmp_path / "f.bin", "sha256:" + hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert out.read_bytes() == PAYLOAD and not (tmp_path / "f.bin.part").exists()


def test_resume_after_interruption(server, tmp_path):
    _Handler.cut = 300_000
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    out = dl.download(server, tmp_path / "f.bin", md5, progress=False, retries=3)
    assert out.read_bytes() == PAYLOAD
    assert _Handler.requests[0] is None and _Handler.requests[1] == "bytes=300000-"  # resumed, not restarted


def test_resume_from_part_left_by_an_earlier_run(server, tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:123_456])
    dl.download(server, tmp_path / "f.bin", hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert _Handler.requests == ["bytes=123456-"]
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_complete_part_from_a_crash_before_rename(server, tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)  # fully fetched, never renamed
    dl.download(server, tmp_path / "f.bin", hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD and _Handler.requests == [f"bytes={len(PAYLOAD)}-"]


def test_checksum_mismatch_is_never_used(server, tmp_path):
    wrong = "0" * 32
    with pytest.raises(DataError) as err:
        dl.download(server, tmp_path / "f.bin", wrong, progress=False)
    msg = str(err.value)
    assert f"expected {wrong}, got {hashlib.md5(PAYLOAD).hexdigest()}" in msg
    assert server in msg and "place it at" in msg and "f.bin" in msg
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_cut_connection_keeps_part_and_says_where(server, tmp_path):
    _Handler.cut = 300_000
    with pytest.raises(DataError, match=f"could not download {server}") as err:
        dl.download(server, tmp_path / "f.bin", hashlib.md5(PAYLOAD).hexdigest(), progress=False, retries=1)
    part = tmp_path / "f.bin.part"
    assert part.read_bytes() == PAYLOAD[:300_000]  # what arrived is kept, to resume from next time
    assert f"300000 bytes kept in {part}" in str(err.value) and not (tmp_path / "f.bin").exists()


def test_unreachable_server_keeps_part_and_says_where(tmp_path):
    part = tmp_path / "x.part"
    part.write_bytes(PAYLOAD[:1000])  # left by an earlier run
    with pytest.raises(DataError, match="could not download http://127.0.0.1:9/x") as err:
        dl.download("http://127.0.0.1:9/x", tmp_path / "x", "0" * 32, progress=False, retries=1, timeout=2)
    assert part.read_bytes() == PAYLOAD[:1000]  # untouched
    assert f"1000 bytes kept in {part}" in str(err.value)


def _tar(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_extract_is_atomic(tmp_path):
    good = tmp_path / "good.tar.gz"
    good.write_bytes(_tar({"ds/a.txt": b"a", "ds/sub/b.txt": b"b"}))
    dl.extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "ds" / "sub" / "b.txt").read_bytes() == b"b"
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_tar({"other/a.txt": random.Random(0).randbytes(100_000)})[:20_000])  # truncated
    with pytest.raises(DataError, match="could not be unpacked"):
        dl.extract(bad, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ds"]  # nothing half-written


def test_parse_checksum():
    assert dl.parse_checksum("SHA256:AB") == ("sha256", "ab")
    assert dl.parse_checksum("c58f30108f718f92721af3b95e74349a") == ("md5", "c58f30108f718f92721af3b95e74349a")


def test_registry_cache_and_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert not registry.is_cached("voc_det")
    for rel in registry.REAL["voc"].expect:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).mkdir() if "." not in rel.rsplit("/", 1)[-1] else (tmp_path / rel).write_text("x")
    assert registry.is_cached("voc_seg") and registry.is_cached("voc")
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        registry.is_cached("imagenet")
    with pytest.raises(DataError, match="course data download coco.*profile='smoke'"):
        registry.ensure("captions")


def test_real_checksums_come_from_torchvision():
    from torchvision.datasets import CIFAR10, CIFAR100, OxfordIIITPet

    assert registry.REAL["cifar10"].files[0][2] == "md5:" + CIFAR10.tgz_md5
    assert registry.REAL["cifar100"].files[0][2] == "md5:" + CIFAR100.tgz_md5
    assert [f[2] for f in registry.REAL["pets"].files] == ["md5:" + m for _, m in OxfordIIITPet._RESOURCES]


def test_ensure_downloads_verifies_and_extracts(server, tmp_path, monkeypatch):
    # the whole `course data download` path, against a dataset served over loopback
    archive = _tar({"toy/a.txt": b"a", "toy/b.txt": b"b"})
    _Handler.payload, _Handler.cut = archive, 1000
    spec = registry.RealDataset("Toy", ((server, "toy.tar.gz", "sha256:" + hashlib.sha256(archive).hexdigest()),),
                                "toyset", ("toy/a.txt", "toy/b.txt"), "1 kB", "test")
    monkeypatch.setitem(registry.REAL, "toy", spec)
    monkeypatch.setattr(registry, "_online", lambda: True)
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert not registry.is_cached("toy")
    root = registry.ensure("toy", progress=False)
    assert root == (tmp_path / "toyset").resolve() and registry.is_cached("toy")
    assert (root / "toy" / "b.txt").read_bytes() == b"b" and (tmp_path / "downloads" / "toy.tar.gz").is_file()
    assert not list(root.glob(".extract-*"))  # no temp folder left behind


def _toy_large(server, tmp_path, monkeypatch, size):
    archive = _tar({"toy/a.txt": b"a"})
    _Handler.payload, _Handler.cut, _Handler.requests = archive, None, []
    spec = registry.RealDataset("Toy", ((server, "toy.tar.gz", "sha256:" + hashlib.sha256(archive).hexdigest()),),
                                "toyset", ("toy/a.txt",), size, "test")
    monkeypatch.setitem(registry.REAL, "toy", spec)
    monkeypatch.setattr(registry, "_online", lambda: True)
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.delenv("COURSE_ALLOW_LARGE", raising=False)


def test_a_download_over_1_gb_starts_only_when_asked(server, tmp_path, monkeypatch, capsys):
    _toy_large(server, tmp_path, monkeypatch, "1.9 GB")  # a small archive that says it is VOC's size
    with pytest.raises(DataError, match=r"Toy is 1.9 GB.*course data download toy.*COURSE_ALLOW_LARGE=1"):
        registry.ensure("toy", progress=False)
    assert _Handler.requests == [] and not registry.is_cached("toy")  # not one byte asked for
    monkeypatch.setenv("COURSE_ALLOW_LARGE", "1")
    registry.ensure("toy", progress=False)
    assert registry.is_cached("toy") and len(_Handler.requests) == 1
    assert "downloading Toy: 1.9 GB into" in capsys.readouterr().out  # the size, before the download


def test_course_data_download_is_the_ask(server, tmp_path, monkeypatch, capsys):
    from course_utils.machinery.cli import main

    _toy_large(server, tmp_path, monkeypatch, "1.9 GB")
    assert main(["data", "download", "toy", "--quiet"]) == 0 and registry.is_cached("toy")
    assert "downloading Toy: 1.9 GB" in capsys.readouterr().out


def test_small_downloads_need_no_ask_but_state_their_size(server, tmp_path, monkeypatch, capsys):
    _toy_large(server, tmp_path, monkeypatch, "800 MB")
    registry.ensure("toy", progress=False)
    assert "downloading Toy: 800 MB into" in capsys.readouterr().out


def test_catalogue_sizes():
    from course_utils.data import catalog

    assert catalog.size_bytes("voc_det") == 1_900_000_000 and catalog.is_large("voc")
    assert not catalog.is_large("coco") and not catalog.is_large("pets") and not catalog.is_large("cifar10")
