"""Writing outputs atomically: a failure never leaves a truncated or partial file."""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path

import pandas as pd

from compare_kit.errors import OutputError


def utc_timestamp() -> str:
    """Now, to the second, as a page's "Generated at" line shows it: ``2026-12-03T07:41:29 UTC``."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", " UTC")


def check_writable(path: str | Path) -> Path:
    """The file can be written: its folder exists and is writable, or can be created (its nearest
    existing ancestor is a writable folder). Say which and why if not; nothing is created here."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{str(path)!r} is a folder; give a file name such as {str(path / 'out.csv')!r}")
    folder = path.parent if str(path.parent) else Path(".")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write {str(path)!r}: {str(existing)!r} is a file, not a folder; "
                          "move it or choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {str(path)!r}: no permission to write in {str(existing)!r}")
    return path


def make_folder(path: str | Path) -> Path:
    """Create the file's folder (and its parents) if missing, as ``mkdir -p`` does."""
    path = check_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a race, a read-only mount, or permissions os.access did not see
        raise OutputError(f"cannot create the folder {str(path.parent)!r}: {exc.strerror or exc}") from None
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place (creating the
    folder if it is missing)."""
    path = make_folder(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # e.g. no permission although os.access said yes (root, ACLs, read-only mounts)
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report is an ordinary file
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv_atomic(path: str | Path, frame: pd.DataFrame) -> Path:
    """A tidy table as CSV (full precision, no index), written atomically."""
    return write_text_atomic(path, frame.to_csv(index=False, float_format="%.10g"))
