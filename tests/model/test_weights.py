"""Model registry and downloader against a local HTTP server on 127.0.0.1 (no network).

The server serves one payload with Range support and can misbehave on request: cut the body short, stall,
ignore Range, redirect. Every test is bounded by short timeouts; the server stops with the module.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from loc2.core import cli
from loc2.core.errors import CheckpointError, ModelNotFoundError
from loc2.core.model.weights import (
    REGISTRY,
    DownloadError,
    ModelSpec,
    cache_dir,
    download,
    download_file,
    is_present,
    load_model_weights,
    model_path,
    resolve_weights,
)

PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()
LOCAL = ("127.0.0.1",)


class Handler(BaseHTTPRequestHandler):
    """GET /file (Range aware); /cut cuts the first response; /stall stops sending; /norange ignores Range;
    /redirect-http sends to a non-allowed http host."""

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        if self.path == "/redirect-http":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{server.server_port}/file")
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and self.path != "/norange":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/cut" and server.cut_once:
            server.cut_once = False
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/stall":
            self.wfile.write(body[:5000])
            self.wfile.flush()
            time.sleep(1.5)  # longer than the client's stall timeout; ends by itself
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.requests = []
    httpd.cut_once = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def url(server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_port}{path}"


def test_plain_download_verifies_checksum_and_reports_progress(server, tmp_path):
    seen = []
    dest = download_file(
        url(server, "/file"),
        tmp_path / "w.bin",
        SHA,
        allow_http_hosts=LOCAL,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "w.bin.part").exists()
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and all(d <= len(PAYLOAD) for d, _ in seen)


def test_truncated_download_resumes_with_range(server, tmp_path):
    dest = tmp_path / "cut.bin"
    with pytest.raises(DownloadError, match="run again to resume"):
        download_file(url(server, "/cut"), dest, SHA, allow_http_hosts=LOCAL, stall_timeout_s=5)
    part = tmp_path / "cut.bin.part"
    assert part.is_file() and 0 < part.stat().st_size < len(PAYLOAD) and not dest.exists()
    have = part.stat().st_size
    download_file(url(server, "/cut"), dest, SHA, allow_http_hosts=LOCAL, stall_timeout_s=5)
    assert dest.read_bytes() == PAYLOAD and not part.exists()
    assert server.requests[-1] == ("/cut", f"bytes={have}-")


def test_wrong_checksum_deletes_the_partial_file(server, tmp_path):
    dest = tmp_path / "bad.bin"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_file(url(server, "/file"), dest, "0" * 64, allow_http_hosts=LOCAL)
    assert not dest.exists() and not (tmp_path / "bad.bin.part").exists()


def test_stalled_server_times_out_and_keeps_the_part(server, tmp_path):
    dest = tmp_path / "stall.bin"
    start = time.monotonic()
    with pytest.raises(DownloadError, match="stalled"):
        download_file(url(server, "/stall"), dest, SHA, allow_http_hosts=LOCAL, stall_timeout_s=0.3)
    assert time.monotonic() - start < 1.4
    assert (tmp_path / "stall.bin.part").stat().st_size == 5000
    # the resume then completes from the kept bytes
    download_file(url(server, "/file"), dest, SHA, allow_http_hosts=LOCAL)
    assert dest.read_bytes() == PAYLOAD and server.requests[-1] == ("/file", "bytes=5000-")


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    part = tmp_path / "n.bin.part"
    part.write_bytes(b"garbage that is not the start of the payload")
    download_file(url(server, "/norange"), tmp_path / "n.bin", SHA, allow_http_hosts=LOCAL)
    assert (tmp_path / "n.bin").read_bytes() == PAYLOAD


def test_complete_part_file_is_finished_on_416(server, tmp_path):
    (tmp_path / "c.bin.part").write_bytes(PAYLOAD)
    download_file(url(server, "/file"), tmp_path / "c.bin", SHA, allow_http_hosts=LOCAL)
    assert (tmp_path / "c.bin").read_bytes() == PAYLOAD


def test_only_https_and_safe_redirects(server, tmp_path):
    with pytest.raises(DownloadError, match="only https"):
        download_file(url(server, "/file"), tmp_path / "x.bin")  # http not allowed without the test parameter
    with pytest.raises(DownloadError, match="only https"):
        download_file("ftp://example.org/x", tmp_path / "x.bin")
    with pytest.raises(DownloadError, match="only https"):
        download_file(url(server, "/redirect-http"), tmp_path / "x.bin", allow_http_hosts=LOCAL)
    assert not (tmp_path / "x.bin").exists()


def test_unreachable_server_is_model_not_found(tmp_path):
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelNotFoundError, match="cannot be reached.*place it at"):
        download_file(
            f"http://127.0.0.1:{port}/w", tmp_path / "w.bin", allow_http_hosts=LOCAL, stall_timeout_s=2
        )


def test_registry_download_into_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LOC2_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    spec = ModelSpec("test-weights", "test_weights.pth", "backbone", url=url(server, "/file"), sha256=SHA)
    path = download("test-weights", spec=spec, allow_http_hosts=LOCAL)
    assert path == tmp_path / "cache" / "test_weights.pth" and path.read_bytes() == PAYLOAD
    n = len(server.requests)
    download("test-weights", spec=spec, allow_http_hosts=LOCAL)  # present: nothing fetched
    assert len(server.requests) == n


def test_registry_entries_and_missing_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("LOC2_CACHE", str(tmp_path))
    assert REGISTRY["dinov2-vitl14"].url == (
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth"
    )
    loc2 = [s for s in REGISTRY.values() if s.kind == "matcher"]
    assert len(loc2) == 6 and all(s.url is None and s.sha256 is None for s in loc2)
    assert all(s.hf_repo.startswith("depth-anything/") for s in REGISTRY.values() if s.kind == "depth")
    target = model_path("loc2-kitti-10")
    with pytest.raises(ModelNotFoundError, match=f"release page and place the file at {target}"):
        download("loc2-kitti-10")
    with pytest.raises(ModelNotFoundError, match="loc2 models download dinov2-vitl14"):
        resolve_weights("dinov2-vitl14")
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        model_path("nope")
    target.write_bytes(b"x")
    assert is_present("loc2-kitti-10") and resolve_weights("loc2-kitti-10") == target
    assert download("loc2-kitti-10") == target
    hf = REGISTRY["depth-anything-v2-small"].sources()
    assert [u for u, _, _ in hf][0] == (
        "https://huggingface.co/depth-anything/Depth-Anything-V2-Small-hf/resolve/main/config.json"
    )


def test_loading_is_weights_only(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(2)}, good)
    assert torch.equal(load_model_weights(good)["w"], torch.ones(2))
    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2), "obj": threading.Lock}, evil)  # a class: not allowed with weights_only
    with pytest.raises(CheckpointError, match="evil.pth"):
        load_model_weights(evil)


def test_cli_models(tmp_path, capsys):
    cache = str(tmp_path)
    assert cli.main(["models", "--cache", cache, "list"]) == 0
    out = capsys.readouterr().out
    assert "dinov2-vitl14" in out and "loc2-vigor-cross-unknown" in out and "missing" in out
    assert cli.main(["models", "--cache", cache, "path", "loc2-vigor-same-known"]) == 1
    assert capsys.readouterr().out.strip() == str(tmp_path / "loc2_vigor_same_known.pth")
    assert cli.main(["models", "--cache", cache, "download", "loc2-kitti-180"]) == 1
    assert "authors' release page" in capsys.readouterr().err
