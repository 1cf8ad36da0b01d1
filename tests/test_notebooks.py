"""Every notebook runs end to end (tiny encoder), and none is committed with outputs."""

import json
import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    assert all(
        not cell.get("outputs") and not cell.get("execution_count")
        for cell in cells
        if cell["cell_type"] == "code"
    ), f"{path.name}: strip outputs before committing"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_runs_end_to_end(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("ECOMREC_NOTEBOOK_ENCODER", "tiny")
    monkeypatch.setenv("ECOMREC_NOTEBOOK_EPOCHS", "1")
    monkeypatch.setenv("ECOMREC_NOTEBOOK_TRAIN_PER_INTENT", "12")
    monkeypatch.setenv("ECOMREC_NOTEBOOK_USERS", "120")
    monkeypatch.setenv("ECOMREC_NOTEBOOK_DIR", str(tmp_path))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        env=dict(os.environ),
    ).execute()
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "every notebook shows its results as plots (curves, confusion, ROC, calibration)"
    noise = ("I0000", "E0000", "W0000", "WARNING: All log messages", "IProgress", "INFO:tensorflow",
             "was passed, but will be ignored")  # fmt: skip
    printed = [
        text
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        for text in [output.get("text", "")]
        if any(marker in text for marker in noise)
    ]
    assert not printed, f"{path.name} prints start-up noise or warnings: {printed[:3]}"
