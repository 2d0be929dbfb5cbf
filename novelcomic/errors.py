"""The one exception type meant for users. The CLI prints it as a single line and exits 1."""

from __future__ import annotations

from pathlib import Path


class NovelcomicError(Exception):
    """An error the user can act on: bad input, bad configuration, a missing tool.

    ``file``/``line``/``field`` locate the problem when it comes from a project file; ``str()``
    renders them as ``file:line: field: message`` so editors and terminals can jump to it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:  # pragma: no cover - trivial formatting
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class BackendError(NovelcomicError):
    """A backend could not do its job (model missing, server down, tool failed)."""


class ProjectLockedError(NovelcomicError):
    """Another run holds the project's lock."""
