"""BEIR downloads from a local HTTP server: checksum, atomic unpack, refusals, the CLI."""

from __future__ import annotations

import functools
import hashlib
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ragsift.cli.main import main
from ragsift.data.beir import load_beir
from ragsift.data.download import DownloadError, download_beir
from tests.conftest import DOCS, QUERIES, write_beir


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields (base url, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, requests
    httpd.shutdown()
    httpd.server_close()


def make_zip(root, tmp_path, name="mini", extra_member=None) -> str:
    source = write_beir(tmp_path / "src" / name)
    archive = root / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                zipped.write(path, f"{name}/{path.relative_to(source)}")
        if extra_member:
            zipped.writestr(extra_member, "x")
    return hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_verifies_and_unpacks(server, tmp_path):
    url, root, requests = server
    md5 = make_zip(root, tmp_path)
    out = tmp_path / "datasets"
    folder = download_beir("mini", out, base_url=url, md5=md5, show_progress=False)
    assert folder == out / "mini"
    data = load_beir(folder)
    assert len(data.corpus) == len(DOCS) and len(data.queries) == len(QUERIES)
    assert sorted(p.name for p in out.iterdir()) == ["mini"]  # no temp files left
    download_beir("mini", out, base_url=url, md5=md5, show_progress=False)
    assert requests == ["/mini.zip"]  # the existing folder was reused


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, root, _ = server
    make_zip(root, tmp_path)
    out = tmp_path / "datasets"
    with pytest.raises(DownloadError, match="does not match"):
        download_beir("mini", out, base_url=url, md5="0" * 32, show_progress=False)
    assert list(out.iterdir()) == []


def test_zip_slip_is_refused(server, tmp_path):
    url, root, _ = server
    md5 = make_zip(root, tmp_path, extra_member="../evil.txt")
    out = tmp_path / "datasets"
    with pytest.raises(DownloadError, match="unsafe member"):
        download_beir("mini", out, base_url=url, md5=md5, show_progress=False)
    assert list(out.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_missing_file_and_unknown_name(server, tmp_path):
    url, _, _ = server
    with pytest.raises(DownloadError, match="download failed"):
        download_beir("absent", tmp_path / "d", base_url=url, show_progress=False)
    with pytest.raises(DownloadError, match="unknown BEIR dataset"):
        download_beir("not-a-beir-set", tmp_path / "d")


def test_published_checksum_is_applied_to_known_names(server, tmp_path, monkeypatch):
    url, root, _ = server
    make_zip(root, tmp_path, name="scifact")  # our tiny zip is not BEIR's scifact
    monkeypatch.setenv("RAGSIFT_BEIR_URL", url)
    with pytest.raises(DownloadError, match="5f7d1de60b170fc8027bb7898e2efca1"):
        download_beir("scifact", tmp_path / "d", show_progress=False)


def test_cli_download_validate_list(server, tmp_path, capsys):
    url, root, _ = server
    md5 = make_zip(root, tmp_path)
    out = tmp_path / "datasets"
    assert main(["datasets", "download", "mini", "--out", str(out), "--base-url", url,
                 "--md5", md5]) == 0
    assert main(["datasets", "validate", str(out / "mini")]) == 0
    assert "8 documents, 5 test queries, 7 judgements" in capsys.readouterr().out
    assert main(["datasets", "list"]) == 0
    assert "scifact\tmd5 5f7d1de60b170fc8027bb7898e2efca1" in capsys.readouterr().out
    (out / "mini" / "queries.jsonl").write_text('{"_id": "q1"}\n')
    assert main(["datasets", "validate", str(out / "mini")]) == 1
    assert 'queries.jsonl, line 1, field "text"' in capsys.readouterr().err
