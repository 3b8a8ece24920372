"""Download BEIR datasets: streamed, checksummed (md5 as BEIR publishes it), unpacked atomically.

``download_beir("scifact", "datasets")`` fetches
``https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip`` (override the
base with ``base_url=`` or ``$RAGSIFT_BEIR_URL`` for a mirror), checks its md5 against BEIR's
table, and unpacks it so that ``datasets/scifact`` appears whole or not at all. Members whose path
would escape the target folder (absolute, ``..``) are refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from ragsift.atomic import atomic_dir
from ragsift.errors import RagsiftError

logger = logging.getLogger(__name__)

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"

# md5 of each archive, from the dataset table of BEIR's README (beir-cellar/beir).
BEIR_MD5: dict[str, str] = {
    "msmarco": "444067daf65d982533ea17ebd59501e4",
    "trec-covid": "ce62140cb23feb9becf6270d0d1fe6d1",
    "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d",
    "nq": "d4d3d2e48787a744b6f6e691ff534307",
    "hotpotqa": "f412724f78b0d91183a0e86805e16114",
    "fiqa": "17918ed23cd04fb15047f73e6c3bd9d9",
    "arguana": "8ad3e3c2a5867cdced806d6503f29b99",
    "webis-touche2020": "46f650ba5a527fc69e0a6521c5a23563",
    "cqadupstack": "4e41456d7df8ee7760a7f866133bda78",
    "quora": "18fb154900ba42a600f84b839c173167",
    "dbpedia-entity": "c2a39eb420a3164af735795df012ac2c",
    "scidocs": "38121350fc3a4d2f48850f6aff52e4a9",
    "fever": "5a818580227bfb4b35bb6fa46d9b6c03",
    "climate-fever": "8b66f0a9126c521bae2bde127b4dc99d",
    "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
}


class DownloadError(RagsiftError):
    """A download that failed its checksum, could not be fetched, or held an unsafe archive."""


def list_datasets() -> list[str]:
    """Names of the BEIR datasets that can be downloaded."""
    return sorted(BEIR_MD5)


def download_beir(
    name: str,
    out_dir: str | os.PathLike[str] = "datasets",
    *,
    base_url: str | None = None,
    md5: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Path:
    """Download and unpack BEIR dataset ``name`` into ``out_dir/name``; return that folder.

    Args:
        name: a BEIR dataset name (:func:`list_datasets`), or any name a custom mirror holds.
        out_dir: the parent folder.
        base_url: the folder URL holding ``<name>.zip`` (default: BEIR's, or $RAGSIFT_BEIR_URL).
        md5: the expected checksum (default: BEIR's published one; unknown names are not checked).
        overwrite: download again even when ``out_dir/name`` exists.

    Raises:
        DownloadError: unknown name on BEIR's server, network failure, checksum mismatch, or an
            archive with unsafe paths or without ``corpus.jsonl``. Nothing is left behind.

    Example:
        >>> download_beir("scifact", "datasets")  # doctest: +SKIP
        PosixPath('datasets/scifact')
    """
    base_url = base_url or os.environ.get("RAGSIFT_BEIR_URL")
    if base_url is None and name not in BEIR_MD5:
        raise DownloadError(f"unknown BEIR dataset {name!r}; known: {', '.join(list_datasets())}")
    target = Path(out_dir) / name
    if target.is_dir() and (target / "corpus.jsonl").is_file() and not overwrite:
        logger.info("%s already exists; pass overwrite=True to download again", target)
        return target
    url = f"{(base_url or BEIR_URL).rstrip('/')}/{name}.zip"
    expected = md5 or BEIR_MD5.get(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip", dir=target.parent)
    archive = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            digest = _fetch(url, handle, show_progress)
        if expected is None:
            logger.warning("no published checksum for %s; md5 of the download: %s", name, digest)
        elif digest != expected.lower():
            raise DownloadError(f"{url}: md5 {digest} does not match the expected {expected}")
        with atomic_dir(target) as tmp:
            _unpack(archive, tmp, name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            archive.unlink()
    logger.info("%s ready in %s", name, target)
    return target


def _fetch(url: str, handle, show_progress: bool) -> str:
    """Stream ``url`` into ``handle``; return the md5 of the bytes."""
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name,
                      disable=not show_progress) as progress:
                while chunk := response.read(1 << 20):
                    handle.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
    except OSError as exc:  # URLError, HTTPError and socket errors are all OSErrors
        raise DownloadError(f"{url}: download failed: {exc}") from exc
    return digest.hexdigest()


def _unpack(archive: Path, folder: Path, name: str) -> None:
    """Extract ``archive`` into ``folder`` with the dataset files at its top level."""
    try:
        zipped = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{name}.zip: not a zip archive ({exc})") from exc
    with zipped, tempfile.TemporaryDirectory(dir=folder.parent) as staging:
        for member in zipped.namelist():
            path = PurePosixPath(member)
            if path.is_absolute() or ".." in path.parts or member.startswith("\\"):
                raise DownloadError(f"{name}.zip: unsafe member path {member!r}")
        zipped.extractall(staging)
        corpus = sorted(Path(staging).rglob("corpus.jsonl"), key=lambda p: len(p.parts))
        if not corpus:
            raise DownloadError(f"{name}.zip: no corpus.jsonl inside")
        root = corpus[0].parent
        for entry in root.iterdir():
            shutil.move(str(entry), folder / entry.name)
