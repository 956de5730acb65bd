"""fetch against a local HTTP server (127.0.0.1, Range support): download, resume, rejection, 404, --from."""

from __future__ import annotations

import io
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fashionseg.data.fetch import FetchError, RemoteFile, fetch

JSON_PATH = "annotations/instances_attributes_val2020.json"
ZIP_PATH = "images/val_test2020.zip"


@dataclass
class FakeServer:
    """Serves ``files`` (URL path -> bytes); ``drop_after[path] = n`` sends n bytes once, then hangs up."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


def _handler(state: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.lstrip("/")
            byte_range = self.headers.get("Range")
            state.requests.append((path, byte_range))
            if path not in state.files:
                self.send_error(404, "Not Found")
                return
            data = state.files[path]
            start = int(byte_range.removeprefix("bytes=").rstrip("-")) if byte_range else 0
            if start >= len(data) and byte_range:
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206 if byte_range else 200)
            if byte_range:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:]
            cut = state.drop_after.pop(path, None)
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _publish(server: FakeServer) -> tuple[RemoteFile, ...]:
    """A val split like the official one: an annotation JSON and a zip holding test/*.jpg."""
    server.files[JSON_PATH] = b'{"images": [], "annotations": [], "categories": []}' + b" " * 300_000
    server.files[ZIP_PATH] = _zip({"test/a.jpg": b"jpeg-a" * 1000, "test/b.jpg": b"jpeg-b"})
    return tuple(RemoteFile(p, len(server.files[p]), ("val",)) for p in (JSON_PATH, ZIP_PATH))


def _fetch(root: Path, server: FakeServer, files, **kwargs) -> list[Path]:
    return fetch(root, splits=("val",), base_url=server.url, files=files, show_progress=False, **kwargs)


def test_full_download_and_extraction(tmp_path: Path, server: FakeServer) -> None:
    files = _publish(server)
    root = tmp_path / "fp"
    train_only = RemoteFile("annotations/instances_attributes_train2020.json", 10, ("train",))
    paths = _fetch(root, server, (*files, train_only))
    assert paths == [root / "instances_attributes_val2020.json", root / "test"]
    assert (root / "instances_attributes_val2020.json").read_bytes() == server.files[JSON_PATH]
    assert (root / "test" / "a.jpg").read_bytes() == b"jpeg-a" * 1000
    assert not (root / "val_test2020.zip").exists() and (root / "val_test2020.zip.extracted").is_file()
    assert not list(root.glob("*.part"))
    assert [p for p, _ in server.requests] == [JSON_PATH, ZIP_PATH]  # the train file was not asked for

    assert _fetch(root, server, files) == paths  # a second run finds everything in place
    assert len(server.requests) == 2

    shutil.rmtree(root / "test")  # extracted images deleted: the archive is fetched again
    assert _fetch(root, server, files) == paths
    assert [p for p, _ in server.requests[2:]] == [ZIP_PATH] and (root / "test" / "b.jpg").is_file()


def test_interrupted_transfer_resumes_with_a_range_request(tmp_path: Path, server: FakeServer) -> None:
    files = _publish(server)
    server.drop_after[JSON_PATH] = 100_000
    _fetch(tmp_path, server, files)
    assert server.requests[:2] == [(JSON_PATH, None), (JSON_PATH, "bytes=100000-")]
    assert (tmp_path / "instances_attributes_val2020.json").read_bytes() == server.files[JSON_PATH]


def test_interrupted_run_leaves_a_part_file_that_the_next_run_resumes(
    tmp_path: Path, server: FakeServer
) -> None:
    files = _publish(server)
    server.drop_after[JSON_PATH] = 70_000
    with pytest.raises(FetchError, match=r"stopped at 70,000 of .* run the command again to resume"):
        _fetch(tmp_path, server, files[:1], retries=0)
    part = tmp_path / "instances_attributes_val2020.json.part"
    assert part.stat().st_size == 70_000 and not (tmp_path / "instances_attributes_val2020.json").exists()
    _fetch(tmp_path, server, files[:1])
    assert server.requests[-1] == (JSON_PATH, "bytes=70000-")
    assert (tmp_path / "instances_attributes_val2020.json").read_bytes() == server.files[JSON_PATH]
    assert not part.exists()


@pytest.mark.parametrize("extra", [-10, 10])
def test_wrong_size_file_is_rejected_and_deleted(tmp_path: Path, server: FakeServer, extra: int) -> None:
    files = _publish(server)
    expected = RemoteFile(JSON_PATH, files[0].size + extra, ("val",))
    with pytest.raises(
        FetchError, match=r"instances_attributes_val2020.json from .* is corrupt: .* expected"
    ):
        _fetch(tmp_path, server, (expected,))
    assert not list(tmp_path.iterdir())  # neither a final file nor a .part is left


def test_checksum_mismatch_is_rejected(tmp_path: Path, server: FakeServer) -> None:
    files = _publish(server)
    wrong = RemoteFile(JSON_PATH, files[0].size, ("val",), sha256="0" * 64)
    with pytest.raises(FetchError, match="has sha256 .* expected 0000"):
        _fetch(tmp_path, server, (wrong,))
    assert not list(tmp_path.iterdir())


def test_missing_link_names_the_file_url_and_the_way_out(tmp_path: Path, server: FakeServer) -> None:
    files = _publish(server)
    del server.files[JSON_PATH]
    with pytest.raises(FetchError) as info:
        _fetch(tmp_path, server, files)
    message = str(info.value)
    assert f"instances_attributes_val2020.json from {server.url}{JSON_PATH}: HTTP 404" in message
    assert "--from DIR" in message


def test_from_dir_uses_local_copies_without_downloading(tmp_path: Path, server: FakeServer) -> None:
    files = _publish(server)
    local = tmp_path / "mine"
    (local / "images").mkdir(parents=True)
    (local / "instances_attributes_val2020.json").write_bytes(server.files[JSON_PATH])
    (local / "images" / "val_test2020.zip").write_bytes(server.files[ZIP_PATH])
    root = tmp_path / "fp"
    _fetch(root, server, files, source_dir=local)
    assert server.requests == []
    assert (root / "instances_attributes_val2020.json").read_bytes() == server.files[JSON_PATH]
    assert (root / "test" / "b.jpg").read_bytes() == b"jpeg-b"
    assert (local / "images" / "val_test2020.zip").is_file()  # the user's copy is left alone


def test_from_dir_downloads_what_it_lacks(tmp_path: Path, server: FakeServer) -> None:
    files = _publish(server)
    local = tmp_path / "mine"
    local.mkdir()
    (local / "instances_attributes_val2020.json").write_bytes(server.files[JSON_PATH])
    _fetch(tmp_path / "fp", server, files, source_dir=local)
    assert [p for p, _ in server.requests] == [ZIP_PATH]


def test_from_dir_rejects_a_wrong_copy(tmp_path: Path, server: FakeServer) -> None:
    files = _publish(server)
    local = tmp_path / "mine"
    local.mkdir()
    (local / "instances_attributes_val2020.json").write_bytes(b"{}")
    with pytest.raises(
        FetchError, match=r"--from copy rejected: .*instances_attributes_val2020.json has 2 bytes"
    ):
        _fetch(tmp_path / "fp", server, files, source_dir=local)


def test_archive_escaping_the_root_is_refused(tmp_path: Path, server: FakeServer) -> None:
    server.files[ZIP_PATH] = _zip({"test/ok.jpg": b"x", "../evil.txt": b"gotcha"})
    files = (RemoteFile(ZIP_PATH, len(server.files[ZIP_PATH]), ("val",)),)
    root = tmp_path / "fp"
    with pytest.raises(FetchError, match=r"member '../evil.txt' would be written outside"):
        _fetch(root, server, files)
    assert not (tmp_path / "evil.txt").exists() and not (root / "test").exists()


def test_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"unknown split\(s\) \['tset'\]"):
        fetch(tmp_path, splits=("tset",))
