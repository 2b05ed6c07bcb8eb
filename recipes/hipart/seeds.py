"""Mean +- standard deviation over seeds of HiPART reports (``skeletok hipart demo --seeds N``).

`aggregate_reports` walks the reports of N runs that differ only in their seed (`recipes.hipart.report` schema)
and replaces every number by ``{"mean": m, "std": s, "values": [...]}`` (``std`` is the sample standard deviation,
ddof = 1; 0 for one seed). Keys missing from some report are kept with the seeds that have them; strings are
kept when all seeds agree; pictures and other lists are dropped. `format_aggregate` lays out the headline tables
(clean MPJPE / P-MPJPE, test groups, occlusion sweeps) as ``mean +- std``, and `ordering` counts in how many seeds
HiPART is at or below the sparse-only lifter in each cell.

Aggregate runs evaluated one by one (e.g. lifters retrained in seed runs' directories)::

    python -m recipes.hipart.seeds --out runs/demo3_new runs/demo3_new/seed0 runs/demo3_new/seed1 runs/demo3_new/seed2
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

__all__ = ["aggregate_reports", "ordering", "format_aggregate", "write_aggregate", "main"]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _aggregate(values: list):
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(isinstance(v, dict) for v in present):
        keys = list(dict.fromkeys(k for v in present for k in v))
        out = {k: _aggregate([v.get(k) for v in present]) for k in keys}
        return {k: v for k, v in out.items() if v is not None}
    if all(_is_number(v) for v in present):
        n = len(present)
        mean = sum(present) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in present) / (n - 1)) if n > 1 else 0.0
        return {"mean": mean, "std": std, "values": list(present)}
    if all(isinstance(v, str) for v in present) and len(set(present)) == 1:
        return present[0]
    return None


def aggregate_reports(reports: list[dict]) -> dict:
    """Mean and standard deviation over seeds of every number of ``reports`` (see the module docstring).

    The result also holds ``seeds`` (how many reports) and ``ordering`` (`ordering`).

    Raises:
        ValueError: for an empty list.
    """
    if not reports:
        raise ValueError("aggregate_reports needs at least one report")
    out = _aggregate(list(reports)) or {}
    out["seeds"] = len(reports)
    out["ordering"] = ordering(reports)
    return out


def ordering(reports: list[dict]) -> dict:
    """Seeds in which HiPART's MPJPE is <= the sparse-only lifter's, per cell: ``{"clean": k, "mask/0.2": k, ...}``
    with ``"of": N``."""
    cells: dict[str, int] = {}
    for report in reports:
        rows = {"clean": report.get("mpjpe_mm", {})}
        for protocol, ratios in report.get("occlusion", {}).items():
            for ratio, row in ratios.items():
                rows[f"{protocol}/{ratio}"] = row
        for name, row in rows.items():
            if "hipart" in row and "sparse_only" in row:
                cells[name] = cells.get(name, 0) + int(row["hipart"] <= row["sparse_only"])
    return {"of": len(reports), **cells}


def _cell(node) -> str:
    if isinstance(node, dict) and "mean" in node:
        return f"{node['mean']:.1f} +- {node['std']:.1f}"
    return "-"


def format_aggregate(agg: dict) -> str:
    """Markdown tables of an aggregated report: every cell ``mean +- std`` (millimetres) over ``agg["seeds"]``."""
    methods = ("sparse_only", "hipart", "oracle")
    meta = agg.get("meta", {})
    lines = [f"# HiPART report, mean +- std over {agg.get('seeds', 0)} seeds", "",
             f"Split `{meta.get('split', '?')}`; errors in millimetres. Occlusion sweeps are keypoint-level proxies "
             "of the paper's image-level Table 1 (joints hidden, or the keypoint box cropped; no image is "
             "occluded and no detector re-run).", "",
             "| method | MPJPE | P-MPJPE |", "|---|---|---|"]
    for m in methods:
        lines.append(f"| {m} | {_cell(agg.get('mpjpe_mm', {}).get(m))} | {_cell(agg.get('p_mpjpe_mm', {}).get(m))} |")
    groups = agg.get("groups", {})
    if groups:
        lines += ["", "| group | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for name, group in groups.items():
            lines.append(f"| {name} | " + " | ".join(_cell(group.get("mpjpe_mm", {}).get(m)) for m in methods) + " |")
    order = agg.get("ordering", {})
    for protocol, ratios in agg.get("occlusion", {}).items():
        keys = list(ratios)
        lines += ["", f"| {protocol} (keypoint-level proxy) | " + " | ".join(keys) + " |",
                  "|---" * (len(keys) + 1) + "|"]
        for m in methods:
            if any(m in ratios[r] for r in keys):
                lines.append(f"| {m} | " + " | ".join(_cell(ratios[r].get(m)) for r in keys) + " |")
        lines.append("| seeds with HiPART <= sparse only | " +
                     " | ".join(f"{order.get(f'{protocol}/{r}', '-')}/{order.get('of', '-')}" for r in keys) + " |")
    lines += ["", f"Seeds with HiPART <= sparse only on clean input: {order.get('clean', '-')}/{order.get('of', '-')}."]
    return "\n".join(lines) + "\n"


def write_aggregate(agg: dict, out: str | Path) -> tuple[Path, Path]:
    """Write ``out/report.json`` and ``out/report.md`` of an aggregated report; returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "report.json", out / "report.md"
    js.write_text(json.dumps(agg, indent=2) + "\n")
    md.write_text(format_aggregate(agg))
    return js, md


def main(argv: list[str] | None = None) -> int:
    """Aggregate ``RUN/report.json`` of the given run directories into ``--out/report.{json,md}``; print the table."""
    parser = argparse.ArgumentParser(description="mean +- std over seeds of HiPART reports")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories holding report.json (one per seed)")
    parser.add_argument("--out", type=Path, required=True, help="where report.json and report.md are written")
    args = parser.parse_args(argv)
    missing = [str(run / "report.json") for run in args.runs if not (run / "report.json").is_file()]
    if missing:
        parser.error(f"no report in {', '.join(missing)}; run `skeletok hipart evaluate --run RUN` first")
    agg = aggregate_reports([json.loads((run / "report.json").read_text()) for run in args.runs])
    write_aggregate(agg, args.out)
    print(format_aggregate(agg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
