"""Report files for rows that were not loaded or nodes that got no vector."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["default_report_path", "write_rows"]


def default_report_path(store: Any, kind: str) -> Path:
    """``reports/<kind>-<time>.jsonl`` in the store folder (``./graphfusion-reports`` else)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    folder = getattr(store, "reports_dir", None) or Path("graphfusion-reports")
    return Path(folder) / f"{kind}-{stamp}.jsonl"


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path, fields: Sequence[str]) -> Path:
    """Write rows to ``path``: CSV for ``.csv``, else JSON lines. Returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        with out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(fields))
            writer.writeheader()
            writer.writerows(rows)
    else:
        with out.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return out
