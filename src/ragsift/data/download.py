"""Download BEIR datasets: streamed, checksummed (md5 as BEIR publishes it), unpacked atomically.

``download_beir("scifact", "datasets")`` fetches
``https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip`` (override the
base with ``base_url=`` or ``$RAGSIFT_BEIR_URL`` for a mirror), checks its md5 against BEIR's
table, and unpacks it so that ``datasets/scifact`` appears whole or not at all. Members whose path
would escape the target folder (absolute, ``..``, a drive letter) are refused.

Example:
    >>> "scifact" in list_datasets()
    True
    >>> download_beir("scifact", "datasets")  # doctest: +SKIP
    PosixPath('datasets/scifact')
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm.auto import tqdm

from ragsift.atomic import atomic_dir
from ragsift.errors import RagsiftError

logger = logging.getLogger(__name__)

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"
URL_ENV = "RAGSIFT_BEIR_URL"

# md5 of each public archive, from the dataset table of BEIR's README (beir-cellar/beir, also
# its wiki page "Datasets available"). Older README versions listed 88591ef8... for fever; the
# current one lists 5a818580..., which is kept here. None would mean "published checksum
# unknown": the download is then not verified (a warning is logged). signal1m, bioasq, robust04
# and trec-news are not publicly downloadable and are absent.
BEIR_MD5: dict[str, str | None] = {
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

_CHUNK = 1 << 20
_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class DownloadError(RagsiftError):
    """A download that could not be fetched, failed its checksum, or held an unsafe archive."""


def list_datasets() -> list[str]:
    """Names of the BEIR datasets that can be downloaded, sorted.

    Example:
        >>> list_datasets()[:3]
        ['arguana', 'climate-fever', 'cqadupstack']
    """
    return sorted(BEIR_MD5)


def download_beir(
    name: str,
    out_dir: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    md5: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Path:
    """Download and unpack BEIR dataset ``name`` into ``out_dir/name``; return that folder.

    Args:
        name: a BEIR dataset name (:func:`list_datasets`), or any name a custom mirror holds.
        out_dir: the parent folder; created if missing.
        base_url: the folder URL holding ``<name>.zip`` (default: ``$RAGSIFT_BEIR_URL``, else
            BEIR's server). With a base URL, names outside BEIR's table are allowed.
        md5: the expected checksum; overrides BEIR's published one. Without either, the
            download is not verified and a warning gives its md5.
        overwrite: download again even when ``out_dir/name`` exists; the old folder is
            replaced only once the new one is complete.
        show_progress: show a tqdm progress bar (sized from Content-Length).

    Returns:
        ``Path(out_dir) / name``, holding ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/``
        (cqadupstack: one such folder per forum).

    Raises:
        DownloadError: an unknown name on BEIR's server, a network failure or truncated body, a
            checksum mismatch, an archive with unsafe paths or without ``corpus.jsonl``, or an
            existing ``out_dir/name`` that is not a BEIR folder (without ``overwrite``).
            Nothing is left behind in ``out_dir``: neither the archive nor a partial folder.

    Example:
        >>> folder = download_beir("scifact", "datasets")  # doctest: +SKIP
        >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
        ['corpus.jsonl', 'qrels', 'queries.jsonl']
    """
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise DownloadError(f"invalid dataset name {name!r}: use letters, digits, '.', '_', '-'")
    base_url = base_url or os.environ.get(URL_ENV) or None
    if base_url is None and name not in BEIR_MD5:
        raise DownloadError(
            f"unknown BEIR dataset {name!r}; known: {', '.join(list_datasets())} "
            f"(pass base_url, or set ${URL_ENV}, to download from a mirror holding other names)"
        )
    if md5 is not None and not _MD5_RE.fullmatch(md5):
        raise DownloadError(f"md5 {md5!r} is not 32 hexadecimal digits")
    target = Path(out_dir) / name
    if not overwrite and _is_beir_folder(target):
        logger.info("%s already exists; pass overwrite=True to download it again", target)
        return target
    if target.exists() and not (overwrite and target.is_dir()):
        raise DownloadError(
            f"{target} exists but is not a BEIR folder (no corpus.jsonl); move it away"
            + ("" if not target.is_dir() else " or pass overwrite=True (--overwrite)")
        )
    url = f"{(base_url or BEIR_URL).rstrip('/')}/{name}.zip"
    expected = (md5 or BEIR_MD5.get(name) or "").lower() or None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.part", dir=target.parent)
    archive = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            digest = _fetch(url, handle, show_progress)
        if expected is None:
            logger.warning("no published md5 for %s: not verified (md5 of the download: %s)",
                           name, digest)
        elif digest != expected:
            raise DownloadError(
                f"{url}: checksum mismatch: md5 of the download is {digest}, expected {expected}"
            )
        else:
            logger.debug("%s: md5 %s verified", url, digest)
        with atomic_dir(target) as tmp:
            _unpack(archive, tmp, name)
            with contextlib.suppress(OSError):  # mkdtemp made it 0700; match the parent
                tmp.chmod(target.parent.stat().st_mode & 0o777)
    finally:
        with contextlib.suppress(FileNotFoundError):
            archive.unlink()
    logger.info("%s ready in %s", name, target)
    return target


def _is_beir_folder(folder: Path) -> bool:
    """True when ``folder`` holds a corpus at its top, or in its subfolders (cqadupstack)."""
    if not folder.is_dir():
        return False
    if _has_corpus(folder):
        return True
    return any(sub.is_dir() and _has_corpus(sub) for sub in folder.iterdir())


def _has_corpus(folder: Path) -> bool:
    return any((folder / f"corpus.jsonl{ext}").is_file() for ext in ("", ".gz"))


def _fetch(url: str, handle: BinaryIO, show_progress: bool) -> str:
    """Stream ``url`` into ``handle``; return the md5 hex digest of the bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": "ragsift"})
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=url.rsplit("/", 1)[-1], disable=not show_progress) as progress:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.update(len(chunk))
    except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError, IncompleteRead
        raise DownloadError(f"{url}: download failed: {exc}") from exc
    if total is not None and received != total:
        raise DownloadError(f"{url}: download truncated: {received} of {total} bytes")
    return digest.hexdigest()


def _unsafe(member: str) -> bool:
    """True for a zip member whose path could land outside the extraction folder."""
    posix = member.replace("\\", "/")
    path = PurePosixPath(posix)
    return (path.is_absolute() or ".." in path.parts
            or re.match(r"[A-Za-z]:", posix) is not None or "\x00" in member)


def _unpack(archive: Path, folder: Path, name: str) -> None:
    """Extract ``archive`` and move its dataset folder's content into the empty ``folder``.

    The dataset folder is ``<name>/`` in the archive when present, else the archive's only top
    folder, else the archive root; it must hold ``corpus.jsonl`` (or subfolders that do).
    """
    try:
        zipped = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{name}.zip: not a zip archive ({exc})") from exc
    with zipped, tempfile.TemporaryDirectory(prefix=f".{name}.", dir=folder.parent) as staging:
        unsafe = [m for m in zipped.namelist() if _unsafe(m)]
        if unsafe:
            raise DownloadError(
                f"{name}.zip: unsafe member path {unsafe[0]!r} (absolute or outside the archive)"
            )
        try:
            zipped.extractall(staging)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DownloadError(f"{name}.zip: cannot extract ({exc})") from exc
        root = _dataset_root(Path(staging), name)
        if root is None:
            raise DownloadError(f"{name}.zip: no corpus.jsonl inside")
        for entry in root.iterdir():
            shutil.move(str(entry), folder / entry.name)


def _dataset_root(staging: Path, name: str) -> Path | None:
    """The extracted folder holding the dataset files, or None when there is none."""
    if (staging / name).is_dir() and _is_beir_folder(staging / name):
        return staging / name
    if _has_corpus(staging):
        return staging
    tops = [p for p in staging.iterdir() if p.is_dir() and not p.name.startswith("__MACOSX")]
    if len(tops) == 1 and _is_beir_folder(tops[0]):
        return tops[0]
    return None
