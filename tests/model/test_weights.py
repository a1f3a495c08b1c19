"""Model registry and downloader against a local HTTP server on 127.0.0.1 (no network).

The server serves one payload with Range support and can misbehave on request: cut the body short, stall,
ignore Range, redirect. Under ``/hf/`` it answers as Hugging Face does: ``.../resolve/REV/FILE`` of a large
file redirects to a CDN path with the file's SHA-256 in ``X-Linked-Etag`` and ``ETag``, its size in
``X-Linked-Size`` and the commit in ``X-Repo-Commit``; a small file (``.json``) is served directly with its git
blob SHA-1 as ``ETag``. Every test is bounded by short timeouts; the server stops with the module.
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
from loc2.core.model import weights
from loc2.core.model.integrity import IntegrityError, Record, read_record
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
    trust,
)

PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()
LOCAL = ("127.0.0.1",)
CORRUPT = PAYLOAD[:1000] + bytes([PAYLOAD[1000] ^ 1]) + PAYLOAD[1001:]  # one bit flipped, same size
SMALL = b'{"model_type": "depth_anything"}\n'
SMALL_GIT = hashlib.sha1(b"blob %d\0" % len(SMALL) + SMALL, usedforsecurity=False).hexdigest()
COMMIT = hashlib.sha1(b"a test commit", usedforsecurity=False).hexdigest()  # a git commit id
CDN_BODIES = {"w.bin": PAYLOAD, "corrupt.bin": CORRUPT}


def hf_answer(handler, server) -> bool:
    """Answer a ``/hf/`` or ``/cdn/`` request the way Hugging Face and its CDN do; False for other paths."""
    name = handler.path.rsplit("/", 1)[-1]
    if handler.path.startswith("/cdn/"):  # the CDN: the bytes, and an ETag that is no SHA-256
        body = CDN_BODIES[name]
        handler.send_response(200)
        handler.send_header("ETag", '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"')
    elif handler.path.startswith("/hf/") and name.endswith(".json"):  # a small file: served directly
        body = SMALL if "bad" not in name else SMALL.replace(b"depth", b"DEPTH")
        handler.send_response(200)
        handler.send_header("X-Repo-Commit", COMMIT)
        handler.send_header("ETag", f'"{SMALL_GIT}"')
    elif handler.path.startswith("/hf/"):  # a large (LFS) file: a redirect stating its digest and size
        handler.send_response(302)
        handler.send_header("Location", f"http://127.0.0.1:{server.server_port}/cdn/{name}")
        handler.send_header("X-Repo-Commit", COMMIT)
        handler.send_header("X-Linked-Etag", f'"{SHA}"')
        handler.send_header("ETag", f'"{SHA}"')
        handler.send_header("X-Linked-Size", str(len(PAYLOAD)))
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return True
    else:
        return False
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
    return True


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
        if hf_answer(self, server):
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


def test_hugging_face_download_is_checked_against_x_linked_etag_and_recorded(server, tmp_path):
    dest = download_file(
        url(server, "/hf/org/m/resolve/main/w.bin"), tmp_path / "w.bin", allow_http_hosts=LOCAL
    )
    assert dest.read_bytes() == PAYLOAD
    record = read_record(dest)  # written beside the file: digest, size, source, how verified, commit
    assert record == Record(
        SHA, len(PAYLOAD), url(server, "/hf/org/m/resolve/main/w.bin"), record.verified, COMMIT
    )
    assert record.verified == "server sha256 (X-Linked-Etag)"
    assert (tmp_path / "w.bin.sha256").read_text().startswith(f"sha256 {SHA}\nsize {len(PAYLOAD)}\n")


def test_a_corrupted_body_is_refused_by_the_servers_digest(server, tmp_path):
    dest = tmp_path / "corrupt.bin"
    with pytest.raises(
        DownloadError, match=f"server states sha256 {SHA} in X-Linked-Etag.*partial file was del"
    ):
        download_file(url(server, "/hf/org/m/resolve/main/corrupt.bin"), dest, allow_http_hosts=LOCAL)
    assert not dest.exists() and not (tmp_path / "corrupt.bin.part").exists()
    assert not (tmp_path / "corrupt.bin.sha256").exists()
    # the CDN's own ETag (an MD5) is never taken for a checksum: the same bytes without the redirect pass
    download_file(url(server, "/cdn/corrupt.bin"), dest, allow_http_hosts=LOCAL)
    assert read_record(dest).verified == "first use, not verified"


def test_a_small_hugging_face_file_is_checked_against_its_git_sha1(server, tmp_path):
    ok = download_file(
        url(server, "/hf/org/m/resolve/main/config.json"), tmp_path / "c.json", allow_http_hosts=LOCAL
    )
    assert ok.read_bytes() == SMALL and read_record(ok).verified == "server git-sha1 (ETag)"
    with pytest.raises(DownloadError, match=f"git SHA-1 {SMALL_GIT}"):
        download_file(
            url(server, "/hf/org/m/resolve/main/bad.json"), tmp_path / "b.json", allow_http_hosts=LOCAL
        )
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "b.json.part").exists()


def test_a_pinned_size_is_refused_before_any_byte_is_kept(server, tmp_path):
    with pytest.raises(DownloadError, match=f"offers {len(PAYLOAD)} bytes, expected {len(PAYLOAD) + 1}"):
        download_file(url(server, "/file"), tmp_path / "s.bin", size=len(PAYLOAD) + 1, allow_http_hosts=LOCAL)
    assert list(tmp_path.iterdir()) == []


def test_a_hugging_face_model_downloads_verified_and_prints_its_pins(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(weights, "HF", url(server, "/hf"))
    spec = ModelSpec("test-hf", "test-hf", "depth", hf_repo="org/m", files=("config.json", "w.bin"))
    monkeypatch.setitem(REGISTRY, "test-hf", spec)
    cache = tmp_path / "cache"
    assert trust("test-hf", cache) == "unverified"
    path = download("test-hf", cache, allow_http_hosts=LOCAL)
    assert (path / "w.bin").read_bytes() == PAYLOAD and (path / "config.json").read_bytes() == SMALL
    assert trust("test-hf", cache) == "recorded" and resolve_weights("test-hf", cache) == path
    assert cli.main(["models", "--cache", str(cache), "digest", "test-hf"]) == 0
    out = capsys.readouterr().out
    small_sha = hashlib.sha256(SMALL).hexdigest()
    assert f'hf_revision="{COMMIT}",' in out.splitlines()
    assert f'hf_sha256=(("config.json", "{small_sha}"), ("w.bin", "{SHA}")),' in out.splitlines()
    pinned = ModelSpec(
        "test-hf", "test-hf", "depth", hf_repo="org/m", files=("config.json", "w.bin"), hf_revision=COMMIT,
        hf_sha256=(("config.json", small_sha), ("w.bin", SHA)),
    )  # fmt: skip
    monkeypatch.setitem(REGISTRY, "test-hf", pinned)
    assert trust("test-hf", cache) == "pinned"
    assert pinned.sources()[1].url == url(server, f"/hf/org/m/resolve/{COMMIT}/w.bin")
    (path / "w.bin").write_bytes(CORRUPT)  # the same size, one bit changed
    with pytest.raises(
        IntegrityError, match=r"w.bin: sha256 \w+, expected .*loc2 models download test-hf --force"
    ):
        resolve_weights("test-hf", cache)


def test_registry_entries_and_missing_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("LOC2_CACHE", str(tmp_path))
    assert REGISTRY["dinov2-vitl14"].url == (
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth"
    )
    assert REGISTRY["dinov2-vitl14"].size == 1_217_586_395
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
    assert hf[0].url == (
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
