"""The notebooks run top to bottom, show pictures, and are committed without outputs.

Each notebook runs in a fresh kernel of this interpreter (the project's venv), in ``notebooks/``
as a user opens it, with the random-weight models of the fake hub (``HF_HOME``, offline).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from live_helpers import rtsp_server_binary
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; a whole notebook takes about a minute on a 2-core CPU
PICTURES = ("image/png", "image/jpeg", "image/svg+xml")
FAKE_WEIGHTS_CELL = """
import promptrack.pipeline.config as _config
_load_config = _config.load_config
def _born_confirmed(preset="default", overrides=(), **values):
    return _load_config(preset, [*overrides, "association.confirm_hits=1"], **values)
_config.load_config = _born_confirmed
"""


def test_the_notebooks_are_there():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_quickstart", "02_results", "03_custom_detector", "04_live_stream", "05_exemplars"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for k, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {k} has outputs: clear them before committing"
            assert cell.get("execution_count") is None, f"{path.name} cell {k} has an execution count"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


def _shows(cell, kinds) -> bool:
    return any(kind in out.get("data", {}) for out in cell.get("outputs", []) for kind in kinds)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, assets, hub_env):
    if "live" in path.stem:
        rtsp_server_binary()  # the live notebook starts its own RTSP relay on loopback
    owl = None
    if "exemplars" in path.stem:  # it runs OWLv2: random weights in the hub's layout as well, for this notebook only
        from fake_detectors import write_owlv2
        from fake_hub import install_folder

        owl = install_folder(hub_env["HF_HOME"], "google/owlv2-base-patch16-ensemble", write_owlv2).parents[1]
    try:
        _run_notebook(path, hub_env)
    finally:
        if owl is not None:
            import shutil

            shutil.rmtree(owl, ignore_errors=True)


def _run_notebook(path, hub_env) -> None:
    notebook = nbformat.read(path, as_version=4)
    # First, a cell for the fake hub's random SAM 2 weights: their masks never meet a second
    # detection, so offline no track would ever be confirmed and written; born confirmed instead.
    notebook.cells.insert(0, nbformat.v4.new_code_cell(FAKE_WEIGHTS_CELL))
    # Last, a cell that says which interpreter and which hub the kernel had.
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import os, sys; print(sys.executable); print(os.environ.get('HF_HOME'), os.environ.get('HF_HUB_OFFLINE'))"))
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.monotonic()
    client.execute(env=hub_env)  # raises CellExecutionError, with the cell and traceback, on any error
    seconds = time.monotonic() - start
    print(f"{path.name}: {seconds:.1f} s")

    probe = notebook.cells[-1].outputs[0]["text"].splitlines()
    assert Path(probe[0]).resolve() == Path(sys.executable).resolve(), f"kernel ran {probe[0]}, not {sys.executable}"
    assert probe[1] == f"{hub_env['HF_HOME']} 1", "the kernel did not get the fake hub"
    errors = [out for cell in notebook.cells for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
    assert any(_shows(cell, PICTURES) for cell in notebook.cells), f"{path.name} shows no picture"
