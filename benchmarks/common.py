"""Helpers shared by the benchmarks: timing, machine info, a markdown table and results JSON.

Every benchmark is a module run as ``python -m benchmarks.<name>``; it prints a table with
:func:`print_table` and saves what it measured with :func:`save_results`, which adds the
machine (CPU count, Python, package versions, date) and the command that produced it, so a
number in ``benchmarks/results/<name>.json`` can always be traced and reproduced.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "prepared_store",
    "RESULTS_DIR",
    "DEFAULT_PACKAGES",
    "Stopwatch",
    "timer",
    "command_line",
    "machine_info",
    "markdown_table",
    "print_table",
    "save_results",
    "fmt_num",
]

#: Where results JSON files go: ``benchmarks/results/<name>.json``.
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Packages whose versions are recorded with every result.
DEFAULT_PACKAGES = (
    "graphfusion",
    "ladybug",
    "numpy",
    "pandas",
    "pyarrow",
    "torch",
    "torch-geometric",
    "sentence-transformers",
)


class Stopwatch:
    """Elapsed wall time of a ``with`` block, in seconds (``.seconds``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


@contextmanager
def timer(into: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the block to ``into[name]`` (created at 0)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[name] = into.get(name, 0.0) + time.perf_counter() - start


def command_line(module: str | None = None, argv: Sequence[str] | None = None) -> str:
    """The command that is running, as a shell line (``python -m <module> args...``).

    Args:
        module: The module run with ``-m`` (default: ``__main__``'s spec name, else the script).
        argv: The arguments (default: ``sys.argv[1:]``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if module is None:
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        module = getattr(spec, "name", None)
    head = ["python", "-m", module] if module else ["python", sys.argv[0]]
    return shlex.join([*head, *args])


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _memory_gib() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * size / 2**30, 1)


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other work on the machine skews timings)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info(packages: Sequence[str] = DEFAULT_PACKAGES) -> dict[str, Any]:
    """Where and when a benchmark ran: CPUs, memory, OS, Python and package versions, date."""
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "load_average": _load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": {p: _version(p) for p in packages},
    }


def fmt_num(value: Any, digits: int = 2) -> str:
    """A number for a table: thousands separators, ``digits`` decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None
) -> str:
    """A markdown table; numbers are formatted with :func:`fmt_num`.

    Args:
        headers: Column titles.
        rows: One sequence of cells per row.
        align: One letter per column, ``l`` or ``r`` (default: left for the first column,
            right for the rest).
    """
    cells = [[c if isinstance(c, str) else fmt_num(c) for c in row] for row in rows]
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max([len(h), 3, *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if a == "r" else v.ljust(w)
            for v, w, a in zip(values, widths, align, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = [
        ("-" * (w - 1) + ":") if a == "r" else "-" * w for w, a in zip(widths, align, strict=True)
    ]
    return "\n".join([line(headers), line(rule), *(line(r) for r in cells)])


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    align: str | None = None,
) -> str:
    """Print a markdown table (with an optional ``### title``) and return its text."""
    text = markdown_table(headers, rows, align=align)
    if title:
        text = f"### {title}\n\n{text}"
    print(text + "\n", flush=True)
    return text


def _plain(value: Any) -> Any:
    """JSON-safe copy: paths and other objects as strings, floats rounded to 6 digits."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def save_results(
    name: str,
    results: Mapping[str, Any],
    *,
    out: str | os.PathLike[str] | None = None,
    command: str | None = None,
    packages: Sequence[str] = DEFAULT_PACKAGES,
    tables: Sequence[str] = (),
) -> Path:
    """Write ``{"benchmark", "command", "machine", "results", "tables"}`` as JSON.

    Args:
        name: The benchmark's name; the default file is ``benchmarks/results/<name>.json``.
        results: What was measured (plain data; paths and other objects become strings).
        out: Another file to write.
        command: The command line (default: :func:`command_line`).
        packages: Packages whose versions are recorded.
        tables: The printed markdown tables, kept for reading the file by eye.

    Returns:
        The file written.
    """
    path = Path(out) if out is not None else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "command": command or command_line(),
        "machine": machine_info(packages),
        "results": _plain(results),
        "tables": list(tables),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def prepared_store(folder: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """``folder/store``, made once: ``build(store_dir)`` fills it and returns what to record in
    ``folder/prepared.json``; while that file is missing, the store is made again from scratch.
    """
    store_dir, done = folder / "store", folder / "prepared.json"
    if done.exists():
        return store_dir
    if store_dir.exists():
        shutil.rmtree(store_dir)
    folder.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(build(store_dir), indent=2))
    return store_dir
