"""Reading text files line by line, strictly, with errors that name the file and the line.

Every reader of ragsift's text formats (jsonl, BEIR qrels tsv, TREC runs and qrels, YAML configs)
goes through here, so they agree on what a valid file is:

- UTF-8 only: an invalid byte is a :class:`~ragsift.errors.DataFormatError` naming the file,
  line and column (never a bare ``UnicodeDecodeError``);
- ``.gz`` files are decompressed; a truncated or corrupt archive, or a plain file named ``.gz``,
  is an error naming the file and the line reached;
- a UTF-8 byte order mark at the very start of the file is dropped (Windows editors write
  one); anywhere else it stays in the text, where the id checks refuse it;
- lines end at ``\\n``; a ``\\r\\n`` ending is removed as a whole.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ragsift.errors import DataFormatError

BOM = "\ufeff"
_GZIP_MAGIC = b"\x1f\x8b"


def check_input_file(path: str | Path) -> Path:
    """``path`` as a :class:`Path` when it is a readable regular file.

    Raises:
        FileNotFoundError: nothing at ``path``.
        IsADirectoryError: ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; expected a file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a file for reading bytes, decompressing ``.gz`` (by its name)."""
    path = check_input_file(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def decode_line(raw: bytes, path: str | Path, line: int) -> str:
    """``raw`` decoded as UTF-8, without its line ending (and without a BOM on line 1).

    Raises:
        DataFormatError: ``raw`` is not valid UTF-8; the message gives the column and byte.
    """
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, line, None, _utf8_message(raw, exc, line)) from None
    if line == 1 and text.startswith(BOM):
        text = text[1:]
    return text


def _utf8_message(raw: bytes, exc: UnicodeDecodeError, line: int) -> str:
    column = len(raw[:exc.start].decode("utf-8", errors="replace")) + 1
    message = (f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); "
               f"save the file as UTF-8")
    if line == 1 and raw.startswith(_GZIP_MAGIC):
        message += " (it looks gzip-compressed: name it with a .gz suffix)"
    return message


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` for every line of ``path`` (1-based, ending removed).

    Streams the file; never loads it whole.

    Raises:
        FileNotFoundError / IsADirectoryError: ``path`` is not a file.
        DataFormatError: invalid UTF-8, or a corrupt/truncated ``.gz`` file.
    """
    line = 0
    with open_binary(path) as handle:
        lines = iter(handle)
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                return
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise DataFormatError(path, line + 1, None, gzip_message(exc)) from None
            line += 1
            yield line, decode_line(raw, path, line)


def gzip_message(exc: BaseException) -> str:
    """What to tell the user about a gzip decompression failure."""
    if isinstance(exc, gzip.BadGzipFile) and "Not a gzipped file" in str(exc):
        return "not a gzip file although its name ends in .gz (rename it without .gz, or " \
               "compress it with gzip)"
    if isinstance(exc, EOFError):
        return "truncated .gz file (the archive ends early; download or compress it again)"
    return f"corrupt .gz file ({exc}); download or compress it again"


def read_text(path: str | Path) -> str:
    """The whole of a (small) UTF-8 text file, e.g. a config; errors as :func:`iter_lines`."""
    return "\n".join(text for _, text in iter_lines(path))
