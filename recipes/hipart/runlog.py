"""``metrics.jsonl`` writer: one JSON object per log step, rank 0 only, consistent across resumes.

(Named ``runlog`` rather than ``logging`` so that running a recipe file as a script never shadows the
standard library's ``logging``.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["MetricsLog", "read_metrics"]


class MetricsLog:
    """Append-only JSON-lines log of training metrics.

    Args:
        path: the ``metrics.jsonl`` file.
        enabled: write at all (False on ranks other than 0).
        resume_step: when resuming from a checkpoint taken at this step, records after it (written by the
            killed run after its last checkpoint) are dropped so the file reads like one uninterrupted run;
            ``None`` starts a fresh file.
    """

    def __init__(self, path: str | Path, *, enabled: bool = True, resume_step: int | None = None):
        self.path = Path(path)
        self.enabled = enabled
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None or not self.path.exists():
            self.path.write_text("")
            return
        kept = [rec for rec in read_metrics(self.path) if rec.get("step", 0) <= resume_step]
        self.path.write_text("".join(json.dumps(rec, sort_keys=True) + "\n" for rec in kept))

    def log(self, record: dict) -> None:
        """Append one record (numbers are written as floats/ints; NaN/inf as strings)."""
        if not self.enabled:
            return
        clean = {}
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = str(value)
            clean[key] = value
        with self.path.open("a") as handle:
            handle.write(json.dumps(clean, sort_keys=True) + "\n")


def read_metrics(path: str | Path) -> list[dict]:
    """Read a ``metrics.jsonl`` file into a list of dicts.

    Raises:
        ValueError: naming the file and line of a record that is not valid JSON.
    """
    path = Path(path)
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {number}: not a JSON record ({err.msg})") from None
    return records
