"""The notebooks in notebooks/ run top to bottom on the tiny shop and show pictures.

Each notebook is executed with nbclient in a fresh kernel of this interpreter (cwd
``notebooks/``); no cell may fail, each must produce at least one PNG, and the CPSC part of
``05_defects`` must have run wherever the recalls file can be found. The notebooks are not
rewritten: their committed outputs are refreshed by hand (execute them with nbclient and save).
Deselect with ``-m "not slow"``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
CELL_TIMEOUT = 300
#: The path the CPSC cells of 05_defects look at when GRAPHFUSION_CPSC_RECALLS is not set.
CPSC_FALLBACK = NOTEBOOKS / ".." / ".." / "shared" / "data" / "cpsc_recalls" / "recalls.csv"
PRIVATE_KERNEL = "graphfusion-tests"


def _runs_this_interpreter(argv: list[str]) -> bool:
    """jupyter_client starts a bare ``python`` / ``python3`` / ``python3.X`` as this
    interpreter; anything else must be this interpreter itself."""
    if not argv:
        return False
    major, minor = sys.version_info[:2]
    if argv[0] in {"python", f"python{major}", f"python{major}.{minor}"}:
        return True
    try:
        return Path(argv[0]).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python3`` when its kernel spec runs this interpreter (ipykernel installed beside it);
    otherwise a private spec written for this interpreter into a temporary prefix."""
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        if _runs_this_interpreter(spec.argv):
            yield "python3"
            return
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name=PRIVATE_KERNEL, prefix=str(prefix))
    old = os.environ.get("JUPYTER_PATH")
    share = str(prefix / "share" / "jupyter")
    os.environ["JUPYTER_PATH"] = share if not old else os.pathsep.join([share, old])
    try:
        spec = KernelSpecManager().get_kernel_spec(PRIVATE_KERNEL)
        assert _runs_this_interpreter(spec.argv), spec.argv
        yield PRIVATE_KERNEL
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old


def _cpsc_file() -> Path | None:
    """The recalls file the notebook finds, by the same rule."""
    for candidate in (os.environ.get("GRAPHFUSION_CPSC_RECALLS"), CPSC_FALLBACK):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _outputs(cell: dict) -> list[dict]:
    return list(cell.get("outputs", [])) if cell.get("cell_type") == "code" else []


def _png_count(cells: list[dict]) -> int:
    return sum("image/png" in out.get("data", {}) for cell in cells for out in _outputs(cell))


def _text(cells: list[dict]) -> str:
    parts = []
    for cell in cells:
        for out in _outputs(cell):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebooks_are_there() -> None:
    names = {p.name for p in PATHS}
    assert names >= {
        "01_explore_graph.ipynb",
        "02_features_and_alignment.ipynb",
        "03_recommend.ipynb",
        "04_qa_linking.ipynb",
        "05_defects.ipynb",
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path: Path, kernel_name: str) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        record_timing=False,
    )
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}")
    seconds = time.perf_counter() - started
    print(f"{path.name}: {seconds:.1f} s")
    errors = [out for cell in notebook.cells for out in _outputs(cell)
              if out.get("output_type") == "error"]  # fmt: skip
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    assert _png_count(notebook.cells) >= 1, f"{path.name} showed no picture"
    if path.stem == "05_defects":
        cpsc = [c for c in notebook.cells if "cpsc" in c.get("metadata", {}).get("tags", [])]
        assert cpsc, "05_defects has no cells tagged cpsc"
        if _cpsc_file() is not None:
            assert "CPSC recall report:" in _text(cpsc), "the CPSC part did not run"
            assert _png_count(cpsc) >= 1, "the CPSC part showed no picture"
        else:
            assert "skipped: no CPSC recalls file" in _text(cpsc)
