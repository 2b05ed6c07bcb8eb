"""examples/custom_tokenizer.py runs in fast mode and its training loss goes down."""

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_tokenizer.py"


def test_custom_tokenizer_example_trains():
    env = dict(os.environ, SKELETOK_FAST="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--fast"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    losses = [float(v) for v in re.findall(r"^step \d+ loss ([0-9.]+)", proc.stdout, flags=re.M)]
    assert len(losses) >= 5, proc.stdout
    assert losses[-1] < 0.8 * losses[0], losses
    rec = [float(v) for v in re.findall(r"rec_fine ([0-9.]+)", proc.stdout)]
    assert rec[-1] < 0.8 * rec[0], rec
    result = dict(re.findall(r"(\w+) ([0-9.]+)", proc.stdout.strip().splitlines()[-1].removeprefix("result ")))
    assert 0 < float(result["usage_sparse"]) <= 1 and float(result["perplexity_dense"]) >= 1
