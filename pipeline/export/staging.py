"""Write a dataset so that no half-written file ever sits under a final name.

Every file goes first into a hidden folder inside the output folder (same filesystem), and is
moved into place with ``os.replace`` (atomic) only once the whole export has succeeded, in the
order the files were made: images first, the index file (``annotations.json``, ``data.yaml``...)
last, so a dataset whose index file exists is complete. On any error the hidden folder is removed.

Example:
    >>> with Staging("dataset") as stage:                         # doctest: +SKIP
    ...     stage.path("annotations.json").write_text("{}")
    ...     stage.publish()
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import OutputError


class Staging:
    def __init__(self, output_dir: str | os.PathLike) -> None:
        self.root = Path(output_dir)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=self.root))
        except OSError as exc:
            raise OutputError(f"cannot write to output folder {self.root}: {exc.strerror or exc}; "
                              "choose another with -o") from None
        self._files: list[str] = []

    def path(self, relative: str) -> Path:
        """Where to write the file that will end up at ``output_dir/relative``."""
        target = self.tmp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative not in self._files:
            self._files.append(relative)
        return target

    def publish(self) -> list[Path]:
        """Move every staged file into place, in the order they were made; returns the final paths."""
        final = []
        for relative in self._files:
            destination = self.root / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp / relative, destination)
            final.append(destination)
        self._files = []
        return final

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc_info) -> None:
        self.discard()
