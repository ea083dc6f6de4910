"""Downloads against a local HTTP server: resume with Range, verification, offline, registry."""

from __future__ import annotations

import hashlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from core import cli
from core.checkpoints import download
from core.checkpoints.checkpoint import load_checkpoint
from core.checkpoints.download import PUBLISHED, PublishedModel, drive_direct_url, fetch_published
from core.checkpoints.reference import expected_keys
from core.errors import Cancelled, DownloadError
from core.models import FCN, FCNConfig

pytestmark = pytest.mark.usefixtures("one_thread")

PAYLOAD = bytes(range(256)) * 800  # 204,800 bytes
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@dataclass
class Site:
    """What the local server serves and what it saw."""

    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    drop_after: int | None = None  # close the connection after this many bytes, once
    ignore_range: bool = False
    ranges: list[str | None] = field(default_factory=list)
    url: str = ""


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            site.ranges.append(rng)
            if self.path not in site.files:
                self.send_error(404)
                return
            data, ctype = site.files[self.path]
            start, status = 0, 200
            match = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if match and not site.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if site.drop_after is not None:
                self.wfile.write(body[: site.drop_after])
                site.drop_after = None
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture()
def site() -> Iterator[Site]:
    site = Site(files={"/w.bin": (PAYLOAD, "application/octet-stream")})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield site
    server.shutdown()
    server.server_close()


def test_full_download_with_md5_and_progress(site: Site, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    out = download.download(f"{site.url}/w.bin", tmp_path, expected_md5=MD5,
                            expected_size=len(PAYLOAD), progress=lambda d, t: seen.append((d, t)),
                            chunk_size=32768)
    assert out == tmp_path / "w.bin" and out.read_bytes() == PAYLOAD
    assert not (tmp_path / "w.bin.part").exists()
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert len(seen) > 3 and site.ranges == [None]
    # already there and verified: no new request
    assert download.download(f"{site.url}/w.bin", out, expected_md5=MD5) == out
    assert site.ranges == [None]


def test_an_interrupted_transfer_resumes_with_a_range_request(site: Site,
                                                               tmp_path: Path) -> None:
    site.drop_after = 50_000
    out = download.download(f"{site.url}/w.bin", tmp_path / "w.bin", expected_md5=MD5,
                            retry_delay=0, chunk_size=16384)
    assert out.read_bytes() == PAYLOAD
    assert site.ranges == [None, "bytes=50000-"]


def test_a_failed_attempt_keeps_the_part_file_for_the_next_call(site: Site,
                                                                 tmp_path: Path) -> None:
    site.drop_after = 70_000
    dest = tmp_path / "w.bin"
    with pytest.raises(DownloadError, match=r"interrupted.*70000 bytes are kept in .*w\.bin\.part"):
        download.download(f"{site.url}/w.bin", dest, expected_md5=MD5, retries=0)
    assert (tmp_path / "w.bin.part").stat().st_size == 70_000 and not dest.exists()
    download.download(f"{site.url}/w.bin", dest, expected_md5=MD5)
    assert dest.read_bytes() == PAYLOAD and site.ranges == [None, "bytes=70000-"]


def test_a_corrupt_file_is_rejected_and_not_left_in_place(site: Site, tmp_path: Path) -> None:
    site.files["/w.bin"] = (PAYLOAD[:-1] + b"\x00", "application/octet-stream")
    dest = tmp_path / "w.bin"
    with pytest.raises(DownloadError, match=f"MD5 mismatch: expected {MD5}, got [0-9a-f]{{32}}"):
        download.download(f"{site.url}/w.bin", dest, expected_md5=MD5)
    assert not dest.exists() and not (tmp_path / "w.bin.part").exists()
    with pytest.raises(DownloadError, match="size mismatch: expected 5 bytes, got 204800"):
        download.download(f"{site.url}/w.bin", dest, expected_size=5)


def test_a_server_ignoring_range_restarts_cleanly(site: Site, tmp_path: Path) -> None:
    site.ignore_range = True
    (tmp_path / "w.bin.part").write_bytes(b"stale bytes" * 100)
    out = download.download(f"{site.url}/w.bin", tmp_path / "w.bin", expected_md5=MD5)
    assert out.read_bytes() == PAYLOAD and site.ranges == ["bytes=1100-"]


def test_a_complete_part_file_is_finished_without_data(site: Site, tmp_path: Path) -> None:
    (tmp_path / "w.bin.part").write_bytes(PAYLOAD)  # the server answers 416
    out = download.download(f"{site.url}/w.bin", tmp_path / "w.bin", expected_md5=MD5)
    assert out.read_bytes() == PAYLOAD and site.ranges == [f"bytes={len(PAYLOAD)}-"]


def test_cancel_keeps_the_part_file(site: Site, tmp_path: Path) -> None:
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        download.download(f"{site.url}/w.bin", tmp_path / "w.bin", chunk_size=16384,
                          cancel=lambda: next(calls) >= 2)
    assert (tmp_path / "w.bin.part").stat().st_size == 2 * 16384


def test_offline_and_unreachable_name_the_url_and_where_to_put_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FCN_STUDIO_OFFLINE", "1")
    dest = tmp_path / "x.caffemodel"
    with pytest.raises(DownloadError, match=r"Offline.*http://example\.invalid/x\.caffemodel"
                       rf".*place it at {re.escape(str(dest))}"):
        download.download("http://example.invalid/x.caffemodel", dest)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=rf"Could not download .*:{port}/x.*place it at"):
        download.download(f"http://127.0.0.1:{port}/x", dest, timeout=5)
    with pytest.raises(DownloadError, match="only http and https"):
        download.download("file:///etc/passwd", dest)


def test_http_errors_and_web_pages_are_clear(site: Site, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download.download(f"{site.url}/missing.bin", tmp_path)
    site.files["/page.bin"] = (b"<html>confirm</html>", "text/html; charset=utf-8")
    with pytest.raises(DownloadError, match="web page"):
        download.download(f"{site.url}/page.bin", tmp_path)
    assert not (tmp_path / "page.bin").exists()


def test_drive_links_have_a_direct_download_form() -> None:
    assert drive_direct_url("https://drive.google.com/uc?id=abc-D_1") == (
        "https://drive.usercontent.google.com/download?id=abc-D_1&export=download&confirm=t"
    )
    assert drive_direct_url("http://dl.caffe.berkeleyvision.org/x.caffemodel") is None


def test_the_registry_lists_the_reference_models() -> None:
    caffe = [m for m in PUBLISHED.values() if m.origin == "caffe"]
    assert {m.filename for m in caffe} == {
        "fcn32s-heavy-pascal.caffemodel", "fcn16s-heavy-pascal.caffemodel",
        "fcn8s-heavy-pascal.caffemodel", "fcn8s-atonce-pascal.caffemodel"}
    for m in caffe:
        assert m.url == f"http://dl.caffe.berkeleyvision.org/{m.filename}"
    md5s = {m.filename: m.md5 for m in PUBLISHED.values() if m.origin == "pytorch-fcn"}
    assert md5s == {
        "fcn32s_from_caffe.pth": "d3eb467a80e7da0468a20dfcbc13e6c8",
        "fcn16s_from_caffe.pth": "a2d4035f669f09483b39c9a14a0d6670",
        "fcn8s_from_caffe.pth": "de93e540ec79512f8770033849c8ae89",
        "fcn8s-atonce_from_caffe.pth": "bfed4437e941fef58932891217fe6464",
    }
    assert [m.name for m in PUBLISHED.values() if m.at_once] == ["voc-fcn8s-atonce",
                                                                 "voc-fcn8s-atonce-pth"]
    with pytest.raises(DownloadError, match="unknown published model 'nope'; known: voc-fcn32s"):
        download.published("nope")


def test_fetch_published_downloads_then_converts(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    torch.manual_seed(0)
    model = FCN(FCNConfig(num_classes=21, width=0.0625))
    state = {k: v for k, v in model.state_dict().items() if k in expected_keys("32s")}
    torch.save(state, tmp_path / "tiny.pth")
    data = (tmp_path / "tiny.pth").read_bytes()
    site.files["/tiny_from_caffe.pth"] = (data, "application/octet-stream")
    entry = PublishedModel("tiny", f"{site.url}/tiny_from_caffe.pth", "tiny_from_caffe.pth",
                           hashlib.md5(data).hexdigest(), len(data), "32s", origin="pytorch-fcn")
    monkeypatch.setitem(PUBLISHED, "tiny", entry)
    monkeypatch.setenv("FCN_STUDIO_CACHE", str(tmp_path / "cache"))

    out = fetch_published("tiny")
    assert out == tmp_path / "cache" / "models" / "tiny_from_caffe.safetensors"
    loaded, info = load_checkpoint(out)
    assert info.name == "tiny" and info.training["source"] == "pytorch-fcn"
    assert torch.equal(loaded.fc6.weight, model.fc6.weight)
    assert fetch_published("tiny") == out and len(site.ranges) == 1  # cached, not refetched

    assert cli.main(["download", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "voc-fcn8s-atonce" in listing and "tiny_from_caffe.pth" in listing
    assert cli.main(["download", "tiny", "--no-convert"]) == 0
    assert capsys.readouterr().out.strip().endswith("tiny_from_caffe.pth")
    assert cli.main(["download", "nope"]) == 2
    assert "unknown published model" in capsys.readouterr().err
