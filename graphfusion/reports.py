"""Report files for rows that were not loaded or nodes that got no vector."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphfusion.errors import ValidationError
from graphfusion.values import home_path

__all__ = ["check_writable", "default_report_path", "write_rows"]


def default_report_path(store: Any, kind: str) -> Path:
    """``reports/<kind>-<time>.jsonl`` in the store folder (``./graphfusion-reports`` else)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    folder = getattr(store, "reports_dir", None) or Path("graphfusion-reports")
    return Path(folder) / f"{kind}-{stamp}.jsonl"


def check_writable(path: str | Path) -> Path:
    """Check that :func:`write_rows` can write ``path`` (``~`` is the home folder), creating
    nothing: it is not a folder, and it can be written, or its nearest existing folder can
    (the missing ones are made).

    Raises:
        ValidationError: Why it cannot be written.
    """
    out = home_path(path, "report")
    if out.is_dir():
        raise ValidationError(f"report {out}: is a folder; name a file")
    if out.exists():
        if not os.access(out, os.W_OK):
            raise ValidationError(f"report {out}: the file cannot be written")
        return out
    above = out.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ValidationError(f"report {out}: {above} is a file, not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ValidationError(f"report {out}: cannot write in {above}")
    return out


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path, fields: Sequence[str]) -> Path:
    """Write rows to ``path``: CSV for ``.csv``, else JSON lines, in UTF-8 (text that UTF-8
    cannot hold, a lone surrogate, is written as its escape, ``\\udc80``). Returns the path."""
    out = home_path(path, "report")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        with out.open("w", newline="", encoding="utf-8", errors="backslashreplace") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(fields))
            writer.writeheader()
            writer.writerows(rows)
    else:
        with out.open("w", encoding="utf-8", errors="backslashreplace") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return out
