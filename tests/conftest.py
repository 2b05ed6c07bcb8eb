import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# Tiny test models are dominated by per-op overhead: one intra-op thread is faster, and it keeps the
# suite fast when other processes share the 2 cores.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
