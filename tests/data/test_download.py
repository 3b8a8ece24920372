"""BEIR downloads from a local HTTP server: checksum, atomic unpack, refusals, reuse, the CLI."""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ragsift.cli import datasets as datasets_cli
from ragsift.data.beir import load_beir
from ragsift.data.download import BEIR_MD5, DownloadError, download_beir, list_datasets
from tests.conftest import DOCS, QRELS, QUERIES, write_beir

JUDGEMENTS = sum(len(docs) for docs in QRELS.values())


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields (base url, served folder, requested paths).

    ``/short.zip`` answers with a Content-Length larger than the body it sends.
    """
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            requests.append(self.path)
            if self.path == "/short.zip":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"PK" + b"\0" * 98)
                self.close_connection = True
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_zip(root: Path, tmp_path: Path, name: str = "mini", *, top: str | None = None,
             extra_member: str | None = None) -> str:
    """Write root/<name>.zip holding a tiny BEIR folder under ``top/`` (default: name).

    Returns the archive's md5.
    """
    top = name if top is None else top
    source = write_beir(tmp_path / "src" / name)
    archive = root / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                zipped.write(path, f"{top}/{path.relative_to(source)}".lstrip("/"))
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
    assert sum(len(d) for d in data.qrels.values()) == JUDGEMENTS
    assert sorted(p.name for p in out.iterdir()) == ["mini"]  # no temp files left
    assert requests == ["/mini.zip"]


def test_existing_folder_is_reused_without_a_request(server, tmp_path):
    url, root, requests = server
    md5 = make_zip(root, tmp_path)
    out = tmp_path / "datasets"
    download_beir("mini", out, base_url=url, md5=md5, show_progress=False)
    (out / "mini" / "marker").write_text("kept")
    assert download_beir("mini", out, base_url=url, md5=md5, show_progress=False) == out / "mini"
    assert len(requests) == 1 and (out / "mini" / "marker").exists()
    download_beir("mini", out, base_url=url, md5=md5, overwrite=True, show_progress=False)
    assert len(requests) == 2 and not (out / "mini" / "marker").exists()
    assert sorted(p.name for p in out.iterdir()) == ["mini"]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, root, _ = server
    md5 = make_zip(root, tmp_path)
    out = tmp_path / "datasets"
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        download_beir("mini", out, base_url=url, md5="0" * 32, show_progress=False)
    assert md5 in str(info.value) and "0" * 32 in str(info.value)
    assert list(out.iterdir()) == []


def test_mismatch_keeps_the_old_folder_on_overwrite(server, tmp_path):
    url, root, _ = server
    md5 = make_zip(root, tmp_path)
    out = tmp_path / "datasets"
    download_beir("mini", out, base_url=url, md5=md5, show_progress=False)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_beir("mini", out, base_url=url, md5="f" * 32, overwrite=True,
                      show_progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["mini"]
    assert len(load_beir(out / "mini").corpus) == len(DOCS)


@pytest.mark.parametrize("member", ["../evil.txt", "mini/../../evil.txt", "/tmp/evil.txt",
                                    "..\\evil.txt", "C:/evil.txt"])
def test_zip_slip_is_refused(server, tmp_path, member):
    url, root, _ = server
    md5 = make_zip(root, tmp_path, extra_member=member)
    out = tmp_path / "datasets"
    with pytest.raises(DownloadError, match="unsafe member"):
        download_beir("mini", out, base_url=url, md5=md5, show_progress=False)
    assert list(out.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_truncated_download_leaves_nothing(server, tmp_path):
    url, _, _ = server
    out = tmp_path / "datasets"
    with pytest.raises(DownloadError, match="short.zip"):
        download_beir("short", out, base_url=url, show_progress=False)
    assert list(out.iterdir()) == []


def test_archive_layouts(server, tmp_path):
    url, root, _ = server
    out = tmp_path / "datasets"
    md5 = make_zip(root, tmp_path, name="flat", top="")  # files at the archive root
    assert len(load_beir(download_beir("flat", out, base_url=url, md5=md5,
                                       show_progress=False)).corpus) == len(DOCS)
    md5 = make_zip(root, tmp_path, name="renamed", top="other-name")  # one differently named top
    assert len(load_beir(download_beir("renamed", out, base_url=url, md5=md5,
                                       show_progress=False)).corpus) == len(DOCS)
    # cqadupstack: no corpus at the top, one BEIR folder per forum
    archive = root / "forums.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for forum in ("android", "gis"):
            source = write_beir(tmp_path / "src" / "forums" / forum)
            for path in source.rglob("*"):
                if path.is_file():
                    zipped.write(path, f"forums/{forum}/{path.relative_to(source)}")
    folder = download_beir("forums", out, base_url=url, show_progress=False)  # no md5: warns
    assert len(load_beir(folder / "gis").corpus) == len(DOCS)
    assert sorted(p.name for p in out.iterdir()) == ["flat", "forums", "renamed"]


def test_archive_without_corpus_is_refused(server, tmp_path):
    url, root, _ = server
    with zipfile.ZipFile(root / "empty.zip", "w") as zipped:
        zipped.writestr("empty/readme.txt", "nothing here")
    (root / "junk.zip").write_bytes(b"not a zip")
    out = tmp_path / "datasets"
    with pytest.raises(DownloadError, match="no corpus.jsonl"):
        download_beir("empty", out, base_url=url, show_progress=False)
    with pytest.raises(DownloadError, match="not a zip"):
        download_beir("junk", out, base_url=url, show_progress=False)
    assert list(out.iterdir()) == []


def test_unknown_name_missing_file_and_bad_arguments(server, tmp_path, monkeypatch):
    url, _, _ = server
    monkeypatch.delenv("RAGSIFT_BEIR_URL", raising=False)
    with pytest.raises(DownloadError, match="unknown BEIR dataset.*scifact"):
        download_beir("not-a-beir-set", tmp_path / "d")
    with pytest.raises(DownloadError, match="download failed"):
        download_beir("absent", tmp_path / "d", base_url=url, show_progress=False)
    with pytest.raises(DownloadError, match="invalid dataset name"):
        download_beir("../up", tmp_path / "d", base_url=url)
    with pytest.raises(DownloadError, match="32 hexadecimal"):
        download_beir("mini", tmp_path / "d", base_url=url, md5="abc")
    assert list((tmp_path / "d").iterdir()) == []


def test_existing_non_beir_target_is_not_clobbered(server, tmp_path):
    url, root, requests = server
    md5 = make_zip(root, tmp_path)
    out = tmp_path / "datasets"
    (out / "mini").mkdir(parents=True)
    (out / "mini" / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="not a BEIR folder"):
        download_beir("mini", out, base_url=url, md5=md5, show_progress=False)
    assert (out / "mini" / "notes.txt").read_text() == "mine" and requests == []


def test_published_checksum_is_applied_to_known_names(server, tmp_path, monkeypatch):
    url, root, requests = server
    make_zip(root, tmp_path, name="scifact")  # our tiny zip is not BEIR's scifact
    monkeypatch.setenv("RAGSIFT_BEIR_URL", url)
    with pytest.raises(DownloadError, match=BEIR_MD5["scifact"]):
        download_beir("scifact", tmp_path / "d", show_progress=False)
    assert requests == ["/scifact.zip"]  # the env var redirected the download


def test_table():
    names = list_datasets()
    assert names == sorted(names) and len(names) == 15
    assert {"scifact", "msmarco", "cqadupstack", "webis-touche2020"} <= set(names)
    assert not {"bioasq", "signal1m", "robust04", "trec-news"} & set(names)
    for md5 in BEIR_MD5.values():
        assert md5 is None or (len(md5) == 32 and int(md5, 16) >= 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragsift")
    datasets_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


def test_cli_download_list_validate(server, tmp_path, capsys):
    url, root, _ = server
    md5 = make_zip(root, tmp_path)
    out = tmp_path / "datasets"
    assert _run(["datasets", "download", "mini", "--out", str(out), "--base-url", url,
                 "--md5", md5, "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "mini")
    assert _run(["datasets", "validate", str(out / "mini")]) == 0
    assert (f"{len(DOCS)} documents, {len(QUERIES)} test queries, {JUDGEMENTS} judgements"
            in capsys.readouterr().out)
    assert _run(["datasets", "list"]) == 0
    assert f"scifact\tmd5 {BEIR_MD5['scifact']}" in capsys.readouterr().out
    assert _run(["datasets", "validate", str(out / "mini"), "--split", "dev"]) == 1
    assert "splits in" in capsys.readouterr().out
    (out / "mini" / "queries.jsonl").write_text('{"_id": "q1"}\n')
    assert _run(["datasets", "validate", str(out / "mini")]) == 1
    assert 'queries.jsonl, line 1, field "text"' in capsys.readouterr().out


def test_cli_errors_and_help(server, tmp_path, capsys):
    url, root, _ = server
    make_zip(root, tmp_path)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        _run(["datasets", "download", "mini", "--out", str(tmp_path / "d"), "--base-url", url,
              "--md5", "0" * 32, "--no-progress"])
    for argv in (["datasets"], ["datasets", "download"], ["datasets", "validate"]):
        with pytest.raises(SystemExit) as info:
            _parser().parse_args(argv)
        assert info.value.code == 2
    for argv in (["datasets", "--help"], ["datasets", "download", "--help"],
                 ["datasets", "list", "--help"], ["datasets", "validate", "--help"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(argv)
        assert "usage: ragsift datasets" in capsys.readouterr().out


def _search_cli_importable() -> bool:
    try:
        importlib.import_module("ragsift.cli.search")
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _search_cli_importable(), reason="ragsift.cli.search is not importable")
def test_main_entry_point(server, tmp_path, capsys):
    from ragsift.cli.main import main

    url, root, _ = server
    md5 = make_zip(root, tmp_path)
    out = tmp_path / "datasets"
    assert main(["datasets", "download", "mini", "--out", str(out), "--base-url", url,
                 "--md5", md5, "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "mini")
    assert main(["datasets", "download", "mini", "--out", str(tmp_path / "bad"), "--base-url",
                 url, "--md5", "0" * 32, "--no-progress"]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() or list((tmp_path / "bad").iterdir()) == []
