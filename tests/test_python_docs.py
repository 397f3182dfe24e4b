"""docs/python.md's session runs as written (in a fresh folder, on the toy components)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"



def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_the_worked_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    blocks = _python_blocks(DOC.read_text())
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_python"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[block {i + 1}]", "exec"), namespace)
    assert (tmp_path / "data_efficiency.png").stat().st_size > 5000
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="fig-forest"' in page
    assert namespace["report"]._repr_html_().startswith("<iframe srcdoc=")
