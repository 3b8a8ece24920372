"""Exceptions raised by ragsift. Each says what was wrong, where, and what to do."""

from __future__ import annotations

from pathlib import Path


class RagsiftError(Exception):
    """Base class of every error ragsift raises on purpose."""


class DataFormatError(RagsiftError, ValueError):
    """Malformed input data, located by file, line number and field.

    Example:
        >>> str(DataFormatError("corpus.jsonl", 3, "_id", "missing field"))
        'corpus.jsonl, line 3, field "_id": missing field'
    """

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        field: str | None,
        message: str,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f', field "{field}"'
        super().__init__(f"{where}: {message}")


class ModelNotFoundError(RagsiftError, OSError):
    """A model name that is neither a local folder, a packaged model nor a reachable hub id."""


class IndexMismatchError(RagsiftError, ValueError):
    """A saved index loaded with settings (model, format) other than the ones it was built with."""


class MissingExtraError(RagsiftError, ImportError):
    """An optional dependency is missing; the message names the pip extra that provides it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this feature needs the package '{module}': pip install 'ragsift[{extra}]'"
        )


class UsageError(RagsiftError, ValueError):
    """A command-line argument or option value that cannot work (exit status 2 on the CLI)."""


class SettingError(UsageError):
    """A config setting that cannot work, found while the config is built (``__post_init__``);
    ``key`` names it (``few_shot[1]`` is item 1 of ``few_shot``), so that
    :func:`ragsift.config_file.load_dataclass` reports the file and line of that key.

    Example:
        >>> str(SettingError("stop[0]", "empty"))
        'stop[0]: empty'
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


class LocatedSettingError(DataFormatError, UsageError):
    """A :class:`SettingError` placed at its key by :func:`ragsift.config_file.load_dataclass`:
    the file (``<command line>`` for a value set there), the key's line and the key, as a
    :class:`DataFormatError` says them; a usage error like the :class:`SettingError` it locates
    (exit status 2 on the CLI), not a data error.

    Example:
        >>> error = LocatedSettingError("rag.yaml", 4, "selector", "needs a reranker")
        >>> str(error), isinstance(error, UsageError)
        ('rag.yaml, line 4, field "selector": needs a reranker', True)
    """
