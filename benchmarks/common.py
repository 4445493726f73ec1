"""Helpers shared by the benchmarks: timing, machine info, a markdown table and results JSON.

Every benchmark is a module run as ``python -m benchmarks.<name>``; it prints a table with
:func:`print_table` and saves what it measured with :func:`save_results`, which adds the
machine (CPU count, Python, package versions, date) and the command that produced it, so a
number in ``benchmarks/results/<name>.json`` can always be traced and reproduced.

The command-line helpers (:func:`benchmark_parser`, :func:`seed_list`, :func:`name_list`,
:func:`count`, :func:`add_out_argument`, :func:`require_files`) check a benchmark's options
before it starts its work, so that a bad value or a missing data file is a one-line usage
error (exit code 2) at once rather than a traceback minutes or hours into a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
    "MAX_SEED",
    "benchmark_parser",
    "seed_list",
    "name_list",
    "count",
    "seconds",
    "add_out_argument",
    "add_folder_arguments",
    "DEFAULT_DATA",
    "require_files",
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

#: The real data sets: ``$GRAPHFUSION_DATA``, else ../shared/data beside the repository.
DEFAULT_DATA = Path(
    os.environ.get("GRAPHFUSION_DATA", Path(__file__).parents[2] / "shared" / "data")
)


#: Largest seed the benchmarks take (``TrainConfig`` refuses larger ones).
MAX_SEED = 2**31 - 1


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in its help, where it has one (not ``None``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def benchmark_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser for ``python -m <module>``, described by the first paragraph of
    ``doc`` (the module docstring), with each option's default in its help."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=(doc or "").split("\n\n")[0],
        formatter_class=_HelpFormatter,
    )


def _int(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{what} must be in {low}..{high}, got {value}")
    return value


def seed_list(text: str) -> list[int]:
    """``--seeds``: comma-separated distinct seeds, integers from 0 to :data:`MAX_SEED`.

    Raises:
        argparse.ArgumentTypeError: None given, an empty item, a repeated seed, or one
            that is not such an integer.
    """
    parts = text.split(",")
    if not text.strip() or any(not p.strip() for p in parts):
        raise argparse.ArgumentTypeError(
            f"seeds must be comma-separated integers such as 0,1,2, got {text!r}"
        )
    seeds = [_int(p, "a seed", 0, MAX_SEED) for p in parts]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"seed {repeated[0]} is given twice (a repeated seed would count its run twice)"
        )
    return seeds


def name_list(choices: Sequence[str], what: str = "names") -> Callable[[str], list[str]]:
    """An argparse type for a comma-separated list of ``choices`` (at least one; a name
    given twice counts once), in the order given."""

    def parse(text: str) -> list[str]:
        names = list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
        if not names:
            raise argparse.ArgumentTypeError(
                f"give at least one of {', '.join(choices)} (comma-separated)"
            )
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what}: {', '.join(map(repr, unknown))}; choose from {', '.join(choices)}"
            )
        return names

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def count(low: int = 1, high: int = 2**31 - 1) -> Callable[[str], int]:
    """An argparse type for an integer in ``low..high`` (a count: epochs, users, ...)."""

    def parse(text: str) -> int:
        return _int(text, "the value", low, high)

    parse.__name__ = f"integer in {low}..{high}"
    return parse


def seconds(text: str) -> float:
    """An argparse type for a duration: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"seconds must be finite and above 0, got {text!r}")
    return value


def add_folder_arguments(
    parser: argparse.ArgumentParser,
    work: str,
    work_help: str,
    data_help: str | None = "folder of the real data sets",
) -> None:
    """``--data DIR`` (unless ``data_help`` is None) and ``--work DIR`` (default ``work``)."""
    if data_help is not None:
        parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=data_help)
    parser.add_argument("--work", type=Path, default=Path(work), help=work_help)


def add_out_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """``--out FILE``: where the results JSON goes instead of ``benchmarks/results/``."""
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"results JSON to write (default: {RESULTS_DIR / f'{name}.json'}, the committed "
        "results; point a trial run elsewhere)",
    )


#: What :func:`require_files` tells to do about missing data by default.
DATA_HINT = (
    "Point --data at the folder that holds them (the default is ../shared/data next to the "
    "repository, or $GRAPHFUSION_DATA)"
)


def require_files(
    parser: argparse.ArgumentParser, needs: Mapping[str, Iterable[Path]], hint: str = DATA_HINT
) -> None:
    """Stop with a usage error (exit code 2) naming every file in ``needs`` that does not
    exist, by what needs it (a data set's name), before any work is done.

    Args:
        parser: The benchmark's parser (its ``error`` prints usage and exits).
        needs: Per data set (or other user), the files it reads.
        hint: What to do about it, the end of the message.
    """
    missing = {
        what: [str(path) for path in paths if not path.exists()] for what, paths in needs.items()
    }
    said = [f"{what} needs {', '.join(paths)}" for what, paths in missing.items() if paths]
    if said:
        parser.error(f"missing data: {'; '.join(said)}. {hint}")


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
