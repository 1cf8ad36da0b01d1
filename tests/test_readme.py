"""The README's Python code runs as written."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of one `## section` of the README."""
    text = README.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


@pytest.mark.slow
def test_the_in_python_snippet_runs_as_written(tmp_path, monkeypatch):
    """MiniLM itself, plain Python lists for `fit` (texts and label ids) and `predict`."""
    blocks = python_blocks("In Python")
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    outputs = namespace["model"].predict(["track my order"])
    assert outputs["probabilities"].shape == (1, 2) and outputs["intent_vector"].shape == (1, 128)
    again = namespace["reloaded"].predict(["track my order"])["probabilities"]
    np.testing.assert_allclose(again, outputs["probabilities"], atol=1e-6)
