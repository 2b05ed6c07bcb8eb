"""The README's Python example runs as written and gives a pose per sample."""

from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_block_example_runs():
    block = README.read_text().split("## Use the blocks")[1].split("```python")[1].split("```")[0]
    scope: dict = {}
    exec(compile(block, str(README), "exec"), scope)
    joints = scope["joints"]
    assert joints.shape == (8, 17, 3) and torch.isfinite(joints).all()
    assert set(scope["terms"]) >= {"rec_dense", "rec_fine", "local", "total"}
    torch.testing.assert_close(scope["terms"]["total"], scope["loss"].detach())
