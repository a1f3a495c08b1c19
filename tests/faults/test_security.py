"""Security faults: a download cut mid-file is never loaded; weights are read only as tensors; the engine
never runs a shell; the worker opens no socket (it speaks only over its parent's pipes)."""

from __future__ import annotations

import ast
import hashlib
import io
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from worker_client import Worker

from loc2.core.errors import ModelNotFoundError
from loc2.core.model import weights
from loc2.core.model.weights import DownloadError, ModelSpec, download, load_model_weights
from loc2.core.worker import protocol as p

ROOT = Path(__file__).resolve().parents[2]
STATE = {"layer.weight": torch.arange(40_000, dtype=torch.float32).reshape(200, 200)}


def _payload() -> bytes:
    buf = io.BytesIO()
    torch.save(STATE, buf)
    return buf.getvalue()


PAYLOAD = _payload()


class CutOnce(BaseHTTPRequestHandler):
    """Serves PAYLOAD with Range support; the first response is cut at half and the connection dropped."""

    cut = True

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if CutOnce.cut:
            CutOnce.cut = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


def test_a_download_cut_mid_file_is_never_loaded_and_resumes_verified(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), CutOnce)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/w.pth"
        spec = ModelSpec("test-w", "w.pth", "matcher", url=url, sha256=hashlib.sha256(PAYLOAD).hexdigest())
        monkeypatch.setitem(weights.REGISTRY, "test-w", spec)
        cache = tmp_path / "cache"
        with pytest.raises(DownloadError, match="run again to resume"):
            download("test-w", cache, spec=spec, allow_http_hosts=("127.0.0.1",), stall_timeout_s=10)
        part = cache / "w.pth.part"
        assert part.is_file() and 0 < part.stat().st_size < len(PAYLOAD)
        with pytest.raises(ModelNotFoundError, match="loc2 models download test-w"):
            load_model_weights("test-w", cache)  # the partial file is never taken for the model
        download("test-w", cache, spec=spec, allow_http_hosts=("127.0.0.1",), stall_timeout_s=10)
        assert not part.exists()
        loaded = load_model_weights("test-w", cache)  # checksum verified, then read weights-only
        assert torch.equal(loaded["layer.weight"], STATE["layer.weight"])
    finally:
        server.shutdown()
        server.server_close()


def _engine_sources() -> list[Path]:
    return [
        ROOT / "loc2_plugin.py",
        *sorted((ROOT / "core").rglob("*.py")),
        *sorted((ROOT / "ui").rglob("*.py")),
    ]


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_weights_are_loaded_only_as_tensors_and_no_shell_is_run():
    problems = []
    for path in _engine_sources():
        for call, name in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if name.endswith("torch.load") and keywords.get("weights_only") != "True":
                problems.append(f"{where}: torch.load without weights_only=True")
            if keywords.get("shell") not in (None, "False"):
                problems.append(f"{where}: shell={keywords['shell']}")
            if name in ("eval", "exec", "os.system", "os.popen", "pickle.load", "pickle.loads"):
                problems.append(f"{where}: {name}")
    assert not problems, problems


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    bodies = [n.body for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)]
    return {
        id(body[0].value)
        for body in bodies
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    }


def test_no_message_suggests_unsafe_loading():
    """No string the engine or plugin can show (docstrings aside) advises weights_only=False."""
    problems = []
    for path in _engine_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                text = node.value.replace(" ", "")
                if "weights_only=False" in text or "weights_only`setto`False" in text:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not problems, problems


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_worker_opens_no_socket():
    worker = Worker(stderr=subprocess.DEVNULL)
    try:
        assert worker.next()["event"] == p.EVENT_READY
        worker.send({"cmd": p.CMD_DESCRIBE, "job": "d", "device": "cpu"})
        worker.pong()
        fds = Path(f"/proc/{worker.proc.pid}/fd")
        targets = [str(link.readlink()) for link in fds.iterdir() if link.is_symlink()]
        assert targets and not [t for t in targets if t.startswith("socket:")], targets
    finally:
        worker.kill()
